//! What the access check and the fair limits add to one request, in-process (no HTTP,
//! no database): the numbers behind the end-to-end CPU figures of docs/BENCHMARKS.md,
//! which are too close to their noise to show a few hundred nanoseconds.
//!
//! - `admit/anonymous`: no key exists, a loopback client (protected mode).
//! - `admit/key`: `Authorization: Bearer` read, the key hashed (SHA-256) and looked up
//!   among 100 live keys, its scope checked.
//! - `limits/lookup`: the key's limiter found (its effective limits resolved).
//! - `limits/rate`: one request taken from its GCRA bucket and the two `RateLimit`
//!   headers set on an answer.
//! - `limits/permit`: a concurrency permit on one shard taken and given back.
//!
//! Run with `cargo bench -p api-router --bench access`.

use std::hint::black_box;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header::{HeaderMap, HeaderValue};
use api_router::access::Access;
use api_router::limits::{Effective, KeyLimiter, Limits, RateCheck, RatePolicy};
use api_router::server::settings::LimitsSettings;
use control_plane::keys::{ApiKey, KeyLimits, KeyRing, KeyTable, Scope, Scopes, Secret};
use criterion::{criterion_group, criterion_main, Criterion};
use futures_util::FutureExt;
use shard_manager::ShardId;

fn key(i: usize, limits: KeyLimits) -> ApiKey {
    ApiKey {
        name: format!("key-{i}"),
        scopes: Scopes::parse("read,write").unwrap(),
        tables: None,
        limits,
    }
}

fn access(c: &mut Criterion) {
    let peer: Option<SocketAddr> = "127.0.0.1:50000".parse().ok();
    let limits = Arc::new(Limits::new(&LimitsSettings::default()));
    let anonymous = Access {
        ring: Arc::new(KeyRing::with(KeyTable::new())),
        protected_mode: true,
        limits: limits.clone(),
    };
    c.bench_function("admit/anonymous", |b| {
        b.iter(|| anonymous.admit(Scope::Read, black_box(peer), None))
    });
    let secrets: Vec<Secret> = (0..100).map(|_| Secret::generate()).collect();
    let table: KeyTable = secrets
        .iter()
        .enumerate()
        .map(|(i, s)| (s.hash(), Arc::new(key(i, KeyLimits::default()))))
        .collect();
    let keyed = Access {
        ring: Arc::new(KeyRing::with(table)),
        protected_mode: true,
        limits,
    };
    let header = HeaderValue::from_str(&format!("Bearer {}", secrets[7].expose())).unwrap();
    c.bench_function("admit/key", |b| {
        b.iter(|| keyed.admit(Scope::Read, black_box(peer), Some(black_box(&header))))
    });
}

fn limits(c: &mut Criterion) {
    let settings = LimitsSettings {
        rate_per_sec: 1000,
        concurrency_per_shard: 8,
        ..LimitsSettings::default()
    };
    let limits = Limits::new(&settings);
    let keys: Vec<ApiKey> = (0..100).map(|i| key(i, KeyLimits::default())).collect();
    for k in &keys {
        limits.for_key(k);
    }
    c.bench_function("limits/lookup", |b| {
        b.iter(|| limits.for_key(black_box(&keys[7])))
    });
    // A rate no benchmark loop reaches: every check takes the allowed path.
    let never = NonZeroU32::MAX;
    let limiter = KeyLimiter::new(
        "key-7",
        Effective {
            rate: Some(RatePolicy {
                rate: never,
                burst: never,
                own: true,
            }),
            concurrency: NonZeroU32::new(8),
        },
        Duration::from_millis(50),
        Arc::default(),
    );
    let mut answer = HeaderMap::new();
    c.bench_function("limits/rate", |b| {
        b.iter(|| match limiter.check_rate() {
            RateCheck::Allowed(headers) => headers.apply(&mut answer),
            other => panic!("{other:?}"),
        })
    });
    c.bench_function("limits/permit", |b| {
        b.iter(|| {
            let permits = limiter.enter([ShardId(1)]).now_or_never();
            black_box(permits)
        })
    });
}

criterion_group!(benches, access, limits);
criterion_main!(benches);
