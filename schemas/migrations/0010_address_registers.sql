-- citybrain:mode all
-- A city's address register, versioned like its boundaries: `citybrain geo gazetteer import`
-- stores a new version when the file's content changed; workers load the newest version of
-- their city pack's register at start, after the pack's own gazetteer and register file.
CREATE TABLE address_registers (
    pack         text NOT NULL,
    version      integer NOT NULL,
    checksum     text NOT NULL,
    entries      integer NOT NULL,
    source       text NOT NULL,
    imported_at  timestamptz NOT NULL DEFAULT now(),
    imported_by  text NOT NULL,
    PRIMARY KEY (pack, version)
);
CREATE TABLE address_entries (
    pack      text NOT NULL,
    version   integer NOT NULL,
    kind      text NOT NULL CHECK (kind IN ('address', 'building', 'community', 'poi', 'road')),
    name      text NOT NULL,
    district  text NOT NULL,
    lon       double precision NOT NULL,   -- WGS-84
    lat       double precision NOT NULL,
    aliases   text[] NOT NULL DEFAULT '{}',
    line      jsonb,                       -- a road's course, [[lon, lat], ...] in WGS-84
    FOREIGN KEY (pack, version) REFERENCES address_registers ON DELETE CASCADE
);
CREATE INDEX address_entries_version ON address_entries (pack, version);
