-- Leases: one holder at a time of a named duty among the processes sharing this file. The
-- token grows with every new term and is never reset (rows are never deleted).
CREATE TABLE IF NOT EXISTS leases (
    name          TEXT PRIMARY KEY,
    holder        TEXT    NOT NULL,
    token         INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL
);
