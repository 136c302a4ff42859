//! HTTP handlers, one file per endpoint family. Handlers parse, call `shard-manager`
//! through `AppState`, and attach an `Outcome` for analytics; errors are `ApiError`.

pub mod analytics;
pub mod bulk;
pub mod dashboard;
pub mod delete;
pub mod fallback;
pub mod health;
pub mod list;
pub mod read;
pub mod shards;
pub mod write;
