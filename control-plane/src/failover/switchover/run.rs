//! A switchover run from its refusals to its end (steps 1 to 4 of the module doc,
//! [`super`]): [`switchover_until`] races it against the command's stop and undoes the
//! drain on any end but done; [`run`] takes the steps in order.

use std::future::Future;
use std::time::{Duration, Instant};

use super::drain::{self, Drain};
use super::error::SwitchoverError;
use super::monitor::{self, Monitor};
use super::plan::{self, Health};
use super::servers::ServerConn;
use super::wait::{drain_writes, wait_for};
use crate::backup::restore::ha::monitor_address;
use crate::failover::{planned, record};
use crate::map::{change, meta, MapError};
use shard_manager::config::ClusterSettings;
use shard_manager::live_map::promotions::PromotionKind;
use shard_manager::routing::{MapVersion, ShardId};

/// What a switchover did.
#[derive(Debug, Clone)]
pub struct Done {
    pub shard: ShardId,
    pub from: String,
    pub to: String,
    pub term: u64,
    pub version: MapVersion,
    /// From the old primary answering read-only to the new one taking writes: how long
    /// writes waited.
    pub paused: Duration,
    /// Whether the old primary came back as a standby (and its drain was lifted)
    /// within the time allowed.
    pub old_is_standby: bool,
}

/// Runs a switchover of `shard` to `to` (or to its readiest replica), asked by `actor`;
/// `say` hears each step.
pub async fn switchover(
    settings: &ClusterSettings,
    shard: ShardId,
    to: Option<&str>,
    actor: &str,
    say: impl Fn(&str),
) -> Result<Done, SwitchoverError> {
    switchover_until(settings, shard, to, actor, say, std::future::pending()).await
}

/// [`switchover`], until `stop` ends first (the command's Ctrl-C or SIGTERM, naming
/// it): then [`SwitchoverError::Interrupted`], unless the HA manager was already asked
/// to promote (that cannot be undone: the switchover finishes, saying so). Any end but
/// done undoes the drain ([`drain::undo`]); the error then says what became of it.
pub async fn switchover_until(
    settings: &ClusterSettings,
    shard: ShardId,
    to: Option<&str>,
    actor: &str,
    say: impl Fn(&str),
    stop: impl Future<Output = &'static str>,
) -> Result<Done, SwitchoverError> {
    let drain = Drain::default();
    let run = run(settings, shard, to, actor, &say, &drain);
    let (mut run, mut stop) = (std::pin::pin!(run), std::pin::pin!(stop));
    let mut stop_heard = false;
    let outcome = loop {
        tokio::select! {
            done = &mut run => break done,
            signal = &mut stop, if !stop_heard => {
                // Once the HA manager was asked to promote, nothing can be undone: the
                // switchover finishes (the promotion recorded, the old primary's drain
                // lifted once it is a standby).
                if !drain.past_undoing() {
                    break Err(SwitchoverError::Interrupted(signal));
                }
                say(&format!(
                    "{signal}: the HA manager is already promoting, which cannot be undone; the switchover finishes first"
                ));
                stop_heard = true;
            }
        }
    };
    let cause = match outcome {
        Ok(done) => return Ok(done),
        Err(cause) => cause,
    };
    let limit = settings
        .failover
        .switchover_timeout()
        .min(Duration::from_secs(30));
    match drain::undo(settings, shard, &drain, limit, &say).await {
        None => Err(cause),
        Some(undo) => Err(SwitchoverError::Undone {
            cause: Box::new(cause),
            undo,
        }),
    }
}

