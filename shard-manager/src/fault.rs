//! Test-only kill points (cargo feature `faults`; a release build has none): the
//! failure tests kill a process with SIGKILL at a chosen step, to prove what a crash
//! there leaves behind. Each process kind reads its own variable, set to `step` (or
//! `step:n`, the n-th time the step is reached). The gateway can also pause at a step
//! ([`pause`]), so that a test kills a server at that moment.

use std::sync::atomic::AtomicU32;

/// A named set of kill points, armed by one environment variable.
pub struct KillPoints {
    var: &'static str,
    seen: AtomicU32,
}

/// The mover's steps (`moves`): `SHARDGATE_FAULT_KILL_MOVER`.
pub static MOVER: KillPoints = KillPoints::new("SHARDGATE_FAULT_KILL_MOVER");
/// The importer's steps (`import`): `SHARDGATE_FAULT_KILL_IMPORTER`.
pub static IMPORTER: KillPoints = KillPoints::new("SHARDGATE_FAULT_KILL_IMPORTER");
/// The gateway's request path (`cluster`): `SHARDGATE_FAULT_KILL_GATEWAY`, e.g.
/// `after-commit`: a write committed, its answer not yet sent.
pub static GATEWAY: KillPoints = KillPoints::new("SHARDGATE_FAULT_KILL_GATEWAY");
/// `shard-admin backup`'s steps (`control_plane::backup::take`):
/// `SHARDGATE_FAULT_KILL_BACKUP`, e.g. `before-record`: the point named on every server
/// and its WAL archived, not yet recorded.
pub static BACKUP: KillPoints = KillPoints::new("SHARDGATE_FAULT_KILL_BACKUP");

impl KillPoints {
    pub const fn new(var: &'static str) -> Self {
        Self {
            var,
            seen: AtomicU32::new(0),
        }
    }

    /// Whether the variable names `step` (a test wants to die there). Always false
    /// without the `faults` feature.
    pub fn armed(&self, step: &str) -> bool {
        #[cfg(feature = "faults")]
        {
            std::env::var(self.var).is_ok_and(|wanted| wanted.split(':').next() == Some(step))
        }
        #[cfg(not(feature = "faults"))]
        {
            let _ = step;
            false
        }
    }

    /// Kills this process (-9) when the variable names `step` and this is its n-th
    /// time; otherwise nothing. Without the `faults` feature, always nothing.
    pub fn reach(&self, step: &str) {
        #[cfg(feature = "faults")]
        {
            use std::sync::atomic::Ordering;
            let Ok(wanted) = std::env::var(self.var) else {
                return;
            };
            let (name, nth) = match wanted.split_once(':') {
                Some((name, n)) => (name.to_owned(), n.parse().unwrap_or(1)),
                None => (wanted.clone(), 1),
            };
            if name == step && self.seen.fetch_add(1, Ordering::SeqCst) + 1 == nth {
                eprintln!(
                    "fault point {step} ({}): killing this process (-9)",
                    self.var
                );
                let _ = std::process::Command::new("kill")
                    .args(["-9", &std::process::id().to_string()])
                    .status();
                std::process::abort();
            }
        }
        #[cfg(not(feature = "faults"))]
        let _ = (step, self.var, &self.seen);
    }
}

/// Waits at `step` when `SHARDGATE_FAULT_PAUSE_GATEWAY` is `step:ms` (every request
/// that reaches it waits `ms` milliseconds there); otherwise, and always without the
/// `faults` feature, returns at once.
pub async fn pause(step: &str) {
    pause_on("SHARDGATE_FAULT_PAUSE_GATEWAY", step).await
}

/// Waits at `step` of `shard-admin switchover` when `SHARDGATE_FAULT_PAUSE_SWITCHOVER`
/// is `step:ms` (e.g. `drained:20000`: the old primary read-only, its writes waiting),
/// so that a test signals or kills the command there; otherwise, and always without
/// the `faults` feature, returns at once.
pub async fn pause_switchover(step: &str) {
    pause_on("SHARDGATE_FAULT_PAUSE_SWITCHOVER", step).await
}

async fn pause_on(var: &str, step: &str) {
    #[cfg(feature = "faults")]
    {
        let Ok(wanted) = std::env::var(var) else {
            return;
        };
        let Some((name, ms)) = wanted.split_once(':') else {
            return;
        };
        if name == step {
            let ms: u64 = ms.parse().unwrap_or(0);
            eprintln!("fault point {step}: pausing {ms} ms");
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        }
    }
    #[cfg(not(feature = "faults"))]
    let _ = (var, step);
}
