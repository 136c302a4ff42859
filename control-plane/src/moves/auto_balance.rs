//! The automatic balancer (`[balancer] auto = true`, off by default): one runner in the
//! whole cluster moves slots by load when a shard stays busier than the others.
//!
//! Every gateway starts the task; the one that holds the balancer's advisory lock on
//! the metadata database runs it, the others wait for the lock (a dead runner's
//! connection ends, and its lock with it). Every `check_secs` the runner weighs each
//! slot by the last minute's requests of every live gateway (the load they publish for
//! the cluster view) and decides, with hysteresis:
//!
//! - it acts only when the busiest shard has stayed above the mean by more than
//!   `margin_percent` for `hold_secs` without a break (one burst is not a trend);
//! - it then runs the plan's moves (from the busiest shard, to within the margin of
//!   the mean), one after another, and none again for `spacing_secs`, so the load is measured under the new
//!   placement before anything else moves;
//! - it moves at most `max_slots_per_hour` slots in any hour.
//!
//! Each decision and non-decision is logged (`balancer` target, with the shards' totals
//! and the reason) and written in the map's history as a note (action `balancer`, the
//! version it saw): every move it decides, and a hold when its reason's kind changes
//! ([`Journal`]), so a steady state costs one line, not one a check. With spans
//! recorded, each check is a trace of its own ([`super::spans::balance`]: the load it
//! weighed, its decision and why), linked with the trace of each move it ran. No
//! check decides while a move is running. A move it runs is an ordinary online move,
//! whose switch is a change in the history like any other.
//!
//! The spacing and the hourly cap count the balancer's `move` lines in the history
//! ([`Recent`], read at every check), whichever runner wrote them: a gateway that takes
//! the lock over after another stopped goes on with the same spacing and the same cap.
//! A move whose line cannot be written is not made. Only the hold starts again under a
//! new runner (the busiest shard must stay above the margin for `hold_secs` once more).

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use shard_manager::config::ClusterSettings;
use shard_manager::routing::ShardId;
use tracing::Instrument;

use super::balance::{plan, totals, Planned};
use super::mover::{self, Request};
use super::plan::Which;
use super::spans;
use super::store::Moves;
use crate::map::figures::{self, Published};
use crate::map::{change, meta, schema};

/// Advisory lock (metadata database) held by the one running balancer.
const BALANCER_LOCK: i64 = 0x0053_4742_414c; // "SGBAL"
/// Figures older than this are a gateway gone, not load.
const MAX_AGE_MS: u64 = 5_000;

/// `[balancer]`: the automatic balancer, off by default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BalancerSettings {
    /// Move slots by load automatically (one runner in the cluster). Off by default: a
    /// move costs a copy of the slots' rows, which an operator may prefer to schedule.
    pub auto: bool,
    /// How much busier than the mean the busiest shard must be to act, in percent (25:
    /// a quarter above the mean). Below it a move would cost more than it evens out.
    pub margin_percent: u32,
    /// How long the busiest shard must stay above the margin, seconds: a burst shorter
    /// than this is not a trend.
    pub hold_secs: u64,
    /// Least time between two moves, seconds: the load is measured under the new
    /// placement (a minute's window, and the figures' second) before anything moves again.
    pub spacing_secs: u64,
    /// Most slots moved in any hour, so a balancer gone wrong cannot churn the cluster.
    pub max_slots_per_hour: u32,
    /// How often the runner weighs the slots, seconds.
    pub check_secs: u64,
}

impl Default for BalancerSettings {
    fn default() -> Self {
        Self {
            auto: false,
            margin_percent: 25,
            hold_secs: 60,
            spacing_secs: 300,
            max_slots_per_hour: 64,
            check_secs: 10,
        }
    }
}

/// What the runner decided at one check.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Nothing moves, and why.
    Hold(Hold),
    /// These moves run, one after another (the plan, within the hour's cap).
    Move(Vec<Planned>),
}

/// Why nothing moves at one check. The history records a hold when its kind differs
/// from the last line the runner wrote, so a steady state is one line, not one a check.
#[derive(Debug, Clone, PartialEq)]
pub enum Hold {
    /// No gateway published any request in the last minute.
    NoLoad,
    /// The busiest shard is within the margin of the mean.
    Balanced {
        busiest: u64,
        mean: u64,
        margin: u32,
    },
    /// The busiest shard is above the margin, not yet for `hold_secs`.
    Rising {
        busiest: u64,
        mean: u64,
        held_secs: u64,
        hold_secs: u64,
    },
    /// The last move was less than `spacing_secs` ago.
    Spacing { since_secs: u64, spacing_secs: u64 },
    /// Moving slots would not narrow the gap (one slot alone is hotter than the gap).
    NoUsefulMove,
    /// The hour's cap of moved slots is reached.
    HourlyCap { moved: u32, cap: u32 },
    /// A move is under way (the runner's or an operator's): the load is weighed again
    /// once the placement stands still.
    MoveRunning { id: i64, source: u32, target: u32 },
}

