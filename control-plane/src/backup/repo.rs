//! pgBackRest's repository, checked before it is used: its path (`repo1-path` in the
//! configuration's `[global]` section), that it exists (every command), that the
//! servers' OS user may write it (a backup), and, when a backup failed, whether its
//! filesystem is full (its free space, from `statvfs`, never from pgBackRest's message
//! text).

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::error::BackupError;
use super::pgbackrest::Runner;

/// pgBackRest's repository path when the configuration names none.
pub const DEFAULT_PATH: &str = "/var/lib/pgbackrest";

/// Below this much free space a failed backup is put down to a full repository (a
/// failed write leaves at most pgBackRest's buffer free).
const FULL_BELOW_BYTES: u64 = 16 << 20;

/// `repo1-path` of the configuration's `[global]` section (or `[global:backup]`), or
/// pgBackRest's default. Pure: tested beside it.
pub fn path_in(config: &str) -> String {
    let mut global = false;
    let mut found = None;
    for line in config.lines().map(str::trim) {
        if line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.trim();
            global = name == "global" || name == "global:backup";
            continue;
        }
        match line.split_once('=') {
            Some((key, value)) if global && key.trim() == "repo1-path" => {
                found = Some(value.trim().to_owned())
            }
            _ => {}
        }
    }
    found.unwrap_or_else(|| DEFAULT_PATH.to_owned())
}

/// The repository of `runner`'s configuration, checked: it exists as a directory, and
/// (`write`) the servers' OS user may write it. Its path.
pub async fn usable(runner: &Runner, write: bool) -> Result<PathBuf, BackupError> {
    let text = std::fs::read_to_string(runner.config()).map_err(|_| BackupError::NoConfig {
        path: runner.config().display().to_string(),
    })?;
    let path = PathBuf::from(path_in(&text));
    if !path.is_dir() {
        return Err(BackupError::RepoMissing {
            path: path.display().to_string(),
            config: runner.config().display().to_string(),
        });
    }
    if write {
        let ok = runner
            .as_os_user(Path::new("test"))
            .arg("-w")
            .arg(&path)
            .status()
            .await
            .is_ok_and(|s| s.success());
        if !ok {
            return Err(BackupError::RepoNotWritable {
                path: path.display().to_string(),
                user: runner.os_user(),
            });
        }
    }
    Ok(path)
}

/// A failed backup's error, told as a full repository when its filesystem has (almost)
/// no space left; otherwise unchanged.
pub fn explain_failure(path: &Path, err: BackupError) -> BackupError {
    if !matches!(err, BackupError::Pgbackrest { .. }) {
        return err;
    }
    match space(path) {
        Some((free, size)) if is_full(free, size) => BackupError::RepoFull {
            path: path.display().to_string(),
            free,
            size,
            failed: err.to_string(),
        },
        _ => err,
    }
}

/// Whether `free` of `size` bytes is a full filesystem for a backup.
pub fn is_full(free: u64, size: u64) -> bool {
    free < FULL_BELOW_BYTES || free.saturating_mul(100) < size
}

/// (free to an unprivileged user, total) bytes of the filesystem holding `path`.
pub fn space(path: &Path) -> Option<(u64, u64)> {
    let c = CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is a NUL-terminated path and `st` a buffer of the struct statvfs fills.
    let rc = unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: statvfs returned 0: it filled `st`.
    let st = unsafe { st.assume_init() };
    // 64-bit Linux: every field is a u64 already.
    let unit: u64 = st.f_frsize;
    let (free, blocks): (u64, u64) = (st.f_bavail, st.f_blocks);
    Some((free.saturating_mul(unit), blocks.saturating_mul(unit)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repository_is_global_repo1_path_or_the_default() {
        let text = "[global]\nrepo1-path = /r/one \nlock-path=/l\n[shard0]\nrepo1-path=/not/this\n";
        assert_eq!(path_in(text), "/r/one");
        assert_eq!(path_in("[global:backup]\nrepo1-path=/r/b\n"), "/r/b");
        assert_eq!(
            path_in("# repo1-path=/x\n[meta]\npg1-port=1\n"),
            DEFAULT_PATH
        );
        assert_eq!(path_in(""), DEFAULT_PATH);
    }

    #[test]
    fn full_is_under_16_mib_or_1_percent_free() {
        assert!(is_full(0, 4 << 20));
        assert!(is_full(1 << 20, 1 << 40));
        assert!(is_full(5 << 30, 1 << 40), "0.5% of 1 TiB");
        assert!(!is_full(20 << 30, 1 << 40));
        assert!(!is_full(64 << 20, 1 << 30));
    }

    #[test]
    fn only_a_pgbackrest_failure_on_a_full_filesystem_is_told_as_full() {
        let failed = || BackupError::Pgbackrest {
            action: "backup".into(),
            stanza: "shard0".into(),
            server: "127.0.0.1:1".into(),
            code: 64,
            detail: "unable to write".into(),
        };
        let unknown = explain_failure(Path::new("/nonexistent/sg-repo"), failed());
        assert!(
            matches!(unknown, BackupError::Pgbackrest { code: 64, .. }),
            "{unknown}"
        );
        let other = explain_failure(Path::new("/"), BackupError::Refused("busy".into()));
        assert!(matches!(other, BackupError::Refused(_)), "{other}");
    }

    #[test]
    fn space_is_read_from_the_filesystem() {
        let (free, size) = space(Path::new("/")).expect("statvfs of /");
        assert!(size > 0 && free <= size, "{free} of {size}");
        assert_eq!(space(Path::new("/nonexistent/sg-repo")), None);
    }
}
