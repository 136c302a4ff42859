//! The drain's undo. The drain (`ALTER SYSTEM SET default_transaction_read_only = on`
//! and a reload) outlives the command that set it, restarts included, and every write to
//! the shard answers 503 while it stays. So:
//!
//! - whatever ends a switchover (done, refused, failed, a bound passed, or the command
//!   told to stop by Ctrl-C or SIGTERM), [`undo`] lifts the drain it set, and an undo
//!   that fails is said so, naming the server and what lifts it;
//! - a drain left behind by a command that could not undo it (killed outright, a crash,
//!   the server unreachable then) is lifted by [`lift_drain`]:
//!   `shard-admin switchover --shard N --lift-drain`, and by the next switchover of
//!   the shard before it drains anything ([`lift_leftover`]).
//!
//! Lifting is `ALTER SYSTEM RESET` and a reload, then a new session's word that new
//! transactions are no longer read-only by default.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::servers::ServerConn;
use super::SwitchoverError;
use crate::failover::planned;
use crate::map::{change, meta};
use shard_manager::config::ClusterSettings;
use shard_manager::routing::ShardId;

/// How far a switchover got with its drain: what an early end must undo.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
enum Stage {
    /// Nothing drained.
    #[default]
    Clear,
    /// `from` told (or being told) to answer read-only; no promotion asked.
    Draining { from: String },
    /// The HA manager asked (or being asked) to promote: `from` must stay read-only
    /// until it is a standby, or writes could land on a primary being demoted.
    Promoting { from: String },
}

/// The drain of one switchover, shared between the switchover and its undo (which
/// runs after the switchover's future ended or was dropped).
#[derive(Debug, Default)]
pub struct Drain {
    stage: Mutex<Stage>,
    /// The HA manager was asked to promote: from then on nothing can be undone.
    asked: AtomicBool,
}

impl Drain {
    /// Before the drain is set on `from` (so that a stop while it is being set undoes it).
    pub fn begin(&self, from: &str) {
        self.set(Stage::Draining {
            from: from.to_owned(),
        });
    }

    /// Before the HA manager is asked to promote.
    pub fn promoting(&self) {
        let mut stage = self.lock();
        if let Stage::Draining { from } = &*stage {
            *stage = Stage::Promoting { from: from.clone() };
        }
    }

    /// Once the HA manager has taken the promotion (no longer undoable).
    pub fn promotion_taken(&self) {
        self.asked.store(true, Ordering::SeqCst);
    }

    /// Whether the HA manager has taken the promotion: the switchover must finish.
    pub fn past_undoing(&self) -> bool {
        self.asked.load(Ordering::SeqCst)
    }

    /// Once the drain is lifted.
    pub fn lifted(&self) {
        self.set(Stage::Clear);
    }

    fn set(&self, stage: Stage) {
        *self.lock() = stage;
    }

    fn stage(&self) -> Stage {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Stage> {
        self.stage.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What became of a drain when its switchover ended early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Undo {
    /// The drain is lifted: `server` takes writes again.
    Lifted { server: String },
    /// The drain could not be lifted: `server` answers every write read-only until
    /// the command named lifts it.
    Failed {
        shard: ShardId,
        server: String,
        reason: String,
    },
}

impl fmt::Display for Undo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Lifted { server } => write!(f, "the drain on {server} was lifted"),
            Self::Failed {
                shard,
                server,
                reason,
            } => write!(
                f,
                "the drain on {server} could NOT be lifted ({reason}): {server} answers every write read-only until `{}` lifts it",
                lift_command(*shard)
            ),
        }
    }
}

/// The one command that lifts a drain left on `shard`.
pub fn lift_command(shard: ShardId) -> String {
    format!("shard-admin switchover --shard {} --lift-drain", shard.0)
}

