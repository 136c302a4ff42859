//! The running balancer: every gateway starts the task, the one holding the balancer's
//! advisory lock checks every `check_secs`: it weighs the slots by the figures the live
//! gateways publish, decides ([`super::decision`]), writes its line in the map's history
//! ([`super::history`]) and runs the moves it decided, one after another.

use std::time::{Duration, Instant};

use shard_manager::config::ClusterSettings;
use tracing::Instrument;

use super::decision::{Decision, Hold, Hysteresis, Weighed};
use super::history::{actor, note, Journal, Recent};
use super::settings::BalancerSettings;
use crate::map::figures::{self, Published};
use crate::map::{change, meta, schema};
use crate::moves::balance::totals;
use crate::moves::mover::{self, Request};
use crate::moves::plan::Which;
use crate::moves::spans;
use crate::moves::store::Moves;

/// Advisory lock (metadata database) held by the one running balancer.
const BALANCER_LOCK: i64 = 0x0053_4742_414c; // "SGBAL"
/// Figures older than this are a gateway gone, not load.
const MAX_AGE_MS: u64 = 5_000;

/// The running balancer task; stops when dropped.
pub struct Balancer(tokio::task::JoinHandle<()>);

impl Drop for Balancer {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Balancer {
    /// Starts the task when `balancer.auto`; `weigh` turns the published figures into
    /// each slot's requests (the gateway knows their format).
    pub fn spawn(
        settings: ClusterSettings,
        balancer: BalancerSettings,
        weigh: impl Fn(&[Published], usize) -> Vec<u64> + Send + Sync + 'static,
    ) -> Option<Self> {
        balancer
            .auto
            .then(|| Self(tokio::spawn(run(settings, balancer, weigh))))
    }
}

async fn run(
    settings: ClusterSettings,
    balancer: BalancerSettings,
    weigh: impl Fn(&[Published], usize) -> Vec<u64> + Send + Sync + 'static,
) {
    let every = Duration::from_secs(balancer.check_secs.max(1));
    loop {
        // The lock is the connection's: held while it lives, gone with it.
        let mut conn = match meta::connect(&settings).await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::debug!(target: "balancer", error = %e, "metadata database not reached");
                tokio::time::sleep(every).await;
                continue;
            }
        };
        let locked = conn
            .client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&BALANCER_LOCK])
            .await
            .map(|r| r.get::<_, bool>(0));
        if !matches!(locked, Ok(true)) {
            drop(conn);
            tokio::time::sleep(every).await;
            continue;
        }
        // Its lines in the history need the latest metadata migrations.
        if let Err(e) = schema::apply(&mut conn.client).await {
            tracing::warn!(target: "balancer", error = %e, "could not apply the metadata migrations");
            drop(conn);
            tokio::time::sleep(every).await;
            continue;
        }
        tracing::info!(target: "balancer", "this gateway runs the automatic balancer");
        note(
            &conn.client,
            &format!(
                "runs on this host (pid {}): margin {}%, hold {}s, spacing {}s, at most {} slots an hour",
                std::process::id(),
                balancer.margin_percent,
                balancer.hold_secs,
                balancer.spacing_secs,
                balancer.max_slots_per_hour
            ),
            serde_json::json!({"decision": "start"}),
        )
        .await;
        let mut memory = Hysteresis::default();
        let mut journal = Journal::default();
        loop {
            tokio::time::sleep(every).await;
            if conn.client.is_closed() {
                break;
            }
            let round = spans::balance();
            let checked = check(
                &settings,
                &balancer,
                &conn.client,
                &weigh,
                &mut memory,
                &mut journal,
            )
            .instrument(round.clone())
            .await;
            if let Err(e) = checked {
                spans::failed(&round, &e);
                tracing::warn!(target: "balancer", error = %e, "balancer check failed");
            }
        }
    }
}

