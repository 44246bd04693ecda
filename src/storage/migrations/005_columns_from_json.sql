-- The typed columns can be computed by ClickHouse from the json column alone, so the
-- engine inserts its output log's JSON text as it is (INSERT ... (json) FORMAT
-- JSONAsString): no parsing and re-encoding in Node. An insert that names the columns
-- (the row path) still sets them itself.
-- Decimal values are cut from the text with a pattern, not through JSONExtract, which
-- reads numbers as doubles: the stored cost has exactly the digits of the record.
ALTER TABLE events
    MODIFY COLUMN id DEFAULT JSONExtractUInt(json, 'id'),
    MODIFY COLUMN timestamp DEFAULT parseDateTime64BestEffort(JSONExtractString(json, 'timestamp'), 3, 'UTC'),
    MODIFY COLUMN event_type DEFAULT JSONExtractUInt(json, 'event_type', 'id'),
    MODIFY COLUMN event_type_description DEFAULT JSONExtractString(json, 'event_type', 'description'),
    MODIFY COLUMN severity DEFAULT JSONExtractUInt(json, 'event_severity', 'id'),
    MODIFY COLUMN alert DEFAULT JSONExtractBool(json, 'alert'),
    MODIFY COLUMN organisation_id DEFAULT JSONExtractUInt(json, 'organisation', 'id'),
    MODIFY COLUMN endpoint_id DEFAULT JSONExtract(json, 'endpoint', 'id', 'Nullable(UInt64)'),
    MODIFY COLUMN sim_id DEFAULT JSONExtract(json, 'sim', 'id', 'Nullable(UInt64)'),
    MODIFY COLUMN imsi DEFAULT JSONExtract(json, 'imsi', 'imsi', 'Nullable(String)'),
    MODIFY COLUMN source DEFAULT JSONExtractUInt(json, 'event_source', 'id');

ALTER TABLE usage_records
    MODIFY COLUMN id DEFAULT JSONExtractUInt(json, 'id'),
    MODIFY COLUMN endpoint_id DEFAULT JSONExtractUInt(json, 'endpoint', 'id'),
    MODIFY COLUMN organisation_id DEFAULT JSONExtractUInt(json, 'organisation', 'id'),
    MODIFY COLUMN traffic_type DEFAULT JSONExtractUInt(json, 'traffic_type', 'id'),
    MODIFY COLUMN start_timestamp DEFAULT parseDateTime64BestEffort(JSONExtractString(json, 'start_timestamp'), 3, 'UTC'),
    MODIFY COLUMN end_timestamp DEFAULT parseDateTime64BestEffort(JSONExtractString(json, 'end_timestamp'), 3, 'UTC'),
    MODIFY COLUMN volume_bytes_rx DEFAULT JSONExtractUInt(json, 'rating', 'rx_bytes'),
    MODIFY COLUMN volume_bytes_tx DEFAULT JSONExtractUInt(json, 'rating', 'tx_bytes'),
    MODIFY COLUMN volume_bytes_total DEFAULT JSONExtractUInt(json, 'rating', 'rx_bytes') + JSONExtractUInt(json, 'rating', 'tx_bytes'),
    MODIFY COLUMN volume_rx DEFAULT toDecimal64(extract(json, '"rx":([0-9]+(?:\\.[0-9]+)?)[,}]'), 6),
    MODIFY COLUMN volume_tx DEFAULT toDecimal64(extract(json, '"tx":([0-9]+(?:\\.[0-9]+)?)[,}]'), 6),
    MODIFY COLUMN volume_total DEFAULT toDecimal64(extract(json, '"total":([0-9]+(?:\\.[0-9]+)?)[,}]'), 6),
    MODIFY COLUMN cost DEFAULT toDecimal128(extract(json, '"cost":(-?[0-9]+(?:\\.[0-9]+)?)[,}]'), 10),
    MODIFY COLUMN currency DEFAULT JSONExtractString(json, 'currency', 'code'),
    MODIFY COLUMN tariff_id DEFAULT JSONExtractUInt(json, 'tariff', 'id'),
    MODIFY COLUMN tariff_version DEFAULT JSONExtractUInt(json, 'rating', 'tariff_version'),
    MODIFY COLUMN ratezone_id DEFAULT JSONExtractUInt(json, 'tariff', 'ratezone', 'id'),
    MODIFY COLUMN ratezone_name DEFAULT JSONExtractString(json, 'tariff', 'ratezone', 'name'),
    MODIFY COLUMN operator_id DEFAULT JSONExtractUInt(json, 'operator', 'id'),
    MODIFY COLUMN operator_name DEFAULT JSONExtractString(json, 'operator', 'name'),
    MODIFY COLUMN country_mcc DEFAULT JSONExtractString(json, 'operator', 'country', 'mcc'),
    MODIFY COLUMN session_id DEFAULT JSONExtract(json, 'session_id', 'Nullable(String)'),
    MODIFY COLUMN imsi DEFAULT JSONExtractString(json, 'imsi');
