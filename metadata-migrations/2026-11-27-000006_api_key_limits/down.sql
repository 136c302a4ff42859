ALTER TABLE api_keys
    DROP COLUMN rate_per_sec,
    DROP COLUMN burst,
    DROP COLUMN concurrency;
