-- Flotilla event store, PostgreSQL. One schema per service (search_path is set per connection).
CREATE TABLE IF NOT EXISTS events (
    global_position BIGINT PRIMARY KEY,
    stream_id       TEXT    NOT NULL,
    stream_version  BIGINT  NOT NULL,
    event_id        UUID    NOT NULL,
    event_type      TEXT    NOT NULL,
    schema_version  INTEGER NOT NULL,
    payload         BYTEA   NOT NULL,
    actor           TEXT    NOT NULL,
    business_unit   TEXT    NOT NULL,
    correlation_id  UUID,
    causation_id    UUID,
    traceparent     TEXT,
    command_id      UUID,
    recorded_at_us  BIGINT  NOT NULL,
    prev_hash       BYTEA   NOT NULL,
    hash            BYTEA   NOT NULL,
    CONSTRAINT events_stream_version_unique UNIQUE (stream_id, stream_version),
    CONSTRAINT events_event_id_unique UNIQUE (event_id)
);

-- The chain head; its row lock serialises appends (transaction-scoped), so positions are
-- gap-free in commit order and there is one chain per store.
CREATE TABLE IF NOT EXISTS store_head (
    id       SMALLINT PRIMARY KEY CHECK (id = 1),
    position BIGINT NOT NULL,
    hash     BYTEA  NOT NULL
);
INSERT INTO store_head (id, position, hash)
VALUES (1, 0, '\x0000000000000000000000000000000000000000000000000000000000000000')
ON CONFLICT (id) DO NOTHING;

-- Idempotency keys: command ids (cmd:<uuid>) and inbox entries (inbox:<consumer>:<event id>).
CREATE TABLE IF NOT EXISTS idempotency_keys (
    key            TEXT PRIMARY KEY,
    stream_id      TEXT,
    first_position BIGINT,
    last_position  BIGINT,
    stream_version BIGINT
);

CREATE TABLE IF NOT EXISTS snapshots (
    stream_id      TEXT PRIMARY KEY,
    stream_version BIGINT  NOT NULL,
    schema_version INTEGER NOT NULL,
    payload        BYTEA   NOT NULL
);

CREATE TABLE IF NOT EXISTS checkpoints (
    name     TEXT PRIMARY KEY,
    position BIGINT NOT NULL
);
