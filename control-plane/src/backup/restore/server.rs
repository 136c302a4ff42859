//! A server's life around its restore, driven with `pg_ctl` as the servers' OS user
//! (as `setup.sh` does): stopped (fast) before pgBackRest writes its data directory,
//! started after, and awaited until it has replayed to the point and been promoted.
//! The pg_ctl of the server's own major version is used (`PG_VERSION` in its data
//! directory), else the newest installed one.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use shard_manager::config::ClusterSettings;

use crate::backup::error::BackupError;
use crate::backup::pgbackrest::Runner;
use crate::backup::point::{self, describe};
use crate::backup::stanza::Target;

/// How long `pg_ctl` may take to stop or start a server.
const PG_CTL_WAIT_S: &str = "120";
/// How long a restored server may take to replay to its point and leave recovery.
pub const RECOVERY_WAIT: Duration = Duration::from_secs(300);

/// `pg_ctl` for the data directory `data` (the server's major version's).
pub fn pg_ctl(data: &str) -> PathBuf {
    let version = std::fs::read_to_string(Path::new(data).join("PG_VERSION")).ok();
    let wanted =
        version.map(|v| PathBuf::from(format!("/usr/lib/postgresql/{}/bin/pg_ctl", v.trim())));
    if let Some(p) = wanted.filter(|p| p.is_file()) {
        return p;
    }
    std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse::<u32>().ok()?, e.path())))
        .filter(|(_, p)| p.join("bin/pg_ctl").is_file())
        .max_by_key(|(v, _)| *v)
        .map(|(_, p)| p.join("bin/pg_ctl"))
        .or_else(|| crate::backup::pgbackrest::find_program("pg_ctl"))
        .unwrap_or_else(|| PathBuf::from("pg_ctl"))
}

/// Whether a postmaster runs on `data` (`pg_ctl status`: 0 running, 3 not running,
/// 4 no data directory).
pub async fn running(runner: &Runner, data: &str) -> bool {
    let status = runner
        .as_os_user(&pg_ctl(data))
        .args(["status", "-D", data])
        .output()
        .await;
    status.is_ok_and(|o| o.status.success())
}

/// Stops the server on `data` (fast: sessions ended, a clean shutdown); a no-op when
/// it is not running.
pub async fn stop(runner: &Runner, server: &str, data: &str) -> Result<bool, BackupError> {
    if !running(runner, data).await {
        return Ok(false);
    }
    let out = runner
        .as_os_user(&pg_ctl(data))
        .args([
            "stop",
            "-D",
            data,
            "-m",
            "fast",
            "-w",
            "-t",
            PG_CTL_WAIT_S,
            "-s",
        ])
        .output()
        .await;
    finished(server, "stopping it (pg_ctl stop -m fast)", out)?;
    Ok(true)
}

/// Starts the server on `data` with the postgres `options` (`pg_ctl -o`; none when
/// empty), its log in `data`/log/postgresql.log (setup.sh's place), and waits until it
/// accepts connections.
pub async fn start(
    runner: &Runner,
    server: &str,
    data: &str,
    options: &str,
) -> Result<(), BackupError> {
    let log = Path::new(data).join("log");
    let _ = runner
        .as_os_user(Path::new("mkdir"))
        .arg("-p")
        .arg(&log)
        .output()
        .await;
    let log = log.join("postgresql.log");
    let mut pg_ctl = runner.as_os_user(&pg_ctl(data));
    pg_ctl
        .args(["start", "-D", data, "-w", "-t", PG_CTL_WAIT_S, "-s", "-l"])
        .arg(&log);
    if !options.is_empty() {
        pg_ctl.args(["-o", options]);
    }
    let out = pg_ctl.output().await;
    finished(server, "starting it (pg_ctl start)", out).map_err(|e| match e {
        BackupError::RestoreStep {
            server,
            step,
            reason,
        } => BackupError::RestoreStep {
            server,
            step,
            reason: format!("{reason} (its log: {})", log.display()),
        },
        e => e,
    })?;
    Ok(())
}

/// Makes `data` (mode 700, the OS user's) when a destroyed cluster left none.
pub async fn ensure_dir(runner: &Runner, server: &str, data: &str) -> Result<(), BackupError> {
    if Path::new(data).is_dir() {
        return Ok(());
    }
    let out = runner
        .as_os_user(Path::new("mkdir"))
        .args(["-p", "-m", "700", data])
        .output()
        .await;
    finished(server, "making its data directory", out).map(|_| ())
}

/// Waits until the restored server answers and has left recovery (replayed to the
/// point, promoted); bounded by [`RECOVERY_WAIT`].
pub async fn promoted(
    settings: &ClusterSettings,
    target: &Target,
) -> Result<Duration, BackupError> {
    let started = Instant::now();
    let mut last = String::from("no answer yet");
    while started.elapsed() < RECOVERY_WAIT {
        match point::connect_all(settings, std::slice::from_ref(target)).await {
            Ok(conn) => match conn.0[0]
                .1
                .query_one("SELECT pg_is_in_recovery()", &[])
                .await
            {
                Ok(row) if !row.get::<_, bool>(0) => return Ok(started.elapsed()),
                Ok(_) => last = "still in recovery".into(),
                Err(e) => last = e.to_string(),
            },
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(BackupError::RestoreStep {
        server: describe(target),
        step: "waiting for it to reach the point and leave recovery".into(),
        reason: format!(
            "not done within {} s ({last}); its log says why (a point its WAL never reached stops recovery)",
            RECOVERY_WAIT.as_secs()
        ),
    })
}

fn finished(
    server: &str,
    step: &str,
    out: std::io::Result<std::process::Output>,
) -> Result<std::process::Output, BackupError> {
    let fail = |reason: String| BackupError::RestoreStep {
        server: server.into(),
        step: step.into(),
        reason,
    };
    let out = out.map_err(|e| fail(format!("could not run it: {e}")))?;
    if out.status.success() {
        return Ok(out);
    }
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Err(fail(format!(
        "exit {}: {}",
        out.status.code().unwrap_or(-1),
        text.trim()
    )))
}
