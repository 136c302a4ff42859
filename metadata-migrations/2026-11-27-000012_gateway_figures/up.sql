-- Each gateway's figures for the cluster view of analytics (`map::figures`), one row per
-- gateway.
CREATE UNLOGGED TABLE gateway_figures (
    gateway_id   UUID        PRIMARY KEY,
    published_at TIMESTAMPTZ NOT NULL,
    figures      BYTEA       NOT NULL
);