impl Hold {
    /// The reason's kind, one word: a line is written when it changes.
    pub fn kind(&self) -> &'static str {
        match self {
            Hold::NoLoad => "no load",
            Hold::Balanced { .. } => "balanced",
            Hold::Rising { .. } => "above the mean",
            Hold::Spacing { .. } => "spacing",
            Hold::NoUsefulMove => "no useful move",
            Hold::HourlyCap { .. } => "hourly cap",
            Hold::MoveRunning { .. } => "move running",
        }
    }
}

impl std::fmt::Display for Hold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Hold::NoLoad => write!(f, "no requests in the last minute"),
            Hold::Balanced {
                busiest,
                mean,
                margin,
            } => write!(
                f,
                "the busiest shard's {busiest} requests a minute are within {margin}% of the mean {mean}"
            ),
            Hold::Rising {
                busiest,
                mean,
                held_secs,
                hold_secs,
            } => write!(
                f,
                "the busiest shard's {busiest} requests a minute are above the mean {mean} for {held_secs}s of {hold_secs}s"
            ),
            Hold::Spacing {
                since_secs,
                spacing_secs,
            } => write!(f, "the last move was {since_secs}s ago, spacing {spacing_secs}s"),
            Hold::NoUsefulMove => write!(
                f,
                "no slot move narrows the gap (one slot alone is too hot to move)"
            ),
            Hold::HourlyCap { moved, cap } => {
                write!(f, "{moved} slots moved in the last hour, the cap is {cap}")
            }
            Hold::MoveRunning { id, source, target } => write!(
                f,
                "move {id} (shard-{source} -> shard-{target}) is running; weighed again when it ends"
            ),
        }
    }
}

/// The balancer's own moves as the map's history records them: its `move` lines,
/// written before each move runs, by this runner or by any runner before it. Read at
/// every check, so the spacing and the hourly cap survive a change of runner.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recent {
    /// Slots the balancer decided to move in the last hour.
    pub slots_last_hour: u32,
    /// How long ago its last move was decided; `None`: never.
    pub since_last_move: Option<Duration>,
}

impl Recent {
    /// Reads the balancer's `move` lines from the map's history, their ages by the
    /// metadata server's clock (the runners' clocks never meet).
    pub async fn read(client: &tokio_postgres::Client) -> Result<Self, tokio_postgres::Error> {
        let row = client
            .query_one(
                "SELECT coalesce(sum(CASE WHEN jsonb_typeof(detail -> 'slots') = 'array'
                                          THEN jsonb_array_length(detail -> 'slots') END)
                                   FILTER (WHERE at > now() - interval '1 hour'), 0)::int8,
                        extract(epoch FROM now() - max(at))::float8
                   FROM map_history
                  WHERE note AND action = 'balancer' AND detail ->> 'decision' = 'move'",
                &[],
            )
            .await?;
        let slots: i64 = row.get(0);
        let since: Option<f64> = row.get(1);
        Ok(Self {
            slots_last_hour: u32::try_from(slots).unwrap_or(u32::MAX),
            since_last_move: since.map(|secs| Duration::from_secs_f64(secs.max(0.0))),
        })
    }
}

/// What one check weighs: each slot's owner and requests, the shards, the retired ones.
#[derive(Debug, Clone, Copy)]
pub struct Weighed<'a> {
    /// Each slot's owner, by slot.
    pub owners: &'a [ShardId],
    /// Each slot's requests over the last minute, by slot.
    pub weights: &'a [u64],
    /// How many shards the map has (retired ones included).
    pub shards: usize,
    /// The retired shards: they give slots, never take them, and set no mean.
    pub retired: &'a [ShardId],
}

/// The runner's memory between checks: the hysteresis. The spacing and the hourly cap
/// are not kept here but read from the history ([`Recent`]).
#[derive(Debug, Default)]
pub struct Hysteresis {
    above_since: Option<Instant>,
}

