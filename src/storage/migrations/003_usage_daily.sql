-- Daily usage per organisation x endpoint x ratezone x traffic type x currency, kept by a
-- materialized view on every insert into usage_records. Sums are exact (UInt64 bytes,
-- Decimal MB and cost). Rows for the same key are summed at merge time, so always read
-- it with sum(...) GROUP BY. The deduplication window lets a repeated insert token drop
-- the view's block too (deduplicate_blocks_in_dependent_materialized_views = 1).
CREATE TABLE IF NOT EXISTS usage_daily
(
    day Date,
    organisation_id UInt64,
    endpoint_id UInt64,
    ratezone_id UInt64,
    traffic_type UInt8,
    currency LowCardinality(String),
    records UInt64,
    volume_bytes_rx UInt64,
    volume_bytes_tx UInt64,
    volume_bytes_total UInt64,
    volume_rx Decimal(38, 6),
    volume_tx Decimal(38, 6),
    volume_total Decimal(38, 6),
    cost Decimal(38, 10)
)
ENGINE = SummingMergeTree((records, volume_bytes_rx, volume_bytes_tx, volume_bytes_total, volume_rx, volume_tx, volume_total, cost))
PARTITION BY toYYYYMM(day)
ORDER BY (organisation_id, day, endpoint_id, ratezone_id, traffic_type, currency)
SETTINGS non_replicated_deduplication_window = 10000;

-- A record counts on the UTC day its usage ended, like the limits and quotas (late records too).
CREATE MATERIALIZED VIEW IF NOT EXISTS usage_daily_mv TO usage_daily AS
SELECT
    toDate(end_timestamp) AS day,
    organisation_id,
    endpoint_id,
    ratezone_id,
    traffic_type,
    currency,
    count() AS records,
    sum(volume_bytes_rx) AS volume_bytes_rx,
    sum(volume_bytes_tx) AS volume_bytes_tx,
    sum(volume_bytes_total) AS volume_bytes_total,
    sum(volume_rx) AS volume_rx,
    sum(volume_tx) AS volume_tx,
    sum(volume_total) AS volume_total,
    sum(cost) AS cost
FROM usage_records
GROUP BY day, organisation_id, endpoint_id, ratezone_id, traffic_type, currency;
