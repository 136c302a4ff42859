//! The shard schema every server must have: the migrations in `migrations/`, listed by
//! name (the build script reads the folder; `control_plane::migrations` embeds their SQL
//! and the admin CLI applies it), and which of them a server has applied.

mod listed {
    include!(concat!(env!("OUT_DIR"), "/migrations.rs"));
}

/// One migration: its version (the digits of its folder name's date, as diesel's
/// runner records it) and its folder name, e.g. (`20261122000001`,
/// `2026-11-22-000001_create_records`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    pub version: String,
    pub name: String,
}

/// Every migration in `migrations/`, oldest first.
pub fn expected() -> Vec<Migration> {
    let mut all: Vec<Migration> = listed::FOLDERS
        .iter()
        .map(|name| Migration {
            version: version_of(name),
            name: (*name).to_owned(),
        })
        .collect();
    all.sort_by(|a, b| a.version.cmp(&b.version));
    all
}

/// A migration's version as diesel records it: its folder name up to the
/// first `_`, without the dashes.
fn version_of(folder: &str) -> String {
    folder.split('_').next().unwrap_or(folder).replace('-', "")
}

/// The names of `expected` migrations whose versions `applied` lacks.
pub fn missing(expected: &[Migration], applied: &[String]) -> Vec<String> {
    expected
        .iter()
        .filter(|m| !applied.contains(&m.version))
        .map(|m| m.name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_migrations_are_listed_in_order_and_missing_ones_named() {
        let all = expected();
        assert!(all.len() >= 2, "{all:?}");
        assert_eq!(all[0].name, "2026-11-22-000001_create_records");
        assert_eq!(all[0].version, "20261122000001");
        assert_eq!(missing(&all, &[]).len(), all.len());
        let first_only = vec![all[0].version.clone()];
        assert_eq!(
            missing(&all, &first_only),
            all[1..].iter().map(|m| m.name.clone()).collect::<Vec<_>>()
        );
        let every: Vec<String> = all.iter().map(|m| m.version.clone()).collect();
        assert!(missing(&all, &every).is_empty());
    }

    #[test]
    fn a_version_is_the_date_without_its_dashes() {
        assert_eq!(
            version_of("2026-11-25-120001_idempotency_per_record"),
            "20261125120001"
        );
        assert_eq!(version_of("20261201_plain"), "20261201");
    }
}
