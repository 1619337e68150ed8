-- Leases: one holder at a time of a named duty (a service's relays and schedulers) among the
-- processes sharing this store. The token grows with every new term and is never reset (rows
-- are never deleted), so a write fenced by an older term is refused. Times are the database's.
CREATE TABLE IF NOT EXISTS leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT        NOT NULL,
    token      BIGINT      NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
