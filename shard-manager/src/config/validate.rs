//! Start-up validation: everything that would otherwise fail later, named precisely.

use std::collections::HashSet;

use super::{ClusterSettings, ConfigError, ShardFollows, Strategy, MAX_VNODES, MAX_WEIGHT};
use crate::redact::{redact, url_password, Redactor};
use crate::routing::Router;

impl ClusterSettings {
    /// Checks everything that would otherwise fail later, and says exactly what is wrong.
    /// Returns the shard map these settings describe: the one [`Router`] the gateway and
    /// the admin commands route with.
    pub fn validate(&self) -> Result<Router, ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if self.shards.is_empty() {
            return bad("no [[shards]] configured; at least one is needed".into());
        }
        self.validate_backup()?;
        let slots = self.routing.slot_count;
        if slots == 0 || slots > 1 << 16 {
            return bad(format!("routing.slot_count is {slots}; use 1 to 65536"));
        }
        if self.routing.strategy == Strategy::Slots && (slots as usize) < self.shards.len() {
            return bad(format!(
                "routing.slot_count ({slots}) is smaller than the number of shards ({})",
                self.shards.len()
            ));
        }
        let mut seen = HashSet::new();
        for (i, shard) in self.shards.iter().enumerate() {
            for (role, addr) in std::iter::once(("primary", &shard.primary))
                .chain(shard.replicas.iter().map(|r| ("replica", r)))
            {
                parse_addr(addr).map_err(|m| {
                    ConfigError::Invalid(format!("shard {i} {role} {:?}: {m}", redact(addr)))
                })?;
                if !seen.insert(addr.as_str()) {
                    return bad(format!(
                        "server {addr} appears twice; each server belongs to one shard once"
                    ));
                }
            }
        }
        self.validate_follow()?;
        parse_addr(&self.metadata.address).map_err(|m| {
            ConfigError::Invalid(format!(
                "metadata.address {:?}: {m}",
                redact(&self.metadata.address)
            ))
        })?;
        let db = &self.database;
        for (name, v) in [
            ("database.connect_timeout_ms", db.connect_timeout_ms),
            ("database.statement_timeout_ms", db.statement_timeout_ms),
            ("database.pool_wait_timeout_ms", db.pool_wait_timeout_ms),
            ("database.pool_max_size", db.pool_max_size as u64),
        ] {
            if v == 0 {
                return bad(format!("{name} must be greater than 0"));
            }
        }
        if db.sslmode == super::SslMode::VerifyFull && db.ssl_root_cert.is_none() {
            return bad(
                "database.sslmode = \"verify-full\" needs database.ssl_root_cert: a PEM file of \
                 the authorities the servers' certificates chain to"
                    .into(),
            );
        }
        let r = &self.replication;
        for (name, v) in [
            ("replication.check_interval_ms", r.check_interval_ms),
            ("replication.check_timeout_ms", r.check_timeout_ms),
        ] {
            if v == 0 {
                return bad(format!("{name} must be greater than 0"));
            }
        }
        let c = &self.cache;
        if c.enabled {
            if c.prefix.is_empty() || c.prefix.len() > 64 || c.prefix.contains(char::is_whitespace)
            {
                return bad("cache.prefix must be 1 to 64 characters without spaces".into());
            }
            if c.timeout_ms == 0 || c.ttl_secs == 0 {
                return bad("cache.timeout_ms and cache.ttl_secs must be greater than 0".into());
            }
            if c.memory_entries > MAX_MEMORY_ENTRIES {
                return bad(format!(
                    "cache.memory_entries must be 0 (off) to {MAX_MEMORY_ENTRIES}, not {}",
                    c.memory_entries
                ));
            }
            cache_url(&c.url)?;
        }
        self.validate_tables()?;
        self.validate_routing()?;
        let ranges = self.slot_ranges()?;
        Router::try_new(&self.routing, &ranges).map_err(|e| ConfigError::Invalid(e.to_string()))
    }

    /// A shard that follows an address has one address per role, and the gateways
    /// watch it and wait for its promotions.
    fn validate_follow(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        let f = &self.failover;
        for (i, shard) in self.shards.iter().enumerate() {
            if shard.follow != ShardFollows::Address {
                continue;
            }
            if shard.replicas.len() > 1 {
                return bad(format!(
                    "shard {i} has follow = \"address\": its replicas are one address spread \
                     over its standbys (a -ro service), but {} are listed ({}); list one, or \
                     use follow = \"servers\" to list each server",
                    shard.replicas.len(),
                    shard.replicas.join(", ")
                ));
            }
            if !f.watch {
                return bad(format!(
                    "shard {i} has follow = \"address\", which needs failover.watch = true: \
                     behind an address only the gateways' own checks see a failover"
                ));
            }
            if f.write_wait_ms == 0 {
                return bad(format!(
                    "shard {i} has follow = \"address\", which needs failover.write_wait_ms \
                     above 0: a failover behind an address takes seconds; with \
                     write_wait_ms = 0 every write answers 503 meanwhile; 10000 is typical"
                ));
            }
        }
        Ok(())
    }

    /// The options that belong to one strategy are set only with that strategy.
    fn validate_backup(&self) -> Result<(), ConfigError> {
        let b = &self.backup;
        for (field, value) in [
            ("program", &b.program),
            ("pgbackrest_config", &b.pgbackrest_config),
            ("os_user", &b.os_user),
        ] {
            if value.trim().is_empty() {
                return Err(ConfigError::Invalid(format!(
                    "backup.{field} is empty; leave it out for the default, or name one"
                )));
            }
        }
        if !b
            .os_user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        {
            return Err(ConfigError::Invalid(format!(
                "backup.os_user {:?} is not a user name",
                b.os_user
            )));
        }
        Ok(())
    }

    fn validate_routing(&self) -> Result<(), ConfigError> {
        let r = &self.routing;
        let bad = |m: String| Err(ConfigError::Invalid(m));
        let only = |option: &str, strategies: &str| {
            bad(format!(
                "{option} applies to {strategies} only, but routing.strategy is \"{}\"",
                r.strategy
            ))
        };
        let is = |s: Strategy| r.strategy == s;
        if r.numeric && !is(Strategy::Modulo) && !is(Strategy::Range) {
            return only("routing.numeric", "\"modulo\" and \"range\"");
        }
        if !r.weights.is_empty() && !is(Strategy::HashRing) {
            return only("routing.weights", "\"hash_ring\"");
        }
        if !r.ranges.is_empty() && !is(Strategy::Range) {
            return only("[[routing.ranges]]", "\"range\"");
        }
        if let Some(i) = self.shards.iter().position(|s| !s.slots.is_empty()) {
            if !is(Strategy::Slots) {
                return bad(format!(
                    "shard {i} lists slots, but routing.strategy is \"{}\"; slots apply to \"slots\" only",
                    r.strategy
                ));
            }
        }
        if is(Strategy::HashRing) {
            if r.vnodes == 0 || r.vnodes > MAX_VNODES {
                return bad(format!(
                    "routing.vnodes is {}; use 1 to {MAX_VNODES}; 100 or more keeps every shard within 1 + 4/√vnodes of its share",
                    r.vnodes
                ));
            }
            let shards = self.shards.len();
            if !r.weights.is_empty() && r.weights.len() != shards {
                return bad(format!(
                    "routing.weights lists {} weights for {shards} shards; give one per shard, or none",
                    r.weights.len()
                ));
            }
            if let Some(i) = r.weights.iter().position(|w| !(1..=MAX_WEIGHT).contains(w)) {
                return bad(format!(
                    "routing.weights[{i}] (shard {i}) is {}; weights are 1 to {MAX_WEIGHT}",
                    r.weights[i]
                ));
            }
        }
        if is(Strategy::Range) && r.ranges.is_empty() {
            return bad(
                "routing.strategy is \"range\" but no [[routing.ranges]] is listed; list ranges \
                 covering the whole key space"
                    .into(),
            );
        }
        Ok(())
    }

    fn validate_tables(&self) -> Result<(), ConfigError> {
        if self.tables.allowed.is_empty() {
            return Err(ConfigError::Invalid(
                "tables.allowed is empty; clients could not use any table".into(),
            ));
        }
        let mut seen = HashSet::new();
        for t in &self.tables.allowed {
            let ok = !t.is_empty()
                && t.len() <= 63
                && t.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
                && t.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !ok {
                return Err(ConfigError::Invalid(format!(
                    "table name {t:?} must match [a-z_][a-z0-9_]{{0,62}}"
                )));
            }
            if !seen.insert(t) {
                return Err(ConfigError::Invalid(format!("table {t:?} is listed twice")));
            }
        }
        Ok(())
    }

    fn slot_ranges(&self) -> Result<Vec<Vec<(u32, u32)>>, ConfigError> {
        let count = self.routing.slot_count;
        let explicit = self.shards.iter().filter(|s| !s.slots.is_empty()).count();
        if explicit == 0 {
            return Ok(vec![Vec::new(); self.shards.len()]);
        }
        if explicit != self.shards.len() {
            return Err(ConfigError::Invalid(
                "either every shard lists its slots or none does".into(),
            ));
        }
        let mut owner: Vec<Option<usize>> = vec![None; count as usize];
        let mut all = Vec::new();
        for (i, shard) in self.shards.iter().enumerate() {
            let mut ranges = Vec::new();
            for text in &shard.slots {
                let (a, b) = parse_range(text, count)
                    .map_err(|m| ConfigError::Invalid(format!("shard {i} slots {text:?}: {m}")))?;
                for slot in a..=b {
                    if let Some(other) = owner[slot as usize].replace(i) {
                        return Err(ConfigError::Invalid(format!(
                            "slot {slot} is owned by shard {other} and shard {i}"
                        )));
                    }
                }
                ranges.push((a, b));
            }
            all.push(ranges);
        }
        if let Some(slot) = owner.iter().position(Option::is_none) {
            return Err(ConfigError::Invalid(format!(
                "slot {slot} belongs to no shard; every slot 0..{count} needs exactly one"
            )));
        }
        Ok(all)
    }
}

