//! A typo in the configuration is refused, naming it: an unknown key in a `--config` file
//! and an unknown `SHARDGATE__` variable fail `shard-admin check` (the chart's check of
//! its rendered configuration relies on it), while the files the project ships pass and
//! variables that are not configuration (`SHARDGATE_REPO`) are left alone.

mod common;

use common::{cli_with, text};

/// A file in the temporary directory, removed when dropped.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new(name: &str, body: &str) -> Self {
        let path = std::env::temp_dir().join(format!("sg-strict-{}-{name}", std::process::id()));
        std::fs::write(&path, body).expect("write the file");
        Self(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("a UTF-8 path")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn an_unknown_key_in_a_file_is_refused_naming_it() {
    let file = Scratch::new("typo.toml", "[database]\npool_max_siz = 5\n");
    let out = cli_with(&["check", "--config", file.path()], &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    assert_eq!(
        stderr.trim(),
        format!(
            "error: loading configuration: unknown configuration key `database.pool_max_siz` \
             in {} (did you mean `database.pool_max_size`?)",
            file.path()
        )
    );
    assert!(text(&out.stdout).is_empty(), "{}", text(&out.stdout));
}

#[test]
fn an_unknown_variable_is_refused_naming_it_and_its_key() {
    let out = cli_with(&["check"], &[("SHARDGATE__DATABASE__POOL_MAX_SIZ", "5")]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    assert_eq!(
        stderr.trim(),
        "error: loading configuration: environment variable SHARDGATE__DATABASE__POOL_MAX_SIZ \
         sets `database.pool_max_siz`, which is no configuration key a variable can set \
         (did you mean `database.pool_max_size`, SHARDGATE__DATABASE__POOL_MAX_SIZE?)"
    );
}

#[test]
fn the_shipped_files_and_other_variables_pass() {
    let repo = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let mut files = vec![
        format!("{repo}/config/default.toml"),
        format!("{repo}/docker/shardgate.toml"),
    ];
    // The topology file `./setup.sh up` writes for a non-default topology, when there is one.
    let local = format!("{repo}/.local/shardgate.toml");
    if std::path::Path::new(&local).exists() {
        files.push(local);
    }
    for file in &files {
        let out = cli_with(
            &["check", "--config", file],
            &[("SHARDGATE_REPO", repo), ("SHARDGATE_SOMETHING_ELSE", "1")],
        );
        assert_eq!(out.status.code(), Some(0), "{file}: {}", text(&out.stderr));
        assert!(
            text(&out.stdout).starts_with("shard-0: primary "),
            "{file}: {}",
            text(&out.stdout)
        );
    }
}