/// Undoes what `drain` says was done, once its switchover ended without finishing;
/// None when nothing was drained. A drain before the promotion was asked is lifted at
/// once; after it, once the old primary is a standby (within `limit`).
pub async fn undo(
    settings: &ClusterSettings,
    shard: ShardId,
    drain: &Drain,
    limit: Duration,
    say: &impl Fn(&str),
) -> Option<Undo> {
    let (from, promoting) = match drain.stage() {
        Stage::Clear => return None,
        Stage::Draining { from } => (from, false),
        Stage::Promoting { from } => (from, true),
    };
    let failed = |reason: String| Undo::Failed {
        shard,
        server: from.clone(),
        reason,
    };
    if promoting {
        say(&format!(
            "the HA manager was asked to promote: waiting up to {} ms for {from} to be a standby before lifting its drain",
            limit.as_millis()
        ));
        let until = Instant::now() + limit;
        loop {
            if let Ok(conn) = ServerConn::open(settings, shard, &from).await {
                if conn.in_recovery().await.unwrap_or(false) {
                    break;
                }
            }
            if Instant::now() >= until {
                return Some(failed(format!(
                    "the HA manager was asked to promote a replica, and {from} was not a standby within {} ms; lifting it before would let writes land on a primary being demoted",
                    limit.as_millis()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Some(match lift(settings, shard, &from).await {
        Ok(_) => {
            drain.lifted();
            Undo::Lifted { server: from }
        }
        Err(e) => failed(e.to_string()),
    })
}

/// Lifts the drain on `server` (`ALTER SYSTEM RESET` and a reload, whatever it shows:
/// a drain set but not yet reloaded shows nothing), then waits until a new session is
/// no longer read-only by default. Returns whether it was.
pub async fn lift(
    settings: &ClusterSettings,
    shard: ShardId,
    server: &str,
) -> Result<bool, SwitchoverError> {
    let conn = ServerConn::open(settings, shard, server).await?;
    let was = conn.drained().await?;
    conn.read_only(false).await?;
    drop(conn);
    // The reload reaches the postmaster, then the sessions it starts, a moment later.
    let until = Instant::now() + Duration::from_secs(2);
    loop {
        let conn = ServerConn::open(settings, shard, server).await?;
        if !conn.drained().await? {
            return Ok(was);
        }
        if Instant::now() >= until {
            return Err(SwitchoverError::Server {
                shard,
                server: server.to_owned(),
                doing: "is still read-only by default after ALTER SYSTEM RESET and a reload",
                reason: "default_transaction_read_only is set outside postgresql.auto.conf (by the HA manager during a failover, or in postgresql.conf)".into(),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What lifting found on one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lifted {
    /// It was read-only by default; it no longer is.
    Was,
    /// It was not drained (reset all the same).
    Clean,
    /// It could not be lifted, or not reached: why.
    Failed(String),
}

/// Lifts a drain left on any of `servers` of `shard` (the caller holds the shard's
/// switchover lock, so no drain is a running switchover's), saying each one lifted.
pub async fn lift_leftover(
    settings: &ClusterSettings,
    shard: ShardId,
    servers: &[String],
    say: &impl Fn(&str),
) -> Vec<(String, Lifted)> {
    let mut found = Vec::with_capacity(servers.len());
    for server in servers {
        let lifted = match lift(settings, shard, server).await {
            Ok(true) => {
                say(&format!(
                    "{server} was read-only by default (a drain an earlier switchover left): lifted"
                ));
                Lifted::Was
            }
            Ok(false) => Lifted::Clean,
            Err(e) => Lifted::Failed(e.to_string()),
        };
        found.push((server.clone(), lifted));
    }
    found
}

/// `shard-admin switchover --shard N --lift-drain`: lifts a drain left on every
/// server of `shard` the map names (its primary first), asked by `actor`. Refused,
/// nothing changed, for a shard not in the map, or while a switchover of the shard runs
/// (its drain is its own to lift). Fails when the primary's drain could not be lifted;
/// a replica not reached is only named.
pub async fn lift_drain(
    settings: &ClusterSettings,
    shard: ShardId,
    actor: &str,
) -> Result<Vec<(String, Lifted)>, SwitchoverError> {
    let map = change::current(settings).await?;
    let Some(entry) = map.shards.get(shard.index()) else {
        let ids: Vec<String> = map.shards.iter().map(|s| s.id.to_string()).collect();
        return Err(SwitchoverError::Refused(format!(
            "{shard} is not in the map (its shards: {})",
            ids.join(", ")
        )));
    };
    let meta = meta::connect(settings).await?;
    if !planned::hold(&meta.client, shard, actor).await? {
        let by = planned::asked_by(&meta.client, shard).await?;
        return Err(SwitchoverError::Refused(format!(
            "a switchover of {shard} is under way{}: it lifts its own drain",
            by.map(|b| format!(" (asked by {b})")).unwrap_or_default()
        )));
    }
    let servers: Vec<String> = std::iter::once(entry.primary.clone())
        .chain(entry.replicas.iter().cloned())
        .collect();
    let found = lift_leftover(settings, shard, &servers, &|_| {}).await;
    drop(meta);
    if let Some((server, Lifted::Failed(reason))) = found.first() {
        return Err(SwitchoverError::Server {
            shard,
            server: server.clone(),
            doing: "(the primary) could not have its drain lifted",
            reason: format!(
                "{reason}; once it answers, run `{}` again, or on it: ALTER SYSTEM RESET default_transaction_read_only; SELECT pg_reload_conf();",
                lift_command(shard)
            ),
        });
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_promotion_is_only_marked_after_a_drain_and_a_lift_clears_it() {
        let drain = Drain::default();
        drain.promoting();
        assert_eq!(
            drain.stage(),
            Stage::Clear,
            "nothing drained, nothing promoted"
        );
        drain.begin("a:1");
        drain.promoting();
        assert_eq!(drain.stage(), Stage::Promoting { from: "a:1".into() });
        drain.lifted();
        assert_eq!(drain.stage(), Stage::Clear);
    }

    #[test]
    fn a_failed_undo_names_the_server_and_the_command_never_lifted() {
        let failed = Undo::Failed {
            shard: ShardId(1),
            server: "127.0.0.1:25433".into(),
            reason: "did not answer".into(),
        }
        .to_string();
        assert!(!failed.contains("was lifted"), "{failed}");
        assert!(
            failed.contains("127.0.0.1:25433")
                && failed.contains("shard-admin switchover --shard 1 --lift-drain"),
            "{failed}"
        );
        let lifted = Undo::Lifted {
            server: "127.0.0.1:25433".into(),
        };
        assert_eq!(
            lifted.to_string(),
            "the drain on 127.0.0.1:25433 was lifted"
        );
    }
}
