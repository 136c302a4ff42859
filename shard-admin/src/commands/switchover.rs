//! `shard-manager switchover --shard N [--to SERVER]`: a shard's primary handed to one
//! of its replicas for maintenance, by the HA manager, after the old primary's writes
//! are drained (see `control_plane::failover::switchover`). Every refusal (no HA
//! manager, an unknown or retired shard, no replica, a server outside the shard, a
//! target down, unhealthy or lagging, a switchover already under way) changes nothing.

use crate::audit::Named;
use control_plane::failover::switchover::{switchover as run, SwitchoverError};
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
    #[arg(long)]
    pub to: Option<String>,
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
}

/// Runs `switchover`, saying each step on stderr; the summary to print.
pub fn switchover(
    settings: &ClusterSettings,
    args: SwitchoverArgs,
) -> Result<String, SwitchoverError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| SwitchoverError::Refused(format!("cannot start a runtime: {e}")))?;
    let shard = ShardId(args.shard);
    let done = rt.block_on(run(
        settings,
        shard,
        args.to.as_deref(),
        &meta::actor(),
        |step| eprintln!("{step}"),
    ))?;
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
            "{} is not back as a standby yet: once it is, run on it `ALTER SYSTEM RESET default_transaction_read_only; SELECT pg_reload_conf();`\n",
            done.from
        ),
    };
    Ok(out)
}
