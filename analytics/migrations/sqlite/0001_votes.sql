CREATE TABLE IF NOT EXISTS votes (
    seq      INTEGER PRIMARY KEY,
    vote_id  TEXT    NOT NULL,
    poll_id  TEXT    NOT NULL,
    options  TEXT    NOT NULL, -- JSON array of option IDs
    time     INTEGER NOT NULL, -- unix seconds, UTC
    region   TEXT    NOT NULL,
    country  TEXT    NOT NULL,
    device   TEXT    NOT NULL,
    referrer TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS votes_poll_time ON votes (poll_id, time);
