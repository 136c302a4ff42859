//! The runner: pgbackrest, as `[backup]` says (program, configuration file, OS user),
//! run as the servers' OS user through `runuser` when we are root. Its failures are
//! told apart by pgBackRest's exit code (its error code), never by message text.

use std::path::{Path, PathBuf};
use std::process::Output;

use shard_manager::config::BackupSettings;
use tokio::process::Command;

use super::error::BackupError;
use super::stanza::Target;

/// pgBackRest's error code for a missing file: for `backup`/`info` of a stanza, its
/// `backup.info`/`archive.info` (the stanza was never created).
const FILE_MISSING: i32 = 55;

/// `pgbackrest backup --type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackupKind {
    /// Every file.
    Full,
    /// What changed since the last full backup.
    Diff,
    /// What changed since the last backup of any kind (the first one is full).
    Incr,
}

impl BackupKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BackupKind::Full => "full",
            BackupKind::Diff => "diff",
            BackupKind::Incr => "incr",
        }
    }
}

/// How to run pgbackrest, resolved and checked once.
#[derive(Debug, Clone)]
pub struct Runner {
    program: PathBuf,
    config: PathBuf,
    /// Some(user) when we are root: run through `runuser -u user --`.
    run_as: Option<String>,
}

impl Runner {
    /// Finds the program and the configuration file (absolute, so the servers' user
    /// reads the same file from `/`).
    pub fn new(settings: &BackupSettings) -> Result<Self, BackupError> {
        let program = find_program(&settings.program).ok_or_else(|| BackupError::NotInstalled {
            program: settings.program.clone(),
        })?;
        let config = std::fs::canonicalize(&settings.pgbackrest_config).map_err(|_| {
            BackupError::NoConfig {
                path: settings.pgbackrest_config.clone(),
            }
        })?;
        let root = std::fs::metadata("/proc/self")
            .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
            .unwrap_or(false);
        let run_as = (root && settings.os_user != "root").then(|| settings.os_user.clone());
        Ok(Runner {
            program,
            config,
            run_as,
        })
    }

    /// `pgbackrest backup --type=KIND` of one server's stanza.
    pub async fn backup(&self, target: &Target, kind: BackupKind) -> Result<(), BackupError> {
        let kind = format!("--type={}", kind.as_str());
        self.run(target, "backup", &[&kind]).await.map(|_| ())
    }

    /// `pgbackrest restore` of one server's stanza from backup `set` into its
    /// `pg1-path` (the server stopped): `--delta` (only the files that differ are
    /// written), to the named point, then promoted.
    pub async fn restore(
        &self,
        target: &Target,
        set: &str,
        point: &str,
    ) -> Result<(), BackupError> {
        let point = format!("--target={point}");
        let set = format!("--set={set}");
        let extra = [
            "--delta",
            set.as_str(),
            "--type=name",
            point.as_str(),
            "--target-action=promote",
        ];
        self.run(target, "restore", &extra).await.map(|_| ())
    }

    /// How far the running backup of `target`'s stanza is, in percent, as
    /// `pgbackrest info` tells it; None before the copy starts or when it cannot say
    /// (pgBackRest 2.45's JSON has no progress; its text has "backup/expire running -
    /// 76.81% complete").
    pub async fn percent_done(&self, target: &Target) -> Option<f64> {
        let stanza = format!("--stanza={}", target.stanza);
        let out = self.command(&[&stanza, "info"]).output().await.ok()?;
        percent_complete(&String::from_utf8_lossy(&out.stdout))
    }

