//! Realistic fake records for `seed` and `bench`, a pure function of (table, seed, n).
//!
//! Record `n` draws everything from its own generator, seeded with
//! `xxh3_64(n, seed ^ xxh3_64(table))`, so the same `--seed` gives the same records
//! whatever the batch size, the thread that builds them or the order they are built
//! in. Timestamps are offsets from a fixed date, never the clock. (`StdRng` is pinned
//! by `Cargo.lock`; a rand upgrade may change the values, not the determinism.)
//!
//! Shapes: `users` (name, email, phone, address, company, job), `orders` (user, items,
//! total, currency, status), `products` (sku, name, category, price, stock, tags),
//! `events` (kind, at, user, properties); any other table gets a title and a body.

use fake::faker::address::en::{
    BuildingNumber, CityName, CountryCode, StateAbbr, StreetName, StreetSuffix, ZipCode,
};
use fake::faker::company::en::{BsAdj, BsNoun, CompanyName, Industry};
use fake::faker::internet::en::{DomainSuffix, IPv4, SafeEmail, UserAgent, Username};
use fake::faker::job::en::Title;
use fake::faker::lorem::en::{Paragraph, Sentence, Word, Words};
use fake::faker::name::en::Name;
use fake::faker::phone_number::en::PhoneNumber;
use fake::Fake;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use xxhash_rust::xxh3::xxh3_64_with_seed;

use shard_manager::routing::strategy::key_hash;

/// 2024-01-01T00:00:00Z: every generated timestamp is this plus up to two years.
const EPOCH: i64 = 1_704_067_200;
const TWO_YEARS: i64 = 2 * 365 * 86_400;

/// Which shape of record a table gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Users,
    Orders,
    Products,
    Events,
    Other,
}

/// One generated record, not yet routed.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    pub shard_key: String,
    pub id: String,
    pub data: Value,
}

/// Builds record `n` of a table, deterministically.
#[derive(Debug, Clone)]
pub struct Generator {
    table: String,
    shape: Shape,
    /// `seed ^ xxh3_64(table)`: different tables draw different streams.
    salt: u64,
    /// Shard keys are drawn from `0..keys`.
    keys: u64,
    /// Keys are plain integers (`routing.numeric`), not `user_{k}`.
    numeric: bool,
}

impl Generator {
    pub fn new(table: &str, seed: u64, keys: u64, numeric: bool) -> Self {
        let shape = match table {
            "users" => Shape::Users,
            "orders" => Shape::Orders,
            "products" => Shape::Products,
            "events" => Shape::Events,
            _ => Shape::Other,
        };
        Self {
            table: table.to_owned(),
            shape,
            salt: seed ^ key_hash(table.as_bytes()),
            keys: keys.max(1),
            numeric,
        }
    }

    fn rng(&self, n: u64) -> StdRng {
        StdRng::seed_from_u64(xxh3_64_with_seed(&n.to_le_bytes(), self.salt))
    }

    fn draw_key(&self, rng: &mut StdRng) -> String {
        self.key_name(rng.random_range(0..self.keys))
    }

    /// The name of key `k` of the key space: `user_{k}` (`vendor_{k}` for products,
    /// `key_{k}` for other tables), or `{k}` when keys are numeric.
    pub fn key_name(&self, k: u64) -> String {
        match (self.numeric, self.shape) {
            (true, _) => k.to_string(),
            (false, Shape::Products) => format!("vendor_{k}"),
            (false, Shape::Other) => format!("key_{k}"),
            (false, _) => format!("user_{k}"),
        }
    }

    /// Record `n`'s shard key alone: its first draw, so cheap (for sizing per shard).
    pub fn key(&self, n: u64) -> String {
        self.draw_key(&mut self.rng(n))
    }

    /// Record `n`: shard key, id `{table}_{n}` and data.
    pub fn record(&self, n: u64) -> Generated {
        let mut rng = self.rng(n);
        let shard_key = self.draw_key(&mut rng);
        let r = &mut rng;
        let data = match self.shape {
            Shape::Users => users(r),
            Shape::Orders => orders(r, &shard_key),
            Shape::Products => products(r),
            Shape::Events => events(r, &shard_key),
            Shape::Other => json!({
                "title": Sentence(3..8).fake_with_rng::<String, _>(r),
                "body": Paragraph(2..5).fake_with_rng::<String, _>(r),
                "tags": Words(1..4).fake_with_rng::<Vec<String>, _>(r),
            }),
        };
        Generated {
            shard_key,
            id: format!("{}_{n}", self.table),
            data,
        }
    }
}

fn timestamp(r: &mut StdRng) -> String {
    chrono::DateTime::from_timestamp(EPOCH + r.random_range(0..TWO_YEARS), 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn pick<'a>(r: &mut StdRng, options: &[&'a str]) -> &'a str {
    options[r.random_range(0..options.len())]
}

/// Cents as a JSON number with two decimals.
fn money(cents: u64) -> Value {
    json!(cents as f64 / 100.0)
}

