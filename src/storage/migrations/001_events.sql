-- Connectivity and policy events in the emnify shape: typed columns for filtering and
-- grouping, plus the full emnify JSON a data stream delivers.
-- ReplacingMergeTree on a key ending in id: a duplicate that got past the insert token
-- (another token, or outside the deduplication window) disappears at merge time and is
-- hidden at once by SELECT ... FINAL.
CREATE TABLE IF NOT EXISTS events
(
    id UInt64,
    timestamp DateTime64(3, 'UTC'),
    event_type UInt16,
    event_type_description LowCardinality(String),
    severity UInt8,
    alert Bool,
    organisation_id UInt64,
    endpoint_id Nullable(UInt64),
    sim_id Nullable(UInt64),
    imsi Nullable(String),
    source UInt8,
    json String CODEC(ZSTD(1))
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (organisation_id, toDate(timestamp), event_type, id)
SETTINGS non_replicated_deduplication_window = 10000;
