//! Strict configuration: every key a file or a `SHARDGATE__` variable sets must be one
//! that a binary reads, so a typo (`pool_max_siz`) is refused naming it instead of
//! silently leaving the default in force.
//!
//! The keys are the gateway's whole tree (its own sections and the cluster's), listed in
//! `known_keys.txt`: generated from the settings structs by the configuration reference
//! test (`api-router/tests/config_reference.rs`), which fails when the list and the code
//! differ. The admin CLI reads a part of that tree but accepts all of it, so one file
//! serves both (the chart checks the gateway's file with `shard-admin check`).

use std::ffi::OsString;
use std::path::Path;

use config::{Source, Value, ValueKind};

use super::ConfigError;

/// Every key, one a line, as `section.key`; a list of tables is written `section[]`
/// (`shards[].primary`). Lines starting with `#` are comments.
pub const KNOWN_KEYS: &str = include_str!("known_keys.txt");

/// The environment variables read as configuration start with this (any case).
const ENV_PREFIX: &str = "shardgate__";

/// The known keys, without the comments.
pub fn known_keys() -> impl Iterator<Item = &'static str> {
    KNOWN_KEYS
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// Refuses a TOML file that sets a key no binary reads, naming every such key, the
/// file, and the nearest known key.
pub fn check_file(path: &Path) -> Result<(), ConfigError> {
    let table = config::File::from(path).required(true).collect()?;
    let mut unknown = Vec::new();
    walk_table("", &table, &mut unknown);
    refuse(unknown.into_iter().map(|key| {
        let hint = hint(&key);
        format!(
            "unknown configuration key `{key}` in {}{hint}",
            path.display()
        )
    }))
}

/// Refuses a `SHARDGATE__...` variable that names no key (single-underscore names such
/// as `SHARDGATE_REPO` are not configuration), naming the variable, its key, and the
/// nearest known key with its variable.
pub fn check_env(vars: impl IntoIterator<Item = (OsString, OsString)>) -> Result<(), ConfigError> {
    let mut refused: Vec<String> = vars
        .into_iter()
        .filter_map(|(name, _)| {
            let name = name.to_string_lossy().into_owned();
            let key = env_key(&name)?;
            (!known_keys().any(|k| k == key)).then(|| {
                let hint = nearest(&key)
                    .filter(|k| !k.contains("[]"))
                    .map(|k| {
                        format!(
                            " (did you mean `{k}`, {}?)",
                            format_args!("SHARDGATE__{}", k.replace('.', "__").to_uppercase())
                        )
                    })
                    .unwrap_or_default();
                format!(
                    "environment variable {name} sets `{key}`, which is no configuration key \
                     a variable can set{hint}"
                )
            })
        })
        .collect();
    refused.sort();
    refuse(refused.into_iter())
}

/// The key a configuration variable sets (`SHARDGATE__DATABASE__POOL_MAX_SIZE`:
/// `database.pool_max_size`); `None` for any other variable.
fn env_key(name: &str) -> Option<String> {
    let lower = name.to_lowercase();
    let rest = lower.strip_prefix(ENV_PREFIX)?;
    Some(rest.replace("__", "."))
}

/// Every key under `prefix` in `table` that no binary reads (a table counts when no
/// known key lies under it, so an empty misspelt section is found too).
fn walk_table(prefix: &str, table: &config::Map<String, Value>, unknown: &mut Vec<String>) {
    let mut names: Vec<&String> = table.keys().collect();
    names.sort();
    for name in names {
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        match &table[name].kind {
            ValueKind::Table(inner) if is_section(&path) => walk_table(&path, inner, unknown),
            ValueKind::Array(items)
                if items.iter().any(|v| matches!(v.kind, ValueKind::Table(_))) =>
            {
                let path = format!("{path}[]");
                if !is_section(&path) {
                    unknown.push(path);
                    continue;
                }
                let mut each = Vec::new();
                for item in items {
                    if let ValueKind::Table(inner) = &item.kind {
                        walk_table(&path, inner, &mut each);
                    }
                }
                each.sort();
                each.dedup();
                unknown.extend(each);
            }
            _ if known_keys().any(|k| k == path) => {}
            _ => unknown.push(path),
        }
    }
}

/// Whether some known key lies under `path`.
fn is_section(path: &str) -> bool {
    known_keys().any(|k| {
        k.strip_prefix(path)
            .is_some_and(|rest| rest.starts_with('.'))
    })
}

/// ` (did you mean `KEY`?)` for the nearest known key, or nothing when none is near.
fn hint(key: &str) -> String {
    nearest(key)
        .map(|k| format!(" (did you mean `{k}`?)"))
        .unwrap_or_default()
}

