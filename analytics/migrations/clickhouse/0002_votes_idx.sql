-- Rows are keyed by (poll_id, seq, idx): a log message may hold several
-- votes of one poll (a pack), which share its seq, and idx is a vote's
-- position in its message. The rows stored so far each came from a message
-- of one vote: idx 0.
--
-- ClickHouse 18.16 cannot change a sorting key: the rows are copied into a
-- new table, votes_0002, which then takes the name votes. There are no
-- transactions and a migration cut short is run again from its first
-- statement, so each statement runs only while its "when:" query (one 0 or
-- 1) says it is still to be done, and is idempotent besides. What a cut
-- leaves, and what a run again does:
--   votes (0001), votes_0002 (some or all rows): copies them all again.
--   A row copied twice is stored twice with the same key, which
--   ReplacingMergeTree collapses (queries read FINAL, merges drop it).
--   votes_0001, votes_0002 (a RENAME of two tables is not atomic):
--   renames votes_0002 to votes.
--   votes_0001, votes (0002): drops votes_0001.
--   votes (0002): records the version.

-- when: SELECT countIf(name = 'seq') = 1 AND countIf(name = 'idx') = 0 FROM system.columns WHERE database = currentDatabase() AND table = 'votes'
CREATE TABLE IF NOT EXISTS votes_0002 (
    seq      UInt64,
    idx      UInt32,
    vote_id  String,
    poll_id  String,
    options  Array(String),
    time     DateTime,
    region   String,
    country  String,
    device   String,
    referrer String
) ENGINE = ReplacingMergeTree()
ORDER BY (poll_id, seq, idx);

-- when: SELECT countIf(name = 'seq') = 1 AND countIf(name = 'idx') = 0 FROM system.columns WHERE database = currentDatabase() AND table = 'votes'
INSERT INTO votes_0002 (seq, idx, vote_id, poll_id, options, time, region, country, device, referrer)
    SELECT seq, 0, vote_id, poll_id, options, time, region, country, device, referrer FROM votes;

-- when: SELECT countIf(name = 'seq') = 1 AND countIf(name = 'idx') = 0 FROM system.columns WHERE database = currentDatabase() AND table = 'votes'
RENAME TABLE votes TO votes_0001, votes_0002 TO votes;

-- when: SELECT count() = 0 FROM system.tables WHERE database = currentDatabase() AND name = 'votes'
RENAME TABLE votes_0002 TO votes;

-- when: SELECT countIf(name = 'idx') = 1 FROM system.columns WHERE database = currentDatabase() AND table = 'votes'
DROP TABLE IF EXISTS votes_0001;
