//! Every gateway shares one cache key space: a write through any gateway fixes the
//! entry every other gateway reads (at once in Redis; in another gateway's memory tier
//! once Redis's invalidation arrived, within a second at most), and a writer that cannot reach Redis moves the
//! shard's epoch on the shard, so the others stop serving the old entry within about
//! one health check. If the shard cannot take that raise either, the write is answered
//! 503 `cache-not-told`, and the writer's gateway raises the epoch once it can.

use std::time::{Duration, Instant};

use api_router::startup::Application;
use serde_json::{json, Value};
use test_app::{json_of, spawn_app_with, TestApp};

/// Another gateway on the same databases, with its settings adjusted.
async fn gateway(
    app: &TestApp,
    adjust: impl FnOnce(&mut api_router::server::settings::Settings),
) -> (String, actix_web::dev::ServerHandle) {
    let mut settings = app.settings.clone();
    adjust(&mut settings);
    let built = Application::build(settings).await.expect("gateway");
    let url = format!("http://127.0.0.1:{}", built.port());
    let handle = built.handle();
    tokio::spawn(built.run_until_stopped());
    (url, handle)
}

async fn write(client: &reqwest::Client, base: &str, key: &str, id: &str, v: i64) -> (i64, String) {
    let res = resend_on_503(|| {
        client
            .post(format!("{base}/api/write"))
            .header("x-shard-key", key)
            .json(&json!({"table": "users", "id": id, "data": {"v": v}}))
    })
    .await;
    let status = res.status();
    let token = res.headers().get("x-shard-lsn").cloned();
    let body: Value = res.json().await.unwrap();
    assert!(status.is_success(), "{status} {body}");
    let token = token.expect("x-shard-lsn").to_str().unwrap().to_owned();
    (body["version"].as_i64().unwrap(), token)
}

