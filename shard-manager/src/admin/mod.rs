//! Admin work on the synchronous diesel + r2d2 path: migrations, database creation.

pub mod migrate;

pub use migrate::{create_database, migrate_all, AdminError, MIGRATIONS};