/// The known key nearest `key`, when a few edits away (a typo, not another key).
fn nearest(key: &str) -> Option<&'static str> {
    known_keys()
        .map(|k| (edits(k, key), k))
        .filter(|(d, _)| *d <= 3)
        .min()
        .map(|(_, k)| k)
}

/// Levenshtein distance, by characters.
fn edits(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

fn refuse(lines: impl Iterator<Item = String>) -> Result<(), ConfigError> {
    let lines: Vec<String> = lines.collect();
    if lines.is_empty() {
        Ok(())
    } else {
        Err(ConfigError::Unknown(lines.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    //! The walk over a file's keys and the reading of variables, on real files.

    use super::*;

    fn file(text: &str) -> Result<(), ConfigError> {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("sg-keys-{}-{n}.toml", std::process::id()));
        std::fs::write(&path, text).unwrap();
        let result = check_file(&path);
        std::fs::remove_file(&path).unwrap();
        result
    }

    fn refusal(result: Result<(), ConfigError>) -> String {
        match result {
            Err(ConfigError::Unknown(text)) => text,
            other => panic!("not refused as unknown: {other:?}"),
        }
    }

    #[test]
    fn known_keys_pass_in_sections_subsections_and_lists_of_tables() {
        let text = "[database]\npool_max_size = 5\n[server.tls]\ncert_path = \"c\"\n\
                    [[shards]]\nprimary = \"a:1\"\nreplicas = [\"b:2\"]\n\
                    [[routing.ranges]]\nshard = 0\n[tables]\nallowed = [\"users\"]\n";
        assert!(file(text).is_ok(), "{:?}", file(text));
    }

    #[test]
    fn a_typo_is_named_with_the_file_and_the_nearest_key() {
        let text = "[database]\npool_max_siz = 5\n";
        let text = refusal(file(text));
        assert!(
            text.starts_with("unknown configuration key `database.pool_max_siz` in "),
            "{text}"
        );
        assert!(
            text.ends_with(" (did you mean `database.pool_max_size`?)"),
            "{text}"
        );
    }

    #[test]
    fn unknown_keys_anywhere_are_all_named() {
        let text = "[databse]\n[server.cors]\norigins = []\n[[shards]]\nprimary = \"a:1\"\n\
                    replica = \"b:2\"\n[[shards]]\nprimary = \"a:2\"\nreplica = \"b:3\"\n\
                    [[shard]]\nprimary = \"a:1\"\n";
        let text = refusal(file(text));
        let named: Vec<&str> = text
            .split("; ")
            .map(|l| l.split('`').nth(1).unwrap())
            .collect();
        assert_eq!(
            named,
            [
                "databse",
                "server.cors.origins",
                "shard[]",
                "shards[].replica"
            ],
            "{text}"
        );
        assert!(text.contains("`shards[].replica` in ") && text.contains("`shards[].replicas`"));
    }

    #[test]
    fn only_double_underscore_variables_are_configuration() {
        let vars = |pairs: &[&str]| {
            pairs
                .iter()
                .map(|n| (OsString::from(n), OsString::from("5")))
                .collect::<Vec<_>>()
        };
        assert!(check_env(vars(&[
            "SHARDGATE_REPO",
            "SHARDGATE_SETUP",
            "SHARDGATE__DATABASE__POOL_MAX_SIZE",
            "SHARDGATE__SERVER__TLS__CERT_PATH",
            "PATH",
        ]))
        .is_ok());
        let text = refusal(check_env(vars(&["SHARDGATE__DATABASE__POOL_MAX_SIZ"])));
        assert_eq!(
            text,
            "environment variable SHARDGATE__DATABASE__POOL_MAX_SIZ sets \
             `database.pool_max_siz`, which is no configuration key a variable can set \
             (did you mean `database.pool_max_size`, SHARDGATE__DATABASE__POOL_MAX_SIZE?)"
        );
        // A list of tables is set in a file only.
        let text = refusal(check_env(vars(&["SHARDGATE__SHARDS__PRIMARY"])));
        assert!(
            text.contains("sets `shards.primary`, which is no"),
            "{text}"
        );
    }

    #[test]
    fn edits_count_characters() {
        assert_eq!(edits("pool_max_size", "pool_max_siz"), 1);
        assert_eq!(edits("abc", "abc"), 0);
        assert_eq!(edits("", "abc"), 3);
        assert_eq!(edits("kitten", "sitting"), 3);
    }
}
