//! The repository the tests run against and the `setup.sh` that started its topology:
//! where `config/`, `migrations/` and `.local/` are, the script that stops and starts
//! servers, and the superuser's password it keeps.

use std::path::PathBuf;
use std::process::Command;

/// The repository root: `SHARDGATE_REPO`, else this crate's parent (tests run with
/// their package directory as working directory).
pub fn repo_root() -> PathBuf {
    std::env::var("SHARDGATE_REPO")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."))
}

/// The `setup.sh` that started the topology (`SHARDGATE_SETUP`, else the repo's).
pub fn setup_script() -> PathBuf {
    std::env::var("SHARDGATE_SETUP")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo_root().join("setup.sh"))
}

/// Runs `setup.sh` with arguments (e.g. `["pg", "stop", "shard0-replica0"]`).
pub fn setup_sh(args: &[&str]) {
    let script = setup_script();
    let status = Command::new(&script)
        .args(args)
        .current_dir(repo_root())
        .status()
        .expect("run setup.sh");
    assert!(status.success(), "setup.sh {args:?} failed");
}

/// The PostgreSQL superuser's password from setup.sh's private credentials file
/// (`.local/credentials.env`), when there is one.
pub fn superuser_password() -> Option<String> {
    let file = repo_root().join(".local/credentials.env");
    std::fs::read_to_string(file)
        .ok()?
        .lines()
        .find_map(|line| {
            line.strip_prefix("SHARDGATE_PG_SUPERUSER_PASSWORD=")
                .map(str::to_owned)
        })
}
