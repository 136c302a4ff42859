//! The shard schema every server must have: the migrations in `migrations/`, embedded in
//! every binary, and how to read which of them a server has applied.

use diesel::migration::MigrationSource;
use diesel::pg::Pg;
use diesel_migrations::{embed_migrations, EmbeddedMigrations};

/// The SQL in `migrations/`, compiled into every binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations");

/// One migration: diesel's version (digits) and its folder name, e.g.
/// (`20261122000001`, `2026-11-22-000001_create_records`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    pub version: String,
    pub name: String,
}

/// Every embedded migration, oldest first.
pub fn expected() -> Vec<Migration> {
    let mut all: Vec<Migration> = MigrationSource::<Pg>::migrations(&MIGRATIONS)
        .unwrap_or_default()
        .iter()
        .map(|m| Migration {
            version: m.name().version().to_string(),
            name: m.name().to_string(),
        })
        .collect();
    all.sort_by(|a, b| a.version.cmp(&b.version));
    all
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
    fn the_embedded_migrations_are_listed_in_order_and_missing_ones_named() {
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
}
