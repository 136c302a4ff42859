-- Each API key's own limits (`keys::limits`): NULL follows the gateways' `[limits]`, 0 is
-- none (a burst always has a size), a positive number is the limit.
ALTER TABLE api_keys
    ADD COLUMN IF NOT EXISTS rate_per_sec INTEGER CHECK (rate_per_sec >= 0),
    ADD COLUMN IF NOT EXISTS burst        INTEGER CHECK (burst > 0),
    ADD COLUMN IF NOT EXISTS concurrency  INTEGER CHECK (concurrency >= 0);
