//! `shard-admin switchover --shard N [--to SERVER]`: a shard's primary handed to one
//! of its replicas for maintenance, by the HA manager, after the old primary's writes
//! are drained (see `control_plane::failover::switchover`). Every refusal (no HA
//! manager, an unknown or retired shard, no replica, a server outside the shard, a
//! target down, unhealthy or lagging, a switchover already under way) changes nothing.
//! Ctrl-C or SIGTERM stops it, the drain undone first; what became of the drain is
//! said either way.
//!
//! `shard-admin switchover --shard N --lift-drain`: lifts a drain a switchover left
//! behind (it was killed outright, or could not reach the old primary to undo it) on
//! every server of the shard, the primary first.

use crate::audit::Named;
use control_plane::failover::switchover::{lift_drain, switchover_until, Lifted, SwitchoverError};
use control_plane::map::meta;
use shard_manager::config::ClusterSettings;
use shard_manager::routing::ShardId;

/// `switchover`: which shard, and to which of its replicas.
#[derive(Debug, clap::Args)]
pub struct SwitchoverArgs {
    /// The shard whose primary steps down.
    #[arg(long)]
    pub shard: u32,
    /// The replica to promote, host:port (default: the one least behind).
    #[arg(long, conflicts_with = "lift_drain")]
    pub to: Option<String>,
    /// Switch nothing over: lift a drain an earlier switchover left (every new
    /// transaction read-only by `default_transaction_read_only`) on the shard's servers.
    #[arg(long)]
    pub lift_drain: bool,
}

impl SwitchoverArgs {
    /// What the audit line names: the shard and the target asked for.
    pub fn named(&self) -> Named {
        Named {
            shard: Some(ShardId(self.shard).to_string()),
            to: self.to.clone(),
            ..Named::default()
        }
    }

    /// The audit line's action.
    pub fn action(&self) -> &'static str {
        match self.lift_drain {
            true => "switchover --lift-drain",
            false => "switchover",
        }
    }
}

/// Runs `switchover` (or `--lift-drain`), saying each step on stderr; the summary to
/// print.
pub fn switchover(
    settings: &ClusterSettings,
    args: SwitchoverArgs,
) -> Result<String, SwitchoverError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| SwitchoverError::Refused(format!("cannot start a runtime: {e}")))?;
    let shard = ShardId(args.shard);
    if args.lift_drain {
        return rt.block_on(lift(settings, shard));
    }
    let done = rt.block_on(async {
        let stop = stop_signal()?;
        switchover_until(
            settings,
            shard,
            args.to.as_deref(),
            &meta::actor(),
            |step| eprintln!("{step}"),
            stop,
        )
        .await
    })?;
    let mut out = format!(
        "{} switched over from {} to {}: term {}, map {}; writes waited {} ms\n",
        done.shard,
        done.from,
        done.to,
        done.term,
        done.version,
        done.paused.as_millis()
    );
    out += &match done.old_is_standby {
        true => format!("{} is a standby again and takes reads\n", done.from),
        false => format!(
            "{} is not back as a standby yet, and still read-only by default: once it is a standby, run `shard-admin switchover --shard {} --lift-drain`\n",
            done.from, shard.0
        ),
    };
    Ok(out)
}

/// Resolves with the name of the first of SIGINT (Ctrl-C) and SIGTERM this process
/// gets from now on: their handlers are installed here, before anything is drained, so
/// neither ends the process before the drain is undone.
fn stop_signal() -> Result<impl std::future::Future<Output = &'static str>, SwitchoverError> {
    use tokio::signal::unix::{signal, SignalKind};
    let cannot = |e: std::io::Error| {
        SwitchoverError::Refused(format!("cannot catch Ctrl-C and SIGTERM: {e}"))
    };
    let mut interrupt = signal(SignalKind::interrupt()).map_err(cannot)?;
    let mut terminate = signal(SignalKind::terminate()).map_err(cannot)?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => "SIGINT",
            _ = terminate.recv() => "SIGTERM",
        }
    })
}

async fn lift(settings: &ClusterSettings, shard: ShardId) -> Result<String, SwitchoverError> {
    let found = lift_drain(settings, shard, &meta::actor()).await?;
    let mut out = String::new();
    for (i, (server, lifted)) in found.iter().enumerate() {
        let role = if i == 0 { "primary" } else { "replica" };
        out += &match lifted {
            Lifted::Was if i == 0 => {
                format!("{shard} {server} ({role}): drain lifted, takes writes again\n")
            }
            Lifted::Was => format!("{shard} {server} ({role}): drain lifted\n"),
            Lifted::Clean => format!("{shard} {server} ({role}): not drained\n"),
            Lifted::Failed(why) => format!(
                "{shard} {server} ({role}): NOT lifted ({why}); once it answers, run this again\n"
            ),
        };
    }
    Ok(out)
}
