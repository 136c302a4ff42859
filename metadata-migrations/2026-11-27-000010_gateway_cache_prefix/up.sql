-- The cache key prefix each gateway reads under (NULL: no cache), so that a mover can
-- tell every cache in use that an epoch is retired (`moves::caches`).
ALTER TABLE gateways ADD COLUMN cache_prefix TEXT;
