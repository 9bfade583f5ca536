-- The values a vote shares with many others are stored once: its poll in
-- polls, its options and origin (region, country, device, referrer) in
-- profiles. A row of votes carries their integer ids, so an insert binds
-- one text (vote_id) and a few integers instead of seven texts, the index
-- on (poll, time) compares integers, and queries group by profile before
-- they look at its values.
--
-- The table is rebuilt in this migration's one transaction: all done or
-- not at all. Every old row has its poll and its profile, so the joins
-- keep every row.
CREATE TABLE polls (
    id      INTEGER PRIMARY KEY,
    poll_id TEXT    NOT NULL UNIQUE
);
CREATE TABLE profiles (
    id       INTEGER PRIMARY KEY,
    options  TEXT    NOT NULL, -- JSON array of option IDs
    region   TEXT    NOT NULL,
    country  TEXT    NOT NULL,
    device   TEXT    NOT NULL,
    referrer TEXT    NOT NULL,
    UNIQUE (options, region, country, device, referrer)
);
INSERT INTO polls (poll_id) SELECT DISTINCT poll_id FROM votes;
INSERT INTO profiles (options, region, country, device, referrer)
    SELECT DISTINCT options, region, country, device, referrer FROM votes;
CREATE TABLE votes_0003 (
    seq     INTEGER NOT NULL,
    idx     INTEGER NOT NULL,
    vote_id TEXT    NOT NULL,
    poll    INTEGER NOT NULL, -- polls.id
    time    INTEGER NOT NULL, -- unix seconds, UTC
    profile INTEGER NOT NULL, -- profiles.id
    PRIMARY KEY (seq, idx)
) WITHOUT ROWID;
INSERT INTO votes_0003 (seq, idx, vote_id, poll, time, profile)
    SELECT v.seq, v.idx, v.vote_id, po.id, v.time, pr.id
    FROM votes v
    JOIN polls po ON po.poll_id = v.poll_id
    JOIN profiles pr ON pr.options = v.options AND pr.region = v.region AND pr.country = v.country
        AND pr.device = v.device AND pr.referrer = v.referrer
    ORDER BY v.seq, v.idx;
DROP TABLE votes; -- and its index
ALTER TABLE votes_0003 RENAME TO votes;
CREATE INDEX votes_poll_time ON votes (poll, time);
