//! The cluster's typed configuration: layered loading and start-up validation.
//!
//! Layers, later wins: `config/default.toml` (from the working directory, or the copy
//! built into the binary when there is none), then the `--config` file, then
//! environment variables `SHARDGATE__SECTION__FIELD`.
//!
//! Layout: `sections` holds one type per configuration section, `validate` the
//! start-up checks that turn a parsed file into a cluster the gateway can trust.

mod sections;
mod validate;

use std::path::Path;

use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::redact::{redact, url_password, Redactor};

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

/// Loads any settings type from the layers described in the module doc.
pub fn load<T: DeserializeOwned>(overlay: Option<&Path>) -> Result<T, ConfigError> {
    let base = Path::new("config/default.toml");
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

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ClusterSettings {
        let cfg = config::Config::builder()
            .add_source(config::File::from_str(
                DEFAULT_CONFIG,
                config::FileFormat::Toml,
            ))
            .build()
            .unwrap();
        cfg.try_deserialize().unwrap()
    }

    fn invalid(s: &ClusterSettings) -> String {
        match s.validate() {
            Err(ConfigError::Invalid(m)) => m,
            other => panic!("expected invalid, got {other:?}"),
        }
    }

    #[test]
    fn default_config_is_valid_and_matches_setup() {
        let s = settings();
        assert_eq!(s.validate().unwrap().shard_count(), 3);
        assert_eq!(s.shards[0].primary, "127.0.0.1:25432");
        assert_eq!(s.shards[2].replicas, vec!["127.0.0.1:25534".to_string()]);
        assert_eq!(s.routing.slot_count, 1024);
    }

    #[test]
    fn each_thread_gets_a_share_of_the_connection_budget() {
        let mut db = settings().database;
        db.pool_max_size = 16;
        assert_eq!(db.pool_per_thread(), 16, "one thread (the admin CLI)");
        db.pool_threads = 2;
        assert_eq!(db.pool_per_thread(), 8);
        db.pool_threads = 16;
        assert_eq!(
            db.pool_per_thread(),
            1,
            "a 16-core host: 16, not 256, per server"
        );
        db.pool_threads = 3;
        assert_eq!(db.pool_per_thread(), 6, "rounded up");
        db.pool_max_size = 1;
        assert_eq!(db.pool_per_thread(), 1);
    }

    #[test]
    fn a_shard_behind_an_address_has_one_replica_address_and_waits_for_promotions() {
        let mut s = settings();
        s.failover.write_wait_ms = 10_000;
        s.shards[1].follow = ShardFollows::Address;
        s.shards[1].replicas = vec!["pg-ro:5432".into(), "pg-ro2:5432".into()];
        let m = invalid(&s);
        assert!(m.starts_with("shard 1 has follow = \"address\""), "{m}");
        assert!(
            m.contains("but 2 are listed (pg-ro:5432, pg-ro2:5432)"),
            "{m}"
        );

        s.shards[1].replicas = vec!["pg-ro:5432".into()];
        assert!(s.validate().is_ok());
        s.shards[1].replicas.clear();
        assert!(s.validate().is_ok(), "no replica address at all is fine");

        s.failover.write_wait_ms = 0;
        let m = invalid(&s);
        assert!(m.starts_with("shard 1 has follow = \"address\""), "{m}");
        assert!(m.contains("failover.write_wait_ms above 0"), "{m}");
        assert!(m.contains("10000 is typical"), "{m}");

        s.failover.write_wait_ms = 10_000;
        s.failover.watch = false;
        let m = invalid(&s);
        assert!(
            m.contains("shard 1 has follow = \"address\", which needs failover.watch = true"),
            "{m}"
        );

        // Shards that follow their servers need neither.
        s.shards[1].follow = ShardFollows::Servers;
        s.failover.write_wait_ms = 0;
        assert!(s.validate().is_ok());
    }

    #[test]
    fn follow_reads_its_two_values_from_toml_and_names_the_key_of_any_other() {
        let read = |follow: &str| {
            let toml = format!(
                "[[shards]]\nprimary = \"pg-rw:5432\"\nreplicas = [\"pg-ro:5432\"]\nfollow = {follow}\n"
            );
            config::Config::builder()
                .add_source(config::File::from_str(
                    DEFAULT_CONFIG,
                    config::FileFormat::Toml,
                ))
                .add_source(config::File::from_str(&toml, config::FileFormat::Toml))
                .build()
                .unwrap()
                .try_deserialize::<ClusterSettings>()
        };
        let s = read("\"address\"").unwrap();
        assert_eq!(s.shards[0].follow, ShardFollows::Address);
        assert_eq!(s.shards[0].describe()["follow"], "address");
        let s = read("\"servers\"").unwrap();
        assert_eq!(s.shards[0].follow, ShardFollows::Servers);
        // The config crate names the value and the key (not serde's list of values).
        let e = read("\"dns\"").unwrap_err().to_string();
        assert!(e.contains("dns") && e.contains("shards[0]follow"), "{e}");
        assert_eq!(
            settings().shards[0].follow,
            ShardFollows::Servers,
            "the default"
        );
    }

    #[test]
    fn duplicate_server_is_named() {
        let mut s = settings();
        s.shards[1].replicas = vec!["127.0.0.1:25432".into()];
        assert!(invalid(&s).contains("127.0.0.1:25432 appears twice"));
    }

    #[test]
    fn slot_gaps_and_overlaps_are_named() {
        let mut s = settings();
        s.routing.slot_count = 10;
        s.shards.truncate(2);
        s.shards[0].slots = vec!["0-4".into()];
        s.shards[1].slots = vec!["6-9".into()];
        assert!(invalid(&s).contains("slot 5 belongs to no shard"));
        s.shards[1].slots = vec!["4-9".into()];
        assert!(invalid(&s).contains("slot 4 is owned by shard 0 and shard 1"));
        s.shards[1].slots = vec!["5-9".into()];
        let router = s.validate().unwrap();
        assert_eq!(router.ranges_of(crate::ShardId(0)), vec![(0, 4)]);
        assert_eq!(router.ranges_of(crate::ShardId(1)), vec![(5, 9)]);
    }

    #[test]
    fn bad_addresses_and_tables_are_named() {
        let mut s = settings();
        s.shards[0].primary = "localhost".into();
        assert!(invalid(&s).contains("expected host:port"));
        let mut s = settings();
        s.tables.allowed.push("Users; DROP".into());
        assert!(invalid(&s).contains("must match"));
    }

    #[test]
    fn secrets_in_settings_are_refused_without_being_shown() {
        let mut s = settings();
        s.shards[1].replicas = vec!["u:s3cret-pw@127.0.0.1:25533".into()];
        let shown = s.validate().unwrap_err().to_string();
        assert_eq!(
            shown,
            "invalid configuration: shard 1 replica \"u:***@127.0.0.1:25533\": an address is \
             host:port only; the user and password go in [database] (user, password)"
        );
        let mut s = settings();
        s.cache.enabled = true;
        s.cache.url = "redis://:s3cret-pw@127.0.0.1:x".into();
        let shown = s.validate().unwrap_err().to_string();
        assert!(
            shown.starts_with("invalid configuration: cache.url \"redis://:***@127.0.0.1:x\": ")
        );
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(!format!("{:?}", s.cache).contains("s3cret"));
        s.cache.url = "redis://:s3cret-pw@127.0.0.1:1".into();
        s.validate().unwrap();
        let redactor = s.redactor();
        assert_eq!(
            redactor.hide("AUTH s3cret-pw refused"),
            "AUTH *** refused",
            "the redactor knows the cache's password"
        );
    }

    /// The defaults with `toml` layered on top, as a `--config` file would be.
    fn with_overlay(toml: &str) -> ClusterSettings {
        config::Config::builder()
            .add_source(config::File::from_str(
                DEFAULT_CONFIG,
                config::FileFormat::Toml,
            ))
            .add_source(config::File::from_str(toml, config::FileFormat::Toml))
            .build()
            .unwrap()
            .try_deserialize()
            .unwrap()
    }

    #[test]
    fn links_to_the_shards_are_safe_by_default_and_verify_full_needs_its_roots() {
        let db = settings().database;
        assert!(!db.allow_insecure_auth);
        assert_eq!(db.sslmode, SslMode::Disable);
        let s = with_overlay("[database]\nsslmode = \"verify-full\"\n");
        assert_eq!(s.database.sslmode, SslMode::VerifyFull);
        assert!(invalid(&s).contains("database.ssl_root_cert"));
        let s = with_overlay(
            "[database]\nsslmode = \"verify-full\"\nssl_root_cert = \"/etc/ca.pem\"\n",
        );
        assert!(s.validate().is_ok());
    }

    #[test]
    fn every_strategy_reads_its_options_from_toml() {
        let ring =
            with_overlay("[routing]\nstrategy = \"hash_ring\"\nvnodes = 100\nweights = [1, 2, 1]");
        assert_eq!(ring.routing.strategy, Strategy::HashRing);
        let router = ring.validate().unwrap();
        assert_eq!(router.strategy(), Strategy::HashRing);
        assert_eq!(router.shard_count(), 3);
        let modulo = with_overlay("[routing]\nstrategy = \"modulo\"\nnumeric = true");
        assert!(modulo.validate().is_ok());
        let range = with_overlay(
            "[routing]\nstrategy = \"range\"\nnumeric = true\n\
             [[routing.ranges]]\nshard = 0\nto = 1000\n\
             [[routing.ranges]]\nshard = 1\nfrom = 1000\nto = \"1000000\"\n\
             [[routing.ranges]]\nshard = 2\nfrom = 1000000",
        );
        assert!(range.validate().is_ok(), "{:?}", range.validate());
        assert_eq!(range.routing.ranges[1].from.as_deref(), Some("1000"));
        assert_eq!(settings().routing.vnodes, 256);
    }

    #[test]
    fn strategy_options_out_of_place_are_named() {
        let mut s = settings();
        s.routing.numeric = true;
        assert_eq!(
            invalid(&s),
            "routing.numeric applies to \"modulo\" and \"range\" only, but routing.strategy is \"slots\""
        );
        let mut s = settings();
        s.routing.strategy = Strategy::Modulo;
        s.shards[0].slots = vec!["0-1023".into()];
        assert!(invalid(&s).starts_with("shard 0 lists slots, but routing.strategy is \"modulo\""));
        let mut s = settings();
        s.routing.weights = vec![1, 1, 1];
        assert!(invalid(&s).starts_with("routing.weights applies to \"hash_ring\" only"));
        let mut s = settings();
        s.routing.strategy = Strategy::Range;
        assert!(invalid(&s).contains("no [[routing.ranges]] is listed"));
    }

    #[test]
    fn ring_vnodes_and_weights_are_checked() {
        let mut s = settings();
        s.routing.strategy = Strategy::HashRing;
        s.routing.vnodes = 0;
        assert!(invalid(&s).starts_with("routing.vnodes is 0; use 1 to 4096"));
        s.routing.vnodes = 100;
        s.routing.weights = vec![1, 2];
        assert_eq!(
            invalid(&s),
            "routing.weights lists 2 weights for 3 shards; give one per shard, or none"
        );
        s.routing.weights = vec![1, 0, 2];
        assert_eq!(
            invalid(&s),
            "routing.weights[1] (shard 1) is 0; weights are 1 to 64"
        );
        s.routing.weights = vec![1, 3, 2];
        assert!(s.validate().is_ok());
    }

    #[test]
    fn range_gaps_overlaps_and_bad_bounds_are_named() {
        let range =
            |ranges: &str| with_overlay(&format!("[routing]\nstrategy = \"range\"\n{ranges}"));
        let gap = range(
            "[[routing.ranges]]\nshard = 0\nto = \"h\"\n\
             [[routing.ranges]]\nshard = 1\nfrom = \"i\"\nto = \"p\"\n\
             [[routing.ranges]]\nshard = 2\nfrom = \"p\"",
        );
        assert_eq!(
            invalid(&gap),
            "routing.ranges: keys from \"h\" up to \"i\" belong to no range (range 0 ends at \"h\", \
             range 1 starts at \"i\")"
        );
        let overlap = range(
            "[[routing.ranges]]\nshard = 0\nto = \"h\"\n\
             [[routing.ranges]]\nshard = 1\nfrom = \"g\"\nto = \"p\"\n\
             [[routing.ranges]]\nshard = 2\nfrom = \"p\"",
        );
        assert_eq!(
            invalid(&overlap),
            "routing.ranges: keys from \"g\" up to \"h\" are in range 0 and range 1"
        );
        let unknown = range("[[routing.ranges]]\nshard = 3");
        assert_eq!(
            invalid(&unknown),
            "routing.ranges: range 0 names shard 3, but the shards are 0 to 2"
        );
        let mut numeric = range(
            "numeric = true\n[[routing.ranges]]\nshard = 0\nto = \"ten\"\n\
             [[routing.ranges]]\nshard = 1\nfrom = 10",
        );
        numeric.shards.truncate(2);
        assert_eq!(
            invalid(&numeric),
            "routing.ranges: range 0 to \"ten\" is not an integer (routing.numeric is on)"
        );
    }
}
