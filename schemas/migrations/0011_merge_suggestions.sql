-- citybrain:mode all
-- Merge suggestions: when a report placed only by its district opens its own incident, the
-- correlate stage stores the open incidents of its family in its district that it may belong
-- to, with a score and the reasons, for the operations center to accept or dismiss.
CREATE TABLE incident_merge_suggestions (
    incident_id   text NOT NULL,          -- the district-only incident the report opened
    candidate_id  text NOT NULL,          -- an incident it may belong to
    score         real NOT NULL,
    reasons       jsonb NOT NULL,
    suggested_at  timestamptz NOT NULL,
    status        text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'accepted', 'dismissed')),
    decided_by    text,
    decided_at    timestamptz,
    PRIMARY KEY (incident_id, candidate_id)
);
CREATE INDEX incident_merge_suggestions_open ON incident_merge_suggestions (suggested_at)
    WHERE status = 'open';