    /// The OS user pgbackrest runs as.
    pub fn os_user(&self) -> String {
        self.run_as
            .clone()
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "this process's user".into())
    }

    /// The configuration file, absolute.
    pub fn config(&self) -> &Path {
        &self.config
    }

    /// Another program (pg_ctl, mkdir) run as the servers' OS user, as pgbackrest is.
    pub fn as_os_user(&self, program: &Path) -> Command {
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(program);
                c
            }
            None => Command::new(program),
        };
        cmd.current_dir("/").kill_on_drop(true);
        cmd
    }

    /// `pgbackrest info --output=json` of every stanza in the configuration.
    pub async fn info(&self) -> Result<serde_json::Value, BackupError> {
        let out = self.command(&["--output=json", "info"]).output().await;
        let out = self.finished("info", None, out)?;
        serde_json::from_slice(&out.stdout).map_err(|e| BackupError::Pgbackrest {
            action: "info".into(),
            stanza: "(all)".into(),
            server: "-".into(),
            code: 0,
            detail: format!("its JSON could not be read: {e}"),
        })
    }

    async fn run(
        &self,
        target: &Target,
        action: &str,
        extra: &[&str],
    ) -> Result<Output, BackupError> {
        let stanza = format!("--stanza={}", target.stanza);
        let mut args = vec![stanza.as_str(), action];
        args.extend_from_slice(extra);
        let out = self.command(&args).output().await;
        self.finished(action, Some(target), out)
    }

    fn command(&self, args: &[&str]) -> Command {
        let config = format!("--config={}", self.config.display());
        let mut cmd = self.as_os_user(&self.program);
        cmd.arg(config)
            .arg("--log-level-console=error")
            .arg("--log-level-stderr=off")
            .args(args);
        cmd
    }

    fn finished(
        &self,
        action: &str,
        target: Option<&Target>,
        out: std::io::Result<Output>,
    ) -> Result<Output, BackupError> {
        let stanza = target.map_or("(all)".to_owned(), |t| t.stanza.clone());
        let server = target.map_or("-".to_owned(), |t| t.address.clone());
        let out = out.map_err(|e| BackupError::Pgbackrest {
            action: action.into(),
            stanza: stanza.clone(),
            server: server.clone(),
            code: -1,
            detail: format!("could not start {}: {e}", self.program.display()),
        })?;
        if out.status.success() {
            return Ok(out);
        }
        let code = out.status.code().unwrap_or(-1);
        if code == FILE_MISSING && target.is_some() {
            return Err(BackupError::StanzaMissing { stanza, server });
        }
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Err(BackupError::Pgbackrest {
            action: action.into(),
            stanza,
            server,
            code,
            detail: text.trim().lines().last().unwrap_or("").to_owned(),
        })
    }
}

/// `name` as a path, or looked up on the PATH.
pub fn find_program(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let p = Path::new(name);
        return p.is_file().then(|| p.to_path_buf());
    }
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .chain(["/usr/bin".into(), "/usr/local/bin".into()])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The "NN.NN% complete" of a running backup in `pgbackrest info`'s text (progress,
/// shown to the user, never a decision).
fn percent_complete(info: &str) -> Option<f64> {
    let at = info.find("% complete")?;
    let digits = info[..at]
        .rsplit(|c: char| !(c.is_ascii_digit() || c == '.'))
        .next()?;
    digits
        .parse::<f64>()
        .ok()
        .filter(|p| (0.0..=100.0).contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_running_backup_tells_how_far_it_is() {
        let info = "stanza: shard1\n    status: error (no valid backups, backup/expire running - 76.81% complete)\n";
        assert_eq!(percent_complete(info), Some(76.81));
        let whole = "    status: ok (backup/expire running - 5% complete)";
        assert_eq!(percent_complete(whole), Some(5.0));
    }

    #[test]
    fn no_percent_before_the_copy_or_when_idle() {
        assert_eq!(
            percent_complete("    status: error (no valid backups, backup/expire running)"),
            None
        );
        assert_eq!(percent_complete("    status: ok"), None);
        assert_eq!(percent_complete("running - 180% complete"), None);
    }

    #[test]
    fn a_missing_program_is_named() {
        let settings = BackupSettings {
            program: "/nonexistent/pgbackrest".into(),
            ..BackupSettings::default()
        };
        let err = Runner::new(&settings).unwrap_err();
        assert!(matches!(err, BackupError::NotInstalled { .. }), "{err}");
        assert!(err.to_string().contains("/nonexistent/pgbackrest"), "{err}");
    }

    #[test]
    fn a_missing_configuration_is_named() {
        let settings = BackupSettings {
            program: "/bin/sh".into(),
            pgbackrest_config: "/nonexistent/pgbackrest.conf".into(),
            ..BackupSettings::default()
        };
        let err = Runner::new(&settings).unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/pgbackrest.conf"),
            "{err}"
        );
    }
}
