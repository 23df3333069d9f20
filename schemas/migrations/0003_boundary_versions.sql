-- 0003: what exactly was imported for each boundary-set version.
ALTER TABLE boundary_sets ADD COLUMN checksum text NOT NULL DEFAULT '';
ALTER TABLE boundary_sets ADD COLUMN layers jsonb NOT NULL DEFAULT '{}'::jsonb;
ALTER TABLE boundary_sets ADD COLUMN repaired jsonb NOT NULL DEFAULT '[]'::jsonb;
CREATE UNIQUE INDEX boundary_sets_one_active ON boundary_sets (set_code) WHERE active;