async fn check(
    settings: &ClusterSettings,
    balancer: &BalancerSettings,
    client: &tokio_postgres::Client,
    weigh: &(impl Fn(&[Published], usize) -> Vec<u64> + Send + Sync),
    memory: &mut Hysteresis,
    journal: &mut Journal,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let map = change::current(settings).await?;
    let published = figures::recent(client, MAX_AGE_MS).await?;
    let weights = weigh(&published, map.owners.len());
    let per_shard = totals(&map.owners, &weights, map.shards.len());
    spans::weighed(map.version.0, &per_shard);
    // A move under way (this runner's last, or an operator's) changes the placement
    // being weighed: nothing is decided until it ends.
    let running = Moves::new(client).active_where("true", &[]).await?;
    let decision = match running.first() {
        Some(mv) => Decision::Hold(Hold::MoveRunning {
            id: mv.id,
            source: mv.detail.source.0,
            target: mv.detail.target.0,
        }),
        None => {
            let retired = map.retired();
            let weighed = Weighed {
                owners: &map.owners,
                weights: &weights,
                shards: map.shards.len(),
                retired: &retired,
            };
            let recent = Recent::read(client).await?;
            memory.decide(balancer, &weighed, recent, Instant::now())
        }
    };
    match decision {
        Decision::Hold(why) => {
            spans::decided("hold", why.kind(), &why);
            tracing::info!(target: "balancer", shards = ?per_shard, decision = "hold", reason = %why);
            if journal.records(why.kind()) {
                let detail = serde_json::json!({
                    "decision": "hold", "reason": why.kind(), "shards": per_shard,
                });
                note(client, &format!("hold, {}: {why}", why.kind()), detail).await;
            }
        }
        Decision::Move(planned) => {
            let mean = per_shard.iter().sum::<u64>() / per_shard.len().max(1) as u64;
            let why = format!(
                "the busiest shard stayed above the mean {mean} by more than {}% for {}s",
                balancer.margin_percent, balancer.hold_secs
            );
            spans::decided("move", "above the mean", &why);
            for m in &planned {
                spans::move_decided(m.from.0, m.to.0, &m.slots, m.weight);
            }
            for m in planned {
                tracing::info!(target: "balancer", shards = ?per_shard, decision = "move",
                    from = %m.from, to = %m.to, slots = m.slots.len(), weight = m.weight);
                let list: Vec<String> = m.slots.iter().map(i32::to_string).collect();
                let summary = format!(
                    "move, {} slot(s) ({} requests a minute) from {} ({} a minute, mean {mean}) to {}: slots {}",
                    m.slots.len(),
                    m.weight,
                    m.from,
                    per_shard.get(m.from.index()).copied().unwrap_or(0),
                    m.to,
                    list.join(",")
                );
                journal.records("move");
                let detail = serde_json::json!({
                    "decision": "move", "from": m.from.0, "to": m.to.0, "slots": m.slots,
                    "weight": m.weight, "shards": per_shard,
                });
                // The line is what the spacing and the cap count ([`Recent`]), under
                // this runner and any after it: a move it cannot record is not made.
                meta::note(client, &actor(), "balancer", &summary, detail).await?;
                let request = Request {
                    kind: "balance".into(),
                    from: m.from.0,
                    to: m.to.0,
                    which: Which::List(list.join(",")),
                };
                let moved = match mover::start(settings, &request).await {
                    Ok(mv) => mover::run(settings, mv.id, &mut |_| {}).await,
                    Err(e) => Err(e),
                };
                match moved {
                    Ok(done) => {
                        tracing::info!(target: "balancer", id = done.id, phase = ?done.phase, "balancer move ended");
                    }
                    Err(e) => {
                        journal.records("move failed");
                        let summary = format!("move failed, from {} to {}: {e}", m.from, m.to);
                        let detail = serde_json::json!({
                            "decision": "move failed", "from": m.from.0, "to": m.to.0,
                            "error": e.to_string(),
                        });
                        note(client, &summary, detail).await;
                        return Err(e.into());
                    }
                }
            }
        }
    }
    Ok(())
}
