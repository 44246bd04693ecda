-- Rated usage records in the emnify shape. Exact types only: bytes as UInt64, MB and cost
-- as Decimal, so sums add up to the bill to the last digit.
CREATE TABLE IF NOT EXISTS usage_records
(
    id UInt64,
    endpoint_id UInt64,
    organisation_id UInt64,
    traffic_type UInt8,
    start_timestamp DateTime64(3, 'UTC'),
    end_timestamp DateTime64(3, 'UTC'),
    volume_bytes_rx UInt64,
    volume_bytes_tx UInt64,
    volume_bytes_total UInt64,
    volume_rx Decimal(18, 6),
    volume_tx Decimal(18, 6),
    volume_total Decimal(18, 6),
    cost Decimal(38, 10),
    currency LowCardinality(String),
    tariff_id UInt64,
    tariff_version UInt32,
    ratezone_id UInt64,
    ratezone_name LowCardinality(String),
    operator_id UInt64,
    operator_name LowCardinality(String),
    country_mcc LowCardinality(String),
    session_id Nullable(String),
    imsi String,
    json String CODEC(ZSTD(1))
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(end_timestamp)
ORDER BY (organisation_id, toDate(end_timestamp), endpoint_id, id)
SETTINGS non_replicated_deduplication_window = 10000;