impl Hysteresis {
    /// Decides at `now` from what is `weighed` and the balancer's `recent` moves (pure
    /// but for the hold it keeps).
    pub fn decide(
        &mut self,
        settings: &BalancerSettings,
        weighed: &Weighed<'_>,
        recent: Recent,
        now: Instant,
    ) -> Decision {
        let Weighed {
            owners,
            weights,
            shards,
            retired,
        } = *weighed;
        let per_shard = totals(owners, weights, shards);
        let active: Vec<u64> = (0..shards)
            .filter(|i| !retired.contains(&ShardId(*i as u32)))
            .map(|i| per_shard[i])
            .collect();
        let total: u64 = active.iter().sum();
        if active.is_empty() || total == 0 {
            self.above_since = None;
            return Decision::Hold(Hold::NoLoad);
        }
        let mean = total as f64 / active.len() as f64;
        let margin = f64::from(settings.margin_percent) / 100.0;
        let busiest = active.iter().copied().max().unwrap_or(0) as f64;
        if busiest <= mean * (1.0 + margin) {
            self.above_since = None;
            return Decision::Hold(Hold::Balanced {
                busiest: busiest as u64,
                mean: mean.round() as u64,
                margin: settings.margin_percent,
            });
        }
        let since = *self.above_since.get_or_insert(now);
        let held = now.saturating_duration_since(since);
        if held < Duration::from_secs(settings.hold_secs) {
            return Decision::Hold(Hold::Rising {
                busiest: busiest as u64,
                mean: mean.round() as u64,
                held_secs: held.as_secs(),
                hold_secs: settings.hold_secs,
            });
        }
        if let Some(since_move) = recent.since_last_move {
            if since_move < Duration::from_secs(settings.spacing_secs) {
                return Decision::Hold(Hold::Spacing {
                    since_secs: since_move.as_secs(),
                    spacing_secs: settings.spacing_secs,
                });
            }
        }
        let moved = recent.slots_last_hour;
        let room = settings.max_slots_per_hour.saturating_sub(moved);
        let mut planned = plan(owners, weights, shards, margin, retired);
        if planned.is_empty() {
            return Decision::Hold(Hold::NoUsefulMove);
        }
        if room == 0 {
            return Decision::Hold(Hold::HourlyCap {
                moved,
                cap: settings.max_slots_per_hour,
            });
        }
        // The heaviest moves first, and each move's heaviest slots, within the hour's cap.
        planned.sort_by_key(|m| std::cmp::Reverse(m.weight));
        let mut left = room as usize;
        let mut taken = Vec::new();
        for mut m in planned {
            if left == 0 {
                break;
            }
            if m.slots.len() > left {
                m.slots
                    .sort_by_key(|s| std::cmp::Reverse(weights[*s as usize]));
                m.slots.truncate(left);
                m.weight = m.slots.iter().map(|s| weights[*s as usize]).sum();
                m.slots.sort_unstable();
            }
            left -= m.slots.len();
            taken.push(m);
        }
        self.above_since = None;
        Decision::Move(taken)
    }
}

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

/// What the runner last wrote in the map's history: a move (and a failed one) always
/// gets a line, a hold only when its kind differs from the last line's, so "above the
/// mean for 12s of 60s" is written once as it starts, not at every check.
#[derive(Debug, Default)]
pub struct Journal {
    last: Option<&'static str>,
}

impl Journal {
    /// Whether a line of `kind` is written now (and, if so, it becomes the last).
    pub fn records(&mut self, kind: &'static str) -> bool {
        let always = matches!(kind, "move" | "move failed");
        if !always && self.last == Some(kind) {
            return false;
        }
        self.last = Some(kind);
        true
    }
}

/// Who writes the balancer's lines: the host, as an admin command's actor says it.
fn actor() -> String {
    format!("balancer@{}", meta::host_name())
}

