//! Gateways' figures for the cluster view of analytics: each gateway writes its own
//! row every round ([`Publisher`]), and reads the others' rows when a cluster view is
//! asked for ([`FigureBoard::read`]).
//!
//! Why the metadata database rather than requests between gateways: every gateway
//! already holds its credentials and nothing else does, so there is no new secret to
//! hand out, no new port or route a client could reach, and no address to get right
//! behind a load balancer or the PROXY protocol. A client can neither read the
//! figures nor forge them. The table is UNLOGGED: figures are rewritten every round,
//! so they need no WAL, no replica and no backup (after a crash or a failover of the
//! metadata database the table is empty until the next round). The bytes are opaque
//! here (the analytics crate reads and writes them).

use std::sync::Arc;
use std::time::Duration;

use shard_manager::config::ClusterSettings;
use tokio_postgres::Client;

use super::meta;
use super::MapError;

/// Longest a publish or a read may take.
const META_TIMEOUT: Duration = Duration::from_secs(2);
/// Rows of gateways gone this long are deleted (by any publisher, now and then).
const FORGET_AFTER_SECS: f64 = 600.0;

/// One gateway's figures as last published.
#[derive(Debug, Clone)]
pub struct Published {
    pub gateway_id: String,
    /// Milliseconds since it was written (by the metadata database's clock).
    pub age_ms: u64,
    pub figures: Vec<u8>,
    /// The gateway's address, while the gateways table still lists it (live or not).
    pub address: Option<String>,
}

/// The connection the publisher keeps, shared with the readers of the cluster view.
#[derive(Default)]
pub struct FigureBoard {
    client: std::sync::Mutex<Option<Arc<Client>>>,
}

impl FigureBoard {
    fn held(&self) -> std::sync::MutexGuard<'_, Option<Arc<Client>>> {
        self.client.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The figures of `gateway_ids` (those the map lists as live), as last published,
    /// and those of any other gateway that published within `within_ms` (one that
    /// stopped during a view's window: its requests are missing from it). Fails when
    /// the publisher holds no connection or the database does not answer in time; the
    /// caller then has no other gateway's figures.
    pub async fn read(
        &self,
        gateway_ids: &[String],
        within_ms: u64,
    ) -> Result<Vec<Published>, MapError> {
        let client = self.held().clone().ok_or_else(|| {
            MapError::Invalid("no connection to the metadata database yet".into())
        })?;
        let within = within_ms as f64;
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&gateway_ids, &within];
        let query = client.query(
            "SELECT f.gateway_id::text,
                    greatest((extract(epoch FROM now() - f.published_at) * 1000)::bigint, 0),
                    f.figures, g.address
               FROM gateway_figures f LEFT JOIN gateways g ON g.id = f.gateway_id
              WHERE f.gateway_id::text = ANY($1)
                 OR f.published_at >= now() - make_interval(secs => $2::float8 / 1000)",
            &params,
        );
        let rows = tokio::time::timeout(META_TIMEOUT, query)
            .await
            .map_err(|_| {
                MapError::Invalid(format!("no answer within {} ms", META_TIMEOUT.as_millis()))
            })?
            .map_err(MapError::from_query)?;
        Ok(rows
            .iter()
            .map(|r| Published {
                gateway_id: r.get(0),
                age_ms: r.get::<_, i64>(1) as u64,
                figures: r.get(2),
                address: r.get(3),
            })
            .collect())
    }
}

/// Every gateway's figures published within `max_age_ms`, by the database's clock (the
/// admin CLI's read: `rebalance --by load`).
pub async fn recent(client: &Client, max_age_ms: u64) -> Result<Vec<Published>, MapError> {
    let max_age = max_age_ms as f64;
    let rows = client
        .query(
            "SELECT gateway_id::text,
                    greatest((extract(epoch FROM now() - published_at) * 1000)::bigint, 0),
                    figures
               FROM gateway_figures
              WHERE published_at >= now() - make_interval(secs => $1::float8 / 1000)
              ORDER BY gateway_id",
            &[&max_age],
        )
        .await
        .map_err(MapError::from_query)?;
    Ok(rows
        .iter()
        .map(|r| Published {
            gateway_id: r.get(0),
            age_ms: r.get::<_, i64>(1) as u64,
            figures: r.get(2),
            address: None,
        })
        .collect())
}

/// The publishing task; stops when dropped.
pub struct Publisher(tokio::task::JoinHandle<()>);

impl Drop for Publisher {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Publisher {
    /// Every `every`, calls `produce` (off the request path) and writes what it returns
    /// as `gateway_id`'s row. `produce` is called each round even when the database is
    /// unreachable, so work it does besides (folding counters) goes on.
    pub fn spawn(
        settings: ClusterSettings,
        gateway_id: uuid::Uuid,
        every: Duration,
        board: Arc<FigureBoard>,
        produce: impl Fn() -> Vec<u8> + Send + 'static,
    ) -> Self {
        Self(tokio::spawn(publish(
            settings, gateway_id, every, board, produce,
        )))
    }
}

async fn publish(
    settings: ClusterSettings,
    gateway_id: uuid::Uuid,
    every: Duration,
    board: Arc<FigureBoard>,
    produce: impl Fn() -> Vec<u8> + Send + 'static,
) {
    let id = gateway_id.to_string();
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut rounds: u64 = 0;
    loop {
        ticker.tick().await;
        let figures = produce();
        let client = board.held().clone();
        let client = match client {
            Some(client) if !client.is_closed() => client,
            _ => match meta::connect(&settings).await {
                Ok(conn) => {
                    let client = Arc::new(conn.client);
                    *board.held() = Some(client.clone());
                    client
                }
                Err(e) => {
                    tracing::debug!(error = %e, "figures not published: the metadata database did not answer");
                    continue;
                }
            },
        };
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&id, &figures];
        let write = client.execute(
            "INSERT INTO gateway_figures (gateway_id, published_at, figures)
             VALUES ($1::text::uuid, now(), $2)
             ON CONFLICT (gateway_id) DO UPDATE SET published_at = now(), figures = excluded.figures",
            &params,
        );
        match tokio::time::timeout(META_TIMEOUT, write).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "figures not published");
                if e.is_closed() {
                    *board.held() = None;
                }
            }
            Err(_) => {
                tracing::warn!("figures not published: no answer within 2 s");
                *board.held() = None;
            }
        }
        rounds += 1;
        if rounds.is_multiple_of(60) {
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&FORGET_AFTER_SECS];
            let forget = client.execute(
                "DELETE FROM gateway_figures WHERE published_at < now() - make_interval(secs => $1)",
                &params,
            );
            let _ = tokio::time::timeout(META_TIMEOUT, forget).await;
        }
    }
}
