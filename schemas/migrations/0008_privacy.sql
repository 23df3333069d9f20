-- citybrain:mode all
-- PIPL: every erasure of a caller's personal data on request, recorded with who, when and
-- why. The caller is named by a hash of their number, never by the number itself.
CREATE TABLE privacy_erasures (
    erased_at     timestamptz NOT NULL DEFAULT now(),
    operator      text NOT NULL,
    reason        text NOT NULL,
    subject_hash  text NOT NULL,
    rows_erased   integer NOT NULL
);
CREATE INDEX privacy_erasures_at ON privacy_erasures (erased_at);