/// Sends the request, and again (up to 20 times, 50 ms apart) while the answer is a
/// 503: as a client does with a gateway that is saturated under load (a 503 is not an
/// acknowledgement, so the promises under test are untouched).
async fn resend_on_503(request: impl Fn() -> reqwest::RequestBuilder) -> reqwest::Response {
    for _ in 0..20 {
        let res = request().send().await.unwrap();
        if res.status().as_u16() != 503 {
            return res;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    request().send().await.unwrap()
}

/// (x-cache, version) of an eventual read, or a token read with `token`.
async fn read(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    id: &str,
    token: Option<&str>,
) -> (String, i64) {
    let res = resend_on_503(|| {
        let req = client
            .get(format!("{base}/api/read?table=users&id={id}"))
            .header("x-shard-key", key);
        match token {
            Some(t) => req.header("x-min-lsn", t),
            None => req,
        }
    })
    .await;
    answer(res).await.expect("the record")
}

/// A read's x-cache and version, or None for a 404 (a replica that has not replayed
/// the write yet).
async fn answer(res: reqwest::Response) -> Option<(String, i64)> {
    if res.status().as_u16() == 404 {
        return None;
    }
    let status = res.status();
    if status.as_u16() != 200 {
        panic!("{status} {}", res.text().await.unwrap_or_default());
    }
    let cache = res
        .headers()
        .get("x-cache")
        .map_or("-".into(), |v| v.to_str().unwrap().to_owned());
    let body: Value = res.json().await.unwrap();
    Some((cache, body["record"]["version"].as_i64().unwrap()))
}

fn cached(s: &mut api_router::server::settings::Settings) {
    s.cluster.cache.enabled = true;
    s.cluster.cache.timeout_ms = 100;
    s.cluster.cache.prefix = format!("sgtest-{}", uuid::Uuid::new_v4().simple());
}

#[tokio::test]
async fn a_write_through_any_gateway_is_what_every_other_gateway_s_cache_serves() {
    // Redis alone (no memory tier): exact at once.
    let seen = writes_read_through_other_gateways(0).await;
    assert_eq!(
        seen.stale, 0,
        "Redis hits older than the acknowledged write: {seen:?}"
    );
    assert_eq!(seen.late, 0, "{seen:?}");
}

#[tokio::test]
async fn with_memory_tiers_another_gateway_s_write_is_served_once_its_invalidation_arrived() {
    // Memory tiers on: a hit may be older only until Redis's invalidation reaches the
    // reader's tier (milliseconds), never past the bound.
    let seen = writes_read_through_other_gateways(10_000).await;
    assert_eq!(seen.late, 0, "stale past the bound: {seen:?}");
    eprintln!("memory tiers, reads right after another gateway's acknowledgement: {seen:?}");
}

/// What the reads after each write saw.
#[derive(Debug, Default)]
struct Seen {
    /// Eventual reads answered from a cache.
    hits: usize,
    /// Of those, older than the write acknowledged just before.
    stale: usize,
    /// Stale hits whose gateway still served the older version a second later.
    late: usize,
}

/// Three gateways (each with `memory_entries` in its memory tier) take turns: one
/// writes, the next reads (eventual), the third reads with the write's token.
async fn writes_read_through_other_gateways(memory_entries: usize) -> Seen {
    let app = spawn_app_with(|s| {
        cached(s);
        s.cluster.cache.memory_entries = memory_entries;
    })
    .await;
    let (b, hb) = gateway(&app, |_| {}).await;
    let (c, hc) = gateway(&app, |_| {}).await;
    tokio::time::sleep(Duration::from_millis(700)).await; // every gateway knows the epochs
    let bases = [app.address.clone(), b, c];
    let mut seen = Seen::default();
    let mut token_misses = 0;
    for i in 0..1000usize {
        let id = format!("r{}", i % 10);
        let (writer, reader, token_reader) =
            (&bases[i % 3], &bases[(i + 1) % 3], &bases[(i + 2) % 3]);
        let (version, token) = write(&app.client, writer, "shared-cache", &id, i as i64).await;
        let acked = Instant::now();
        let (cache, got) = read(&app.client, reader, "shared-cache", &id, None).await;
        if cache == "hit" {
            seen.hits += 1;
            if got < version {
                seen.stale += 1;
                tokio::time::sleep(Duration::from_secs(1).saturating_sub(acked.elapsed())).await;
                let (_, again) = read(&app.client, reader, "shared-cache", &id, None).await;
                if again < version {
                    seen.late += 1;
                }
            }
        }
        let (_, got) = read(&app.client, token_reader, "shared-cache", &id, Some(&token)).await;
        if got < version {
            token_misses += 1;
        }
    }
    assert_eq!(
        token_misses, 0,
        "token reads older than their write: {seen:?}"
    );
    assert!(
        seen.hits > 500,
        "the test must exercise the cache: {seen:?}"
    );
    std::mem::drop((hb.stop(false), hc.stop(false)));
    seen
}

/// An eventual read's x-cache and version, or None when it found nothing (a replica
/// that has not replayed the write yet answers 404).
async fn read_if_found(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    id: &str,
) -> Option<(String, i64)> {
    let res = client
        .get(format!("{base}/api/read?table=users&id={id}"))
        .header("x-shard-key", key)
        .send()
        .await
        .unwrap();
    answer(res).await
}

/// Gateway `reader` holds version `v1` of the record in its cache (a read of it is a
/// hit).
async fn cached_on(app: &TestApp, reader: &str, key: &str, id: &str, v1: i64) {
    // An eventual read may reach a replica that has not replayed v1 yet (404), and a
    // read from a server behind the gateway's cache fence installs nothing: read until
    // a hit, which must be v1 (under load, a gateway whose epoch reading went stale
    // bypasses its cache for a while).
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some((cache, version)) = read_if_found(&app.client, reader, key, id).await {
            if cache == "hit" {
                assert_eq!(version, v1, "the cached version is the one written");
                return;
            }
        }
        assert!(Instant::now() < deadline, "{reader} never cached v{v1}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What a read through the gateway under test must show before the window closes.
#[derive(Clone, Copy)]
enum Until {
    /// `v2` or newer, hit or not.
    Served,
    /// `v2` or newer as a cache hit: the gateway reads the shard's current keys. An
    /// answer that bypassed the cache proves nothing there: a gateway whose epoch
    /// reading went stale under load bypasses, and once a fresh reading of the same
    /// epoch comes in, serves its entry again.
    Hit,
}

/// Reads through `reader` until it shows `v2` (as `until` says); returns how long that
/// took from `acked`. Fails past `limit`, and if any read afterwards (for 300 ms)
/// returns an older version; the failure lists every answer seen.
async fn until_it_returns(
    app: &TestApp,
    reader: &str,
    (key, id): (&str, &str),
    (v2, until): (i64, Until),
    acked: Instant,
    limit: Duration,
) -> Duration {
    let mut seen: Vec<(u128, String, i64)> = Vec::new();
    let window = loop {
        // Until v2 shows, a replica that has not replayed the record at all may answer
        // 404 (an eventual read without a token).
        let found = read_if_found(&app.client, reader, key, id).await;
        let (cache, version) = found.unwrap_or(("404".into(), 0));
        let shown = version >= v2 && (matches!(until, Until::Served) || cache == "hit");
        if seen
            .last()
            .is_none_or(|(_, c, v)| (c, *v) != (&cache, version))
        {
            seen.push((acked.elapsed().as_millis(), cache, version));
        }
        if shown {
            break acked.elapsed();
        }
        assert!(
            acked.elapsed() < limit,
            "still v{version} after {limit:?}; answers (ms, x-cache, version): {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    let until = Instant::now() + Duration::from_millis(300);
    while Instant::now() < until {
        let (cache, version) = read(&app.client, reader, key, id, None).await;
        assert!(
            version >= v2,
            "v{version} ({cache}) after v{v2} was shown; answers before (ms, x-cache, version): {seen:?}"
        );
    }
    window
}

#[tokio::test]
async fn a_writer_without_redis_makes_every_gateway_drop_the_old_entry_within_a_check() {
    // Gateway B (the app) caches; gateway A cannot reach Redis at all (nothing listens
    // on that port), so every write it takes raises the shard's cache epoch.
    let b = spawn_app_with(cached).await;
    let (a, ha) = gateway(&b, |s| s.cluster.cache.url = "redis://127.0.0.1:1".into()).await;
    let mut windows = Vec::new();
    const ROUNDS: usize = 20;
    for round in 0..ROUNDS {
        let id = format!("r{round}");
        let (v1, _) = write(&b.client, &b.address, "no-redis", &id, 1).await;
        cached_on(&b, &b.address, "no-redis", &id, v1).await;
        // Rounds would otherwise fall at the same point of B's check cycle: sweep it.
        let interval = b.settings.cluster.replication.check_interval_ms;
        let phase = interval * round as u64 / ROUNDS as u64;
        tokio::time::sleep(Duration::from_millis(phase)).await;
        let (v2, _) = write(&b.client, &a, "no-redis", &id, 2).await;
        let acked = Instant::now();
        let limit = Duration::from_secs(2);
        let until = (v2, Until::Served);
        windows
            .push(until_it_returns(&b, &b.address, ("no-redis", &id), until, acked, limit).await);
    }
    windows.sort();
    let ms = |q: usize| windows[(ROUNDS - 1) * q / 100].as_millis();
    eprintln!(
        "stale window on gateway B after a write acknowledged by a gateway without Redis, {ROUNDS} rounds: min {} ms, median {} ms, p90 {} ms, max {} ms (check interval {} ms)",
        ms(0),
        ms(50),
        ms(90),
        ms(100),
        b.settings.cluster.replication.check_interval_ms
    );
    std::mem::drop(ha.stop(false));
}

#[tokio::test]
async fn a_write_whose_caches_cannot_be_told_is_not_acknowledged_and_the_raise_is_retried() {
    let b = spawn_app_with(cached).await;
    let (a, ha) = gateway(&b, |s| s.cluster.cache.url = "redis://127.0.0.1:1".into()).await;
    let key = "untold";
    let shard = b.shard_of(key).0 as usize;
    let (v1, _) = write(&b.client, &b.address, key, "r", 1).await;
    cached_on(&b, &b.address, key, "r", v1).await;
    // The shard refuses to raise its cache epoch (a real trigger, in the test database).
    let mut primary = b.connect(&b.primary(shard));
    diesel::RunQueryDsl::execute(
        diesel::sql_query(
            "CREATE FUNCTION sgtest_refuse() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$",
        ),
        &mut primary,
    )
    .unwrap();
    let trigger = "CREATE TRIGGER sgtest_refuse BEFORE UPDATE ON shardgate_cache \
                   FOR EACH ROW EXECUTE FUNCTION sgtest_refuse()";
    diesel::RunQueryDsl::execute(diesel::sql_query(trigger), &mut primary).unwrap();

    let res = b
        .client
        .post(format!("{a}/api/write"))
        .header("x-shard-key", key)
        .json(&json!({"table": "users", "id": "r", "data": {"v": 2}}))
        .send()
        .await
        .unwrap();
    let problem = test_app::assert_problem(res, 503).await;
    assert_eq!(problem["type"], "urn:shardgate:problem:cache-not-told");
    assert_eq!(problem["shard"], json!(shard));
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!("shard-{shard} committed the write")),
        "{detail}"
    );
    // B may still serve v1 from its cache, as the answer warned: its next hit is v1
    // (under load a stale epoch reading may make a read bypass first). And the write is
    // committed (a strong read through A, which has no cache to fill).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (cache, version) = read(&b.client, &b.address, key, "r", None).await;
        if cache == "hit" {
            assert_eq!(version, v1, "B's cache was not told of the write");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "B never served its entry: {cache} v{version}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let strong = json_of(
        (b.client)
            .get(format!("{a}/api/read?table=users&id=r&consistency=strong"))
            .header("x-shard-key", key),
    )
    .await;
    assert_eq!(strong["record"]["data"]["v"], json!(2));
    let v2 = strong["record"]["version"].as_i64().unwrap();

    // Once the shard takes the raise again, A's monitor makes it, and B follows.
    diesel::RunQueryDsl::execute(
        diesel::sql_query("DROP TRIGGER sgtest_refuse ON shardgate_cache"),
        &mut primary,
    )
    .unwrap();
    let fixed = Instant::now();
    let window = until_it_returns(
        &b,
        &b.address,
        (key, "r"),
        (v2, Until::Hit),
        fixed,
        Duration::from_secs(5),
    )
    .await;
    eprintln!(
        "after the shard took the owed raise: gateway B served v{v2} from its cache within {} ms",
        window.as_millis()
    );
    std::mem::drop(ha.stop(false));
}
