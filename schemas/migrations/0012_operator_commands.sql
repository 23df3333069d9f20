-- citybrain:mode all
-- Operators' commands (commands.v1): accepted by the API, applied (or refused, with the
-- reason) by the stage that owns the state they change. One row per command id, so a
-- command sent twice is applied once; the incident's timeline reads them with their actor.
CREATE TABLE operator_commands (
    command_id    text PRIMARY KEY,
    command       text NOT NULL,
    incident_id   text,                    -- the incident it is about (for the timeline)
    dispatch_id   text,                    -- the task, for task commands
    actor         text NOT NULL,
    reason        text NOT NULL,
    payload       jsonb NOT NULL,
    status        text NOT NULL DEFAULT 'accepted'
                  CHECK (status IN ('accepted', 'applied', 'refused')),
    result        text,
    requested_at  timestamptz NOT NULL,
    applied_at    timestamptz
);
CREATE INDEX operator_commands_incident ON operator_commands (incident_id, requested_at);

-- what the center decided about an incident
ALTER TABLE incidents ADD COLUMN merged_into text;            -- closed as the same problem
ALTER TABLE incidents ADD COLUMN verification text;           -- how its closing was checked
ALTER TABLE incidents ADD COLUMN callback text;               -- the citizen's last answer
ALTER TABLE incidents ADD COLUMN closed_at timestamptz;
