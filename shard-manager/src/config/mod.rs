//! The cluster's typed configuration: layered loading and start-up validation.
//!
//! Layers, later wins: `config/default.toml` (from the working directory, or the copy
//! built into the binary when there is none), then the `--config` file, then
//! environment variables `SHARDGATE__SECTION__FIELD`. A key no binary reads, in a file
//! or a variable, is refused naming it (`keys`).
//!
//! Layout: `sections` holds one type per configuration section, `keys` the list of every
//! key and the strict check against it, `validate` the start-up checks that turn a
//! parsed file into a cluster the gateway can trust.

mod keys;
mod sections;
mod validate;

use std::path::Path;

use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::redact::{redact, url_password, Redactor};

pub use keys::{known_keys, KNOWN_KEYS};
pub use sections::*;
pub use validate::{cache_url, parse_addr};

/// The defaults `./setup.sh up` matches, compiled in so a binary runs anywhere.
pub const DEFAULT_CONFIG: &str = include_str!("../../../config/default.toml");

/// Everything shard-manager needs: servers, routing, tables, cache.
#[derive(Debug, Clone, Deserialize)]
pub struct ClusterSettings {
    pub database: DatabaseSettings,
    pub routing: RoutingSettings,
    pub tables: TableSettings,
    pub shards: Vec<ShardSettings>,
    #[serde(default)]
    pub replication: ReplicationSettings,
    #[serde(default)]
    pub cache: CacheSettings,
    #[serde(default)]
    pub metadata: MetadataSettings,
    #[serde(default)]
    pub moves: MovesSettings,
    #[serde(default)]
    pub changes: ChangesSettings,
    #[serde(default)]
    pub failover: FailoverSettings,
    #[serde(default)]
    pub backup: BackupSettings,
}

/// A configuration that could not be loaded or does not describe a working cluster.
/// Its text never shows a password, even one typed where it does not belong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("could not load configuration: {}", redact(&.0.to_string()))]
    Load(#[from] config::ConfigError),
    #[error("invalid configuration: {}", redact(.0))]
    Invalid(String),
    /// Keys no binary reads, each named with where it was set.
    #[error("{}", redact(.0))]
    Unknown(String),
}

impl ClusterSettings {
    /// A redactor that knows every configured secret (the database password, the cache
    /// URL's password, one typed into an address), for the text of any error or log
    /// line that might quote them.
    pub fn redactor(&self) -> Redactor {
        let mut known = vec![self.database.password.expose_secret().to_owned()];
        known.extend(url_password(&self.cache.url));
        let f = &self.failover;
        known.extend(f.ha_monitor.as_deref().and_then(url_password));
        known.extend(
            f.ha_monitor_admin
                .as_ref()
                .and_then(|u| url_password(u.expose_secret())),
        );
        known.extend(
            f.admin_password
                .as_ref()
                .map(|p| p.expose_secret().to_owned()),
        );
        known.retain(|k| !k.is_empty());
        let mut redactor = Redactor::knowing(known);
        redactor.learn(&self.cache.url);
        redactor.learn(&self.metadata.address);
        for shard in &self.shards {
            redactor.learn(&shard.primary);
            shard.replicas.iter().for_each(|r| redactor.learn(r));
        }
        redactor
    }
}

/// The keys whose environment variable is a comma-separated list
/// (`SHARDGATE__TABLES__ALLOWED=users,orders`); other lists are set in a file.
pub const ENV_LIST_KEYS: &[&str] = &[
    "tables.allowed",
    "server.trusted_proxies",
    "routing.weights",
];

/// Any settings type from one TOML text alone (no file, no environment): with
/// [`DEFAULT_CONFIG`], the defaults every binary starts from.
pub fn from_toml<T: DeserializeOwned>(text: &str) -> Result<T, ConfigError> {
    let source = config::File::from_str(text, config::FileFormat::Toml);
    Ok(config::Config::builder()
        .add_source(source)
        .build()?
        .try_deserialize()?)
}

/// Loads any settings type from the layers described in the module doc, after refusing
/// any key of a file or a `SHARDGATE__` variable that no binary reads.
pub fn load<T: DeserializeOwned>(overlay: Option<&Path>) -> Result<T, ConfigError> {
    let base = Path::new("config/default.toml");
    if base.exists() {
        keys::check_file(base)?;
    }
    if let Some(path) = overlay {
        keys::check_file(path)?;
    }
    keys::check_env(std::env::vars_os())?;
    let mut builder = config::Config::builder();
    builder = if base.exists() {
        builder.add_source(config::File::from(base))
    } else {
        builder.add_source(config::File::from_str(
            DEFAULT_CONFIG,
            config::FileFormat::Toml,
        ))
    };
    if let Some(path) = overlay {
        builder = builder.add_source(config::File::from(path).required(true));
    }
    let environment = ENV_LIST_KEYS.iter().fold(
        config::Environment::with_prefix("SHARDGATE")
            .prefix_separator("__")
            .separator("__")
            .list_separator(",")
            .try_parsing(true),
        |env, key| env.with_list_parse_key(key),
    );
    builder = builder.add_source(environment);
    Ok(builder.build()?.try_deserialize()?)
}
