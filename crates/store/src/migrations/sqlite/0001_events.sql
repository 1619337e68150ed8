-- Flotilla event store, SQLite (the embedded default). One database file per service.
CREATE TABLE IF NOT EXISTS events (
    global_position INTEGER PRIMARY KEY,
    stream_id       TEXT    NOT NULL,
    stream_version  INTEGER NOT NULL,
    event_id        TEXT    NOT NULL,
    event_type      TEXT    NOT NULL,
    schema_version  INTEGER NOT NULL,
    payload         BLOB    NOT NULL,
    actor           TEXT    NOT NULL,
    business_unit   TEXT    NOT NULL,
    correlation_id  TEXT,
    causation_id    TEXT,
    traceparent     TEXT,
    command_id      TEXT,
    recorded_at_us  INTEGER NOT NULL,
    prev_hash       BLOB    NOT NULL,
    hash            BLOB    NOT NULL,
    UNIQUE (stream_id, stream_version),
    UNIQUE (event_id)
);

CREATE TABLE IF NOT EXISTS store_head (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    position INTEGER NOT NULL,
    hash     BLOB    NOT NULL
);
INSERT OR IGNORE INTO store_head (id, position, hash) VALUES (1, 0, zeroblob(32));

CREATE TABLE IF NOT EXISTS idempotency_keys (
    key            TEXT PRIMARY KEY,
    stream_id      TEXT,
    first_position INTEGER,
    last_position  INTEGER,
    stream_version INTEGER
);

CREATE TABLE IF NOT EXISTS snapshots (
    stream_id      TEXT PRIMARY KEY,
    stream_version INTEGER NOT NULL,
    schema_version INTEGER NOT NULL,
    payload        BLOB    NOT NULL
);

CREATE TABLE IF NOT EXISTS checkpoints (
    name     TEXT PRIMARY KEY,
    position INTEGER NOT NULL
);