fn users(r: &mut StdRng) -> Value {
    json!({
        "name": Name().fake_with_rng::<String, _>(r),
        "email": SafeEmail().fake_with_rng::<String, _>(r),
        "phone": PhoneNumber().fake_with_rng::<String, _>(r),
        "address": {
            "street": format!(
                "{} {} {}",
                BuildingNumber().fake_with_rng::<String, _>(r),
                StreetName().fake_with_rng::<String, _>(r),
                StreetSuffix().fake_with_rng::<String, _>(r)
            ),
            "city": CityName().fake_with_rng::<String, _>(r),
            "state": StateAbbr().fake_with_rng::<String, _>(r),
            "zip": ZipCode().fake_with_rng::<String, _>(r),
            "country": CountryCode().fake_with_rng::<String, _>(r),
        },
        "company": CompanyName().fake_with_rng::<String, _>(r),
        "job_title": Title().fake_with_rng::<String, _>(r),
        "plan": pick(r, &["free", "pro", "team", "enterprise"]),
        "active": r.random_bool(0.9),
        "signed_up_at": timestamp(r),
    })
}

fn orders(r: &mut StdRng, user: &str) -> Value {
    let count = r.random_range(1..=5);
    let mut total = 0;
    let items: Vec<Value> = (0..count)
        .map(|_| {
            let qty: u64 = r.random_range(1..=4);
            let unit: u64 = r.random_range(199..=19_999);
            total += qty * unit;
            json!({
                "sku": format!("SKU-{:06}", r.random_range(0..1_000_000)),
                "name": format!("{} {}", BsAdj().fake_with_rng::<String, _>(r),
                                BsNoun().fake_with_rng::<String, _>(r)),
                "qty": qty,
                "unit_price": money(unit),
            })
        })
        .collect();
    json!({
        "user": user,
        "items": items,
        "total": money(total),
        "currency": pick(r, &["USD", "EUR", "GBP", "JPY", "CAD"]),
        "status": pick(r, &["pending", "paid", "shipped", "delivered", "cancelled", "refunded"]),
        "placed_at": timestamp(r),
        "ship_to": {
            "city": CityName().fake_with_rng::<String, _>(r),
            "country": CountryCode().fake_with_rng::<String, _>(r),
        },
    })
}

fn products(r: &mut StdRng) -> Value {
    json!({
        "sku": format!("SKU-{:06}", r.random_range(0..1_000_000)),
        "name": format!("{} {}", BsAdj().fake_with_rng::<String, _>(r),
                        BsNoun().fake_with_rng::<String, _>(r)),
        "category": Industry().fake_with_rng::<String, _>(r),
        "price": money(r.random_range(99..=99_999)),
        "currency": pick(r, &["USD", "EUR", "GBP"]),
        "stock": r.random_range(0..1000),
        "tags": Words(1..4).fake_with_rng::<Vec<String>, _>(r),
        "description": Sentence(6..14).fake_with_rng::<String, _>(r),
    })
}

fn events(r: &mut StdRng, user: &str) -> Value {
    let kind = pick(
        r,
        &[
            "page_view",
            "click",
            "search",
            "login",
            "logout",
            "signup",
            "purchase",
        ],
    );
    let path = format!(
        "/{}/{}",
        Word().fake_with_rng::<String, _>(r),
        Word().fake_with_rng::<String, _>(r)
    );
    json!({
        "kind": kind,
        "at": timestamp(r),
        "user": user,
        "session": format!("{:016x}", r.random::<u64>()),
        "properties": {
            "path": path,
            "referrer": format!("https://{}.{}/", Username().fake_with_rng::<String, _>(r),
                                DomainSuffix().fake_with_rng::<String, _>(r)),
            "ip": IPv4().fake_with_rng::<String, _>(r),
            "user_agent": UserAgent().fake_with_rng::<String, _>(r),
            "duration_ms": r.random_range(5..30_000),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_records() {
        for table in ["users", "orders", "products", "events", "notes"] {
            let a = Generator::new(table, 42, 1000, false);
            let b = Generator::new(table, 42, 1000, false);
            let first: Vec<Generated> = (0..100).map(|n| a.record(n)).collect();
            let again: Vec<Generated> = (0..100).map(|n| b.record(n)).collect();
            assert_eq!(first, again, "{table}");
            // Built in another order, record 7 is still record 7.
            assert_eq!(b.record(7), first[7]);
            assert!(first
                .iter()
                .enumerate()
                .all(|(n, g)| a.key(n as u64) == g.shard_key));
            let other = Generator::new(table, 43, 1000, false);
            assert_ne!(other.record(0), first[0], "{table}");
        }
    }

    #[test]
    fn records_have_the_table_shape() {
        let g = Generator::new("orders", 1, 10, false).record(5);
        assert_eq!(g.id, "orders_5");
        assert!(g.shard_key.starts_with("user_"));
        assert_eq!(g.data["user"], Value::String(g.shard_key.clone()));
        let items = g.data["items"].as_array().unwrap();
        assert!(!items.is_empty());
        for field in ["total", "currency", "status"] {
            assert!(g.data.get(field).is_some(), "{field}: {}", g.data);
        }
        let u = Generator::new("users", 1, 10, true).record(0);
        assert!(u.shard_key.parse::<u64>().unwrap() < 10);
        assert!(u.data["email"].as_str().unwrap().contains('@'));
    }
}
