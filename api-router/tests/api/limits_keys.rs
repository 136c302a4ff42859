//! Fair limits per API key against the real gateway and metadata database: a key over
//! its rate gets 429 with `Retry-After` and the `RateLimit` headers while another key
//! goes on being served; anonymous callers are not limited; a key's own limits, changed
//! in the metadata database, apply without a restart; refusals are counted per key in
//! `/metrics`. The per-shard concurrency cap: [`concurrency`].

mod concurrency;

use std::time::{Duration, Instant};

use control_plane::keys::{store, KeyLimits, KeyName, LimitArgs, NewKey, Scopes};
use control_plane::map::meta;
use reqwest::Response;
use serde_json::Value;
use test_app::{assert_problem, spawn_app_with, TestApp};

/// Stores a key with `limits`, as `shard-admin keys create` does; its secret.
pub async fn create_key(app: &TestApp, name: &str, scopes: &str, limits: KeyLimits) -> String {
    let key = NewKey {
        name: KeyName::parse(name).unwrap(),
        scopes: Scopes::parse(scopes).unwrap(),
        tables: None,
        limits,
    };
    let mut meta = meta::connect(&app.settings.cluster).await.unwrap();
    let secret = store::create(&mut meta.client, &key, "test").await.unwrap();
    secret.expose().to_owned()
}

/// `shard-admin keys limit NAME --rate ... --burst ... --concurrency ...`.
pub async fn set_limits(app: &TestApp, name: &str, args: LimitArgs) {
    let mut meta = meta::connect(&app.settings.cluster).await.unwrap();
    store::set_limits(&mut meta.client, &KeyName::parse(name).unwrap(), &args)
        .await
        .expect("keys limit");
}

/// What `keys limit` is given: `--rate`, `--burst`, `--concurrency`.
pub fn args(rate: &str, burst: &str, concurrency: &str) -> LimitArgs {
    LimitArgs {
        rate: Some(rate.into()),
        burst: Some(burst.into()),
        concurrency: Some(concurrency.into()),
    }
}

/// Limits as the command line gives them (`keys create --rate ...`).
pub fn limits(rate: &str, burst: &str, concurrency: &str) -> KeyLimits {
    args(rate, burst, concurrency)
        .apply(KeyLimits::default())
        .unwrap()
}

/// Waits until the gateway knows `key`, without spending its rate: a route whose scope
/// the key lacks answers 403 once the key is known (401 before), and the scope is
/// checked before the rate.
pub async fn await_known(app: &TestApp, key: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let status = app
            .client
            .get(app.url("/api/shards"))
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
            .status();
        if status == 403 {
            return;
        }
        // 200 while no key is loaded (loopback, protected mode), 401 until this one is.
        assert!([200, 401].contains(&status.as_u16()), "{status}");
        assert!(Instant::now() < deadline, "the gateway never took the key");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A keyed list (one shard, no record needed) with `key` (none: anonymous).
async fn list(app: &TestApp, key: Option<&str>) -> Response {
    let mut req = app
        .client
        .get(app.url("/api/read?table=users"))
        .header("x-shard-key", "tenant-1");
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    req.send().await.unwrap()
}

fn header(res: &Response, name: &str) -> Option<String> {
    res.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn a_key_over_its_rate_gets_429_with_retry_after_and_ratelimit_headers_while_another_key_is_served(
) {
    // Every key: 1 request per second, 5 at once.
    let app = spawn_app_with(|s| {
        s.limits.rate_per_sec = 1;
        s.limits.burst = 5;
    })
    .await;
    // No key yet: loopback clients are served without one, and never limited.
    for _ in 0..10 {
        let res = list(&app, None).await;
        assert_eq!(res.status(), 200);
        assert_eq!(header(&res, "ratelimit"), None);
    }
    let hot = create_key(&app, "hot", "read", KeyLimits::default()).await;
    let calm = create_key(&app, "calm", "read", KeyLimits::default()).await;
    let ops = create_key(
        &app,
        "ops",
        "metrics",
        limits("unlimited", "default", "default"),
    )
    .await;
    for key in [&hot, &calm, &ops] {
        await_known(&app, key).await;
    }

    // Act: 15 requests of one key, as fast as they go.
    let mut answers = Vec::new();
    for _ in 0..15 {
        answers.push(list(&app, Some(&hot)).await);
    }

    // Assert: the burst passes, then 429s (a slow machine may let one more in per second).
    let statuses: Vec<u16> = answers.iter().map(|r| r.status().as_u16()).collect();
    assert!(
        statuses[..5].iter().all(|s| *s == 200),
        "the burst: {statuses:?}"
    );
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert!(refused >= 5, "{statuses:?}");
    assert!(
        statuses.iter().all(|s| [200, 429].contains(s)),
        "{statuses:?}"
    );
    assert_eq!(
        header(&answers[0], "ratelimit-policy").as_deref(),
        Some("\"default\";q=5;w=5")
    );
    assert_eq!(
        header(&answers[0], "ratelimit").as_deref(),
        Some("\"default\";r=4;t=1")
    );
    let limited = answers
        .into_iter()
        .rev()
        .find(|r| r.status() == 429)
        .unwrap();
    assert_eq!(header(&limited, "retry-after").as_deref(), Some("1"));
    assert_eq!(
        header(&limited, "ratelimit-policy").as_deref(),
        Some("\"default\";q=5;w=5")
    );
    let state = header(&limited, "ratelimit").unwrap();
    assert!(
        state.starts_with("\"default\";r=0;t=")
            && (5..=6).contains(&state[16..].parse::<u32>().unwrap()),
        "{state}"
    );
    let problem: Value = assert_problem(limited, 429).await;
    assert_eq!(problem["type"], "urn:shardgate:problem:rate-limited");
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("\"hot\"") && detail.contains("rate limit of 1 per second (burst 5)"),
        "{detail}"
    );

    // Another key has its own bucket: its whole burst is served.
    for remaining in (0..5).rev() {
        let res = list(&app, Some(&calm)).await;
        assert_eq!(res.status(), 200, "calm is not limited by hot");
        let state = header(&res, "ratelimit").unwrap();
        assert!(
            state.starts_with(&format!("\"default\";r={remaining};")),
            "{state}"
        );
    }

    // /metrics counts the refusals by key (ops has its own rate: unlimited).
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth(&ops)
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
    assert_eq!(
        header(&metrics, "ratelimit"),
        None,
        "an unlimited key gets none"
    );
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains(&format!(
            "shardgate_limited_requests_total{{key=\"hot\",limit=\"rate\"}} {refused}"
        )),
        "{text}"
    );
    assert!(
        text.contains("shardgate_limited_requests_total{key=\"calm\",limit=\"rate\"} 0"),
        "{text}"
    );
}