async fn run(
    settings: &ClusterSettings,
    shard: ShardId,
    to: Option<&str>,
    actor: &str,
    say: &impl Fn(&str),
    drain: &Drain,
) -> Result<Done, SwitchoverError> {
    let f = &settings.failover;
    // The map's refusals first (the shard, its follow mode, its servers): a shard behind
    // an address is refused for that, whatever the settings say of a monitor.
    let map = change::current(settings).await?;
    let (from, candidates) = plan::candidates(&map, shard, to)?;
    // The administrator's monitor must be the one the settings name for reading: a
    // promotion asked of another HA manager would be another cluster's.
    if let (Some(admin), Some(reader)) = (f.promoting_monitor(), f.ha_monitor.as_deref()) {
        let (a, r) = (monitor_address(admin), monitor_address(reader));
        if a != r {
            return Err(SwitchoverError::Refused(format!(
                "failover.ha_monitor_admin ({}) and failover.ha_monitor ({}) name different monitors",
                a.unwrap_or_else(|| "no TCP address".into()),
                r.unwrap_or_else(|| "no TCP address".into())
            )));
        }
    }
    let Some(monitor_url) = f.promoting_monitor() else {
        return Err(SwitchoverError::Refused(
            "no HA manager runs the shards (`failover.ha_monitor` is not set; `./setup.sh up` runs one unless HA=0)".into(),
        ));
    };
    let meta = meta::connect(settings).await?;
    if !planned::hold(&meta.client, shard, actor).await? {
        return Err(SwitchoverError::Refused(format!(
            "a switchover of {shard} is already under way"
        )));
    }
    let monitor = Monitor::connect(monitor_url).await?;
    // Under the lock no other switchover runs: a drain found now is one a killed
    // command left (the target's too: promoted, it would stay read-only).
    let mut servers = vec![from.clone()];
    servers.extend(candidates.iter().cloned());
    drain::lift_leftover(settings, shard, &servers, say).await;
    let primary = ServerConn::open(settings, shard, &from).await?;
    let (may_drain, role) = primary.may_drain().await?;
    if !may_drain {
        return Err(SwitchoverError::Refused(format!(
            "the switchover's role {role} may not drain {from} (ALTER SYSTEM of default_transaction_read_only, pg_reload_conf()): it signs in as failover.admin_user (`./setup.sh env admin` gives the administrator's settings)"
        )));
    }
    if primary.in_recovery().await? {
        return Err(SwitchoverError::Refused(format!(
            "{shard}'s primary {from} is in recovery: a failover is under way"
        )));
    }
    let lsn = primary.current_lsn().await?;
    let mut found = Vec::new();
    for addr in &candidates {
        found.push((
            addr.clone(),
            health(settings, &monitor, shard, addr, &lsn).await?,
        ));
    }
    let target = plan::choose(shard, &found, f.switchover_max_lag_bytes)?;
    let node = monitor
        .node(shard, &target)
        .await?
        .map(|n| n.name)
        .ok_or_else(|| SwitchoverError::Refused(format!("{target} left the formation")))?;
    let target_conn = ServerConn::open(settings, shard, &target).await?;

    say(&format!(
        "draining {from}: new writes wait, writes in flight finish"
    ));
    drain.begin(&from);
    if let Err(e) = primary.set_read_only(true).await {
        // Refused by the server: nothing was written.
        drain.lifted();
        return Err(e);
    }
    primary.reload().await?;
    let paused = Instant::now();
    // Test-only (feature `faults`): the old primary read-only, its writes waiting.
    shard_manager::fault::pause_switchover("drained").await;
    if !drain_writes(&primary, &target_conn, f.drain()).await? {
        return Err(SwitchoverError::TimedOut(format!(
            "writes in flight on {from} did not finish, or {target} did not replay them, within {} ms; nothing else changed",
            f.drain().as_millis()
        )));
    }
    say(&format!(
        "asking the HA manager to promote {target} ({node})"
    ));
    drain.promoting();
    if let Err(e) = monitor.promote(shard, &node).await {
        // Refused: nothing is being promoted, the drain is lifted at once.
        drain.begin(&from);
        return Err(e);
    }
    drain.promotion_taken();
    // Test-only (feature `faults`): the promotion asked, not yet done.
    shard_manager::fault::pause_switchover("promoting").await;
    drop((primary, target_conn));
    let until = Instant::now() + f.switchover_timeout();
    let writable = |addr: &str| {
        let addr = addr.to_owned();
        async move {
            let conn = ServerConn::open(settings, shard, &addr).await?;
            conn.takes_writes().await
        }
    };
    wait_for(until, || writable(&target)).await.map_err(|_| {
        SwitchoverError::TimedOut(format!(
            "the HA manager did not promote {target} within {} ms",
            f.switchover_timeout().as_millis()
        ))
    })?;
    let paused = paused.elapsed();
    say(&format!(
        "{target} takes writes ({} ms after the drain began)",
        paused.as_millis()
    ));
    // A gateway's watcher may record it first (then the map no longer names `from`, or
    // moved on while we read it): the map as it is then.
    let took = paused.as_millis() as u64;
    let map = match record::store(
        settings,
        PromotionKind::Switchover,
        shard,
        &from,
        &target,
        took,
    )
    .await
    {
        Ok(Some(map)) => map,
        Ok(None) | Err(MapError::Changed { .. }) => change::current(settings).await?,
        Err(e) => return Err(e.into()),
    };
    let entry = &map.shards[shard.index()];
    if entry.primary != target {
        return Err(SwitchoverError::TimedOut(format!(
            "{target} was promoted but the map names {} as {shard}'s primary",
            entry.primary
        )));
    }
    say(&format!("waiting for {from} to come back as a standby"));
    let old_is_standby = wait_for(until, || async {
        let Ok(old) = ServerConn::open(settings, shard, &from).await else {
            return Ok(false);
        };
        if !old.in_recovery().await? {
            return Ok(false);
        }
        old.read_only(false).await?;
        drain.lifted();
        // The formation settled: the old primary a `secondary`, the new one `primary`
        // (until then it is `wait_primary`: replication asynchronous), so a next
        // switchover may hand the shard back.
        let is = |node: Option<monitor::Node>, state: &str| node.is_none_or(|n| n.state == state);
        Ok(is(monitor.node(shard, &from).await?, "secondary")
            && is(monitor.node(shard, &target).await?, "primary"))
    })
    .await
    .is_ok();
    drop(meta);
    Ok(Done {
        shard,
        from,
        to: target,
        term: entry.term,
        version: map.version,
        paused,
        old_is_standby,
    })
}

/// A candidate's fitness: the HA manager's view first (a healthy `secondary`), then
/// its own: in recovery, and how far behind the primary's `lsn`.
async fn health(
    settings: &ClusterSettings,
    monitor: &Monitor,
    shard: ShardId,
    addr: &str,
    lsn: &str,
) -> Result<Health, SwitchoverError> {
    let Some(node) = monitor.node(shard, addr).await? else {
        return Ok(Health::Unfit(format!(
            "is not a node of the HA manager's formation {}",
            monitor::formation(shard)
        )));
    };
    if node.state != "secondary" || !node.healthy {
        return Ok(Health::Unfit(format!(
            "is {} to the HA manager{}",
            node.state,
            if node.healthy {
                ""
            } else {
                " and fails its health check"
            }
        )));
    }
    let conn = match ServerConn::open(settings, shard, addr).await {
        Ok(c) => c,
        Err(e) => return Ok(Health::Unfit(format!("is down ({e})"))),
    };
    Ok(match conn.behind(lsn).await? {
        Some(lag_bytes) => Health::Ready { lag_bytes },
        None => Health::Unfit("is not in recovery: it takes writes".into()),
    })
}
