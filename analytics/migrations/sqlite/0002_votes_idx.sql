-- Rows are keyed by (seq, idx): a log message may hold several votes (a
-- pack), which share its seq; idx is a vote's position in its message.
-- The rows stored so far each came from a message of one vote: idx 0.
--
-- SQLite cannot change a primary key in place: the table is rebuilt. The
-- migration runs in one transaction, so it is all done or not at all.
CREATE TABLE votes_0002 (
    seq      INTEGER NOT NULL,
    idx      INTEGER NOT NULL,
    vote_id  TEXT    NOT NULL,
    poll_id  TEXT    NOT NULL,
    options  TEXT    NOT NULL, -- JSON array of option IDs
    time     INTEGER NOT NULL, -- unix seconds, UTC
    region   TEXT    NOT NULL,
    country  TEXT    NOT NULL,
    device   TEXT    NOT NULL,
    referrer TEXT    NOT NULL,
    PRIMARY KEY (seq, idx)
) WITHOUT ROWID;
INSERT INTO votes_0002 (seq, idx, vote_id, poll_id, options, time, region, country, device, referrer)
    SELECT seq, 0, vote_id, poll_id, options, time, region, country, device, referrer FROM votes ORDER BY seq;
DROP TABLE votes; -- and its index
ALTER TABLE votes_0002 RENAME TO votes;
CREATE INDEX votes_poll_time ON votes (poll_id, time);