/// Sends requests with `key` until `done` holds for an answer (3 s at most); how long
/// after `since` that answer came.
async fn until(
    app: &TestApp,
    key: &str,
    since: Instant,
    done: impl Fn(&Response) -> bool,
) -> Duration {
    loop {
        let res = list(app, Some(key)).await;
        if done(&res) {
            return since.elapsed();
        }
        assert!(
            res.status() == 200 || res.status() == 429,
            "{}",
            res.status()
        );
        assert!(since.elapsed() < Duration::from_secs(3), "never applied");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_keys_own_limits_changed_in_the_metadata_database_apply_without_restart() {
    // No default limits.
    let app = spawn_app_with(|_| {}).await;
    let tenant = create_key(&app, "tenant", "read", KeyLimits::default()).await;
    await_known(&app, &tenant).await;
    for _ in 0..10 {
        let res = list(&app, Some(&tenant)).await;
        assert_eq!(res.status(), 200);
        assert_eq!(
            header(&res, "ratelimit-policy"),
            None,
            "no limit, no headers"
        );
    }

    // `keys limit tenant --rate 1 --burst 2`: its own policy, within a second.
    set_limits(&app, "tenant", args("1", "2", "default")).await;
    let committed = Instant::now();
    let took = until(&app, &tenant, committed, |res| {
        header(res, "ratelimit-policy").as_deref() == Some("\"key\";q=2;w=2")
    })
    .await;
    eprintln!(
        "own limit applied {} ms after the change committed",
        took.as_millis()
    );
    assert!(took < Duration::from_secs(1), "{took:?}");
    let refused = list(&app, Some(&tenant)).await;
    let refused = match refused.status().as_u16() {
        429 => refused,
        _ => list(&app, Some(&tenant)).await,
    };
    assert_eq!(
        refused.status(),
        429,
        "a burst of 2 is spent by three requests"
    );
    assert!(header(&refused, "retry-after").is_some());

    // Back to unlimited: served again, no headers, within a second.
    set_limits(&app, "tenant", args("unlimited", "default", "default")).await;
    let committed = Instant::now();
    let took = until(&app, &tenant, committed, |res| {
        res.status() == 200 && header(res, "ratelimit").is_none()
    })
    .await;
    assert!(took < Duration::from_secs(1), "{took:?}");
    for _ in 0..5 {
        assert_eq!(list(&app, Some(&tenant)).await.status(), 200);
    }
}
