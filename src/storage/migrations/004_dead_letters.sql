-- Inputs that could not be processed, with the reason and their position, so they can be
-- redriven. The payload is the input's bytes exactly: it is sent base64-encoded (JSON
-- cannot carry arbitrary bytes) into an EPHEMERAL column and decoded by the server.
CREATE TABLE IF NOT EXISTS dead_letters
(
    id UInt64,
    timestamp DateTime64(3, 'UTC'),
    stage LowCardinality(String),
    reason_code LowCardinality(String),
    reason String,
    source LowCardinality(String),
    `partition` UInt32,
    `offset` UInt64,
    record_kind LowCardinality(Nullable(String)),
    payload_base64 String EPHEMERAL,
    payload String DEFAULT base64Decode(payload_base64) CODEC(ZSTD(1))
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (source, stage, id)
SETTINGS non_replicated_deduplication_window = 10000;
