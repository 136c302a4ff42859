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
