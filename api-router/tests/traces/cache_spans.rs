//! The cache in a request's trace: a read served from Redis shows its `cache lookup` span
//! under the read's operation span, with `shardgate.cache.hit=true`; a write shows the
//! `cache install` that told Redis its new version before it was acknowledged.

use std::time::{Duration, Instant};

use test_app::wrk::Bench;

use super::receiver::Receiver;
use super::{client, traced_gateway, traceresponse, user, ARRIVAL};

const CALLER_SPAN: &str = "c4c4e0000000beef";

/// A traced gateway with the cache on, under Redis keys of its own.
async fn cached_gateway(receiver: &Receiver, name: &str) -> Bench {
    let prefix = format!("sgtrace-{name}-{}", std::process::id());
    let env = [
        ("RUST_LOG", "warn,api_router::startup=info"),
        ("SHARDGATE__CACHE__ENABLED", "true"),
        ("SHARDGATE__CACHE__PREFIX", prefix.as_str()),
    ];
    traced_gateway(receiver, &env).await
}

/// Writes user `n`'s record, then reads it until the cache serves it, the `i`-th read
/// under the trace `trace(i)` names when it names one; the trace of the read it served.
async fn read_until_a_hit(
    http: &reqwest::Client,
    bench: &Bench,
    n: u32,
    trace: impl Fn(u32) -> Option<String>,
) -> Option<String> {
    let key = format!("user_{n}");
    let res = http
        .post(bench.url("/api/write"))
        .header("x-shard-key", key.as_str())
        .json(&user(n))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "write: {}", res.status());
    let deadline = Instant::now() + Duration::from_secs(10);
    for i in 1.. {
        let mut read = http
            .get(bench.url(&format!("/api/read?table=users&id=rec_{n}")))
            .header("x-shard-key", key.as_str());
        let traced = trace(i);
        if let Some(trace) = &traced {
            read = read.header("traceparent", format!("00-{trace}-{CALLER_SPAN}-01"));
        }
        let res = read.send().await.unwrap();
        // 404 until the replica that serves it has the write.
        assert!(
            [200, 404].contains(&res.status().as_u16()),
            "{}",
            res.status()
        );
        if let Some(trace) = &traced {
            assert_eq!(&traceresponse(&res).0, trace);
        }
        if res.headers().get("x-cache").is_some_and(|v| v == "hit") {
            return traced;
        }
        assert!(Instant::now() < deadline, "no read was a cache hit");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_read_shows_its_cache_lookup_as_a_hit() {
    // Arrange: a gateway with the cache on.
    let receiver = Receiver::start();
    let bench = cached_gateway(&receiver, "r").await;

    // Act: a record written, then read under traces of their own until one is served
    // from the cache.
    let trace = read_until_a_hit(&client(), &bench, 81, |i| Some(format!("cac4e{i:027x}")))
        .await
        .expect("a traced read");

    // Assert: the read's operation span holds a cache lookup that hit.
    let spans = receiver
        .until(ARRIVAL, |spans| {
            let names: Vec<&str> = spans
                .iter()
                .filter(|s| s.trace_id() == trace)
                .map(|s| s.span.name.as_str())
                .collect();
            names.contains(&"read") && names.contains(&"cache lookup")
        })
        .await;
    let of_trace: Vec<_> = spans.iter().filter(|s| s.trace_id() == trace).collect();
    let read = of_trace.iter().find(|s| s.span.name == "read").unwrap();
    let lookup = of_trace
        .iter()
        .find(|s| s.span.name == "cache lookup")
        .unwrap();
    assert_eq!(lookup.parent_span_id(), read.span_id(), "{lookup:?}");
    assert_eq!(
        lookup.attribute("shardgate.cache.hit").as_deref(),
        Some("true")
    );
    assert_eq!(
        lookup.attribute("shardgate.cache.outcome").as_deref(),
        Some("hit")
    );
    assert_eq!(lookup.attribute("db.system.name").as_deref(), Some("redis"));
    assert_eq!(lookup.span.kind, 3, "a trip to Redis is a client span");
    assert_eq!(lookup.attribute("shardgate.cache.bypass_reason"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_shows_the_cache_install_before_its_acknowledgement() {
    // Arrange: a gateway with the cache on, and answering from it (Redis connected):
    // until then a write cannot tell Redis and raises the shard's epoch instead.
    let receiver = Receiver::start();
    let bench = cached_gateway(&receiver, "w").await;
    let http = client();
    read_until_a_hit(&http, &bench, 83, |_| None).await;

    // Act: a sampled write.
    let trace = "cac4e1e0000000000000000000000082";
    let res = http
        .post(bench.url("/api/write"))
        .header("x-shard-key", "user_82")
        .header("traceparent", format!("00-{trace}-{CALLER_SPAN}-01"))
        .json(&user(82))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "write: {}", res.status());

    // Assert: its operation span holds a cache install that installed, ended before
    // the server span did (the answer waits for it).
    let spans = receiver
        .until(ARRIVAL, |spans| {
            let names: Vec<&str> = spans
                .iter()
                .filter(|s| s.trace_id() == trace)
                .map(|s| s.span.name.as_str())
                .collect();
            names.contains(&"write") && names.contains(&"cache install")
        })
        .await;
    let of_trace: Vec<_> = spans.iter().filter(|s| s.trace_id() == trace).collect();
    let names: Vec<&str> = of_trace.iter().map(|s| s.span.name.as_str()).collect();
    let write = of_trace.iter().find(|s| s.span.name == "write").unwrap();
    let install = of_trace
        .iter()
        .find(|s| s.span.name == "cache install")
        .unwrap();
    assert_eq!(install.parent_span_id(), write.span_id(), "{names:?}");
    // Installed; or, when Redis did not answer within `cache.timeout_ms` (a loaded
    // machine), the shard's epoch raised instead: either way acknowledged, and named.
    let outcome = install.attribute("shardgate.cache.outcome");
    assert!(
        matches!(outcome.as_deref(), Some("installed" | "epoch raised")),
        "{outcome:?}"
    );
    assert_eq!(
        install.attribute("db.system.name").as_deref(),
        Some("redis")
    );
    assert_eq!(install.span.kind, 3, "a trip to Redis is a client span");
    assert!(install.span.end_time_unix_nano <= write.span.end_time_unix_nano);
}