/// Writes one of the balancer's lines in the map's history; a line that cannot be
/// written is logged, never fatal to the runner.
async fn note(client: &tokio_postgres::Client, summary: &str, detail: serde_json::Value) {
    if let Err(e) = meta::note(client, &actor(), "balancer", summary, detail).await {
        tracing::warn!(target: "balancer", error = %e, summary, "could not write the balancer's line in the map's history");
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

#[cfg(test)]
mod tests {
    use super::*;

    fn s(i: u32) -> ShardId {
        ShardId(i)
    }

    fn quick() -> BalancerSettings {
        BalancerSettings {
            auto: true,
            margin_percent: 25,
            hold_secs: 10,
            spacing_secs: 60,
            max_slots_per_hour: 3,
            check_secs: 1,
        }
    }

    /// Three shards, none retired.
    fn weighed<'a>(owners: &'a [ShardId], weights: &'a [u64]) -> Weighed<'a> {
        Weighed {
            owners,
            weights,
            shards: 3,
            retired: &[],
        }
    }

    /// The history's `move` lines as a runner leaves them: when, and how many slots.
    #[derive(Default)]
    struct History(Vec<(Instant, u32)>);

    impl History {
        /// What [`Recent::read`] reads from these lines at `now`.
        fn at(&self, now: Instant) -> Recent {
            let hour = Duration::from_secs(3600);
            Recent {
                slots_last_hour: self
                    .0
                    .iter()
                    .filter(|(at, _)| now.saturating_duration_since(*at) < hour)
                    .map(|(_, n)| n)
                    .sum(),
                since_last_move: self
                    .0
                    .iter()
                    .map(|(at, _)| now.saturating_duration_since(*at))
                    .min(),
            }
        }

        /// Decides as the runner does: the history read first, a move's line written.
        fn decide(
            &mut self,
            memory: &mut Hysteresis,
            settings: &BalancerSettings,
            weighed: &Weighed<'_>,
            now: Instant,
        ) -> Decision {
            let decision = memory.decide(settings, weighed, self.at(now), now);
            if let Decision::Move(moves) = &decision {
                let slots = moves.iter().map(|m| m.slots.len() as u32).sum();
                self.0.push((now, slots));
            }
            decision
        }
    }

    #[test]
    fn acts_once_after_the_hold_then_holds_while_balanced() {
        // 12 slots, 4 per shard; shard 0's slots each take 10 requests, the others 1.
        let mut owners: Vec<ShardId> = (0..12).map(|i| s(i % 3)).collect();
        let weights: Vec<u64> = (0..12).map(|i| if i % 3 == 0 { 10 } else { 1 }).collect();
        let mut memory = Hysteresis::default();
        let mut history = History::default();
        let t0 = Instant::now();
        let at = |secs| t0 + Duration::from_secs(secs);
        let mut decide = |m: &mut Hysteresis, o: &[ShardId], t| {
            history.decide(m, &quick(), &weighed(o, &weights), t)
        };
        assert!(matches!(
            decide(&mut memory, &owners, at(0)),
            Decision::Hold(Hold::Rising {
                held_secs: 0,
                hold_secs: 10,
                ..
            })
        ));
        assert!(matches!(
            decide(&mut memory, &owners, at(9)),
            Decision::Hold(_)
        ));
        let Decision::Move(planned) = decide(&mut memory, &owners, at(10)) else {
            panic!("no move after the hold");
        };
        assert!(planned.iter().all(|m| m.from == s(0)));
        assert!(planned.iter().map(|m| m.slots.len()).sum::<usize>() <= 3);
        for m in &planned {
            for slot in &m.slots {
                owners[*slot as usize] = m.to;
            }
        }
        // Afterwards: within the margin, or spaced; never a move back.
        for secs in 11..200 {
            match decide(&mut memory, &owners, at(secs)) {
                Decision::Hold(_) => {}
                Decision::Move(moves) => {
                    assert!(secs >= 70, "a second move {secs}s in, before the spacing");
                    for m in moves {
                        assert_ne!(m.to, s(0), "a move back to the busy shard");
                        for slot in &m.slots {
                            owners[*slot as usize] = m.to;
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_burst_shorter_than_the_hold_moves_nothing() {
        let owners: Vec<ShardId> = (0..6).map(|i| s(i % 3)).collect();
        let busy: Vec<u64> = vec![10, 1, 1, 10, 1, 1];
        let calm = vec![1u64; 6];
        let mut memory = Hysteresis::default();
        let t0 = Instant::now();
        let at = |secs| t0 + Duration::from_secs(secs);
        let none = Recent::default();
        for secs in 0..9 {
            let d = memory.decide(&quick(), &weighed(&owners, &busy), none, at(secs));
            assert!(matches!(d, Decision::Hold(_)));
        }
        let d = memory.decide(&quick(), &weighed(&owners, &calm), none, at(9));
        assert!(matches!(d, Decision::Hold(Hold::Balanced { .. })));
        let d = memory.decide(&quick(), &weighed(&owners, &busy), none, at(12));
        assert!(
            matches!(d, Decision::Hold(Hold::Rising { held_secs: 0, .. })),
            "the hold starts again"
        );
    }

    #[test]
    fn the_hourly_cap_holds_moves_back() {
        let owners: Vec<ShardId> = (0..30).map(|i| s(i % 3)).collect();
        let weights: Vec<u64> = (0..30).map(|i| if i % 3 == 0 { 10 } else { 1 }).collect();
        let settings = BalancerSettings {
            hold_secs: 0,
            spacing_secs: 0,
            max_slots_per_hour: 2,
            ..quick()
        };
        let load = weighed(&owners, &weights);
        let mut memory = Hysteresis::default();
        let mut history = History::default();
        let t0 = Instant::now();
        let Decision::Move(moves) = history.decide(&mut memory, &settings, &load, t0) else {
            panic!("no first move");
        };
        let slots: usize = moves.iter().map(|m| m.slots.len()).sum();
        assert_eq!(slots, 2, "capped at the hour's two slots");
        let d = history.decide(&mut memory, &settings, &load, t0 + Duration::from_secs(60));
        assert!(matches!(
            d,
            Decision::Hold(Hold::HourlyCap { moved: 2, cap: 2 })
        ));
        // An hour after the move, the cap has room again.
        let d = history.decide(
            &mut memory,
            &settings,
            &load,
            t0 + Duration::from_secs(3600),
        );
        assert!(matches!(d, Decision::Move(_)), "{d:?}");
    }

    #[test]
    fn a_new_runner_keeps_the_spacing_and_the_cap_the_history_records() {
        // A runner that starts with no memory of its own, after another runner's moves.
        let owners: Vec<ShardId> = (0..30).map(|i| s(i % 3)).collect();
        let weights: Vec<u64> = (0..30).map(|i| if i % 3 == 0 { 10 } else { 1 }).collect();
        let settings = BalancerSettings {
            hold_secs: 0,
            ..quick()
        };
        let load = weighed(&owners, &weights);
        let now = Instant::now();
        let spaced = Recent {
            slots_last_hour: 1,
            since_last_move: Some(Duration::from_secs(59)),
        };
        let d = Hysteresis::default().decide(&settings, &load, spaced, now);
        assert!(
            matches!(
                d,
                Decision::Hold(Hold::Spacing {
                    since_secs: 59,
                    spacing_secs: 60
                })
            ),
            "{d:?}"
        );
        let capped = Recent {
            slots_last_hour: 3,
            since_last_move: Some(Duration::from_secs(600)),
        };
        let d = Hysteresis::default().decide(&settings, &load, capped, now);
        assert!(
            matches!(d, Decision::Hold(Hold::HourlyCap { moved: 3, cap: 3 })),
            "{d:?}"
        );
        // Room for one more slot: one moves.
        let room = Recent {
            slots_last_hour: 2,
            ..capped
        };
        let Decision::Move(moves) = Hysteresis::default().decide(&settings, &load, room, now)
        else {
            panic!("no move with room for one slot");
        };
        assert_eq!(moves.iter().map(|m| m.slots.len()).sum::<usize>(), 1);
    }

    #[test]
    fn the_journal_writes_a_hold_when_its_kind_changes_and_every_move() {
        // A minute of checks as the runner sees them: balanced, a rise held for 60
        // checks, a move, spacing, then balanced again.
        let mut kinds: Vec<&'static str> = vec!["balanced"; 30];
        kinds.extend(std::iter::repeat_n("above the mean", 60));
        kinds.extend(["move", "move", "spacing", "spacing", "spacing"]);
        kinds.extend(std::iter::repeat_n("balanced", 100));
        let mut journal = Journal::default();
        let written: Vec<&str> = kinds.into_iter().filter(|k| journal.records(k)).collect();
        assert_eq!(
            written,
            [
                "balanced",
                "above the mean",
                "move",
                "move",
                "spacing",
                "balanced"
            ]
        );
        // After a move, the hold is written even when it is the kind before it.
        let mut journal = Journal::default();
        assert!(journal.records("spacing"));
        assert!(!journal.records("spacing"));
        assert!(journal.records("move"));
        assert!(journal.records("spacing"));
    }

    #[test]
    fn a_hold_reads_as_its_reason() {
        let rising = Hold::Rising {
            busiest: 3000,
            mean: 1200,
            held_secs: 12,
            hold_secs: 60,
        };
        assert_eq!(rising.kind(), "above the mean");
        assert_eq!(
            rising.to_string(),
            "the busiest shard's 3000 requests a minute are above the mean 1200 for 12s of 60s"
        );
        let capped = Hold::HourlyCap { moved: 64, cap: 64 };
        assert_eq!(
            capped.to_string(),
            "64 slots moved in the last hour, the cap is 64"
        );
    }
}
