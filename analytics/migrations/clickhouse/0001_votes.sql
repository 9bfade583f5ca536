CREATE TABLE IF NOT EXISTS votes (
    seq      UInt64,
    vote_id  String,
    poll_id  String,
    options  Array(String),
    time     DateTime,
    region   String,
    country  String,
    device   String,
    referrer String
) ENGINE = ReplacingMergeTree()
ORDER BY (poll_id, seq)