/// The most entries a gateway's memory tier may hold (`cache.memory_entries`): about
/// 8 GiB at the largest entry held.
const MAX_MEMORY_ENTRIES: usize = 1_000_000;

/// `cache.url` as the Redis client reads it; the error hides the URL's password,
/// however broken the URL (the client's own message is hidden the same way).
pub fn cache_url(url: &str) -> Result<redis::Client, ConfigError> {
    redis::Client::open(url).map_err(|e| {
        let mut redactor = Redactor::knowing(url_password(url));
        redactor.learn(url);
        ConfigError::Invalid(redactor.hide(&format!("cache.url {url:?}: {e}")))
    })
}

/// `host:port` with a non-empty host and a valid port. Credentials never go in an
/// address (`[database]` holds them): an `@` is refused, so addresses are safe to show.
pub fn parse_addr(addr: &str) -> Result<(&str, u16), String> {
    if addr.contains('@') {
        return Err(
            "an address is host:port only; the user and password go in [database] \
                    (user, password)"
                .into(),
        );
    }
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| "expected host:port".to_string())?;
    if host.is_empty() {
        return Err("the host is empty".into());
    }
    let port = port
        .parse::<u16>()
        .map_err(|_| format!("port {port:?} is not a number from 1 to 65535"))?;
    Ok((host, port))
}

fn parse_range(text: &str, count: u32) -> Result<(u32, u32), String> {
    let num = |s: &str| {
        s.trim()
            .parse::<u32>()
            .map_err(|_| format!("{s:?} is not a slot number"))
    };
    let (a, b) = match text.split_once('-') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => {
            let n = num(text)?;
            (n, n)
        }
    };
    if a > b {
        return Err(format!("range starts after it ends ({a} > {b})"));
    }
    if b >= count {
        return Err(format!("slot {b} is out of range; slots are 0..{count}"));
    }
    Ok((a, b))
}

#[cfg(test)]
mod tests {
    use crate::config::*;

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
