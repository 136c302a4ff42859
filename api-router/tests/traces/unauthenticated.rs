//! Once a key exists, a caller without a valid one does not decide its request's trace:
//! its `traceparent` says "sampled", yet the gateway's own sampler decides (at a ratio of
//! 0, nothing of it is recorded, so a burst of refused requests fills no queue), and
//! when that request is recorded it is a trace of the gateway's own, linked to the
//! caller's span but never its child. A caller with a valid key is followed as ever.

use std::time::{Duration, Instant};

use control_plane::keys::{store, KeyName, NewKey, Scopes};
use control_plane::map::meta;
use test_app::wrk::Bench;

use super::receiver::Receiver;
use super::{client, is_server, traced_gateway, traceresponse, ARRIVAL};

/// A caller's trace for request `n`: (trace id, span id).
fn caller(n: u32) -> (String, String) {
    (format!("a17{n:029x}"), format!("ca11e4{n:010x}"))
}

fn sampled((trace, span): &(String, String)) -> String {
    format!("00-{trace}-{span}-01")
}

/// Stores a key with the `read` scope in the gateway's metadata database, as
/// `shard-admin keys create` does, and waits until the gateway refuses a keyless read;
/// returns its secret.
async fn read_key(bench: &Bench) -> String {
    let mut conn = meta::connect(&bench.settings)
        .await
        .expect("the test's metadata database");
    let key = NewKey {
        name: KeyName::parse("reader").unwrap(),
        scopes: Scopes::parse("read").unwrap(),
        tables: None,
        limits: Default::default(),
    };
    let secret = store::create(&mut conn.client, &key, "test")
        .await
        .expect("create key");
    let http = client();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let status = read(&http, bench, None, None).await.status().as_u16();
        if status == 401 {
            return secret.expose().to_owned();
        }
        assert!(Instant::now() < deadline, "the key not known within 5 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A point read of a record that does not exist, with `Authorization: Bearer <key>` and
/// `traceparent` when given.
async fn read(
    http: &reqwest::Client,
    bench: &Bench,
    key: Option<&str>,
    traceparent: Option<&str>,
) -> reqwest::Response {
    let mut req = http
        .get(bench.url("/api/read?table=users&id=rec_1"))
        .header("x-shard-key", "user_1");
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    if let Some(traceparent) = traceparent {
        req = req.header("traceparent", traceparent);
    }
    req.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_without_a_valid_key_does_not_decide_that_its_request_is_recorded() {
    // Arrange: new traces never sampled; a key exists.
    let receiver = Receiver::start();
    let bench = traced_gateway(
        &receiver,
        &[
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0"),
        ],
    )
    .await;
    let key = read_key(&bench).await;
    let http = client();
    let wrong = format!("sg_{}", "0".repeat(64));

    // Act: a burst of "sampled" requests without a valid key: none, a wrong one, a
    // malformed header; refused, or to a route that needs no key.
    let mut untrusted = Vec::new();
    for n in 0..60 {
        let parent = caller(n);
        let traceparent = sampled(&parent);
        let res = match n % 4 {
            0 => read(&http, &bench, None, Some(&traceparent)).await,
            1 => read(&http, &bench, Some(&wrong), Some(&traceparent)).await,
            2 => http
                .get(bench.url("/api/read?table=users&id=rec_1"))
                .header("x-shard-key", "user_1")
                .header("authorization", "Basic dXNlcjpwYXNz")
                .header("traceparent", &traceparent)
                .send()
                .await
                .unwrap(),
            _ => http
                .get(bench.url("/api/health/live"))
                .header("traceparent", &traceparent)
                .send()
                .await
                .unwrap(),
        };
        let expected = if n % 4 == 3 { 200 } else { 401 };
        assert_eq!(res.status().as_u16(), expected, "request {n}");
        let (trace, _, flags) = traceresponse(&res);
        assert_ne!(trace, parent.0, "request {n} joined the caller's trace");
        assert_eq!(flags, "00", "request {n} recorded on the caller's word");
        untrusted.push(parent.0);
    }
    // Then one with the key, which the caller's context decides.
    let trusted = caller(1000);
    let res = read(&http, &bench, Some(&key), Some(&sampled(&trusted))).await;
    assert_eq!(res.status().as_u16(), 404);
    let (trace, server_span, flags) = traceresponse(&res);
    assert_eq!((trace.as_str(), flags.as_str()), (trusted.0.as_str(), "01"));

    // Assert: the keyed request arrives under its caller's span; nothing else was
    // recorded (the refused ones ended first, so would have been sent first).
    let exported = receiver
        .span(ARRIVAL, |s| s.trace_id() == trusted.0 && is_server(s))
        .await;
    assert_eq!(exported.span_id(), server_span);
    assert_eq!(exported.parent_span_id(), trusted.1);
    let others: Vec<_> = receiver
        .received()
        .into_iter()
        .filter(|s| s.trace_id() != trusted.0)
        .map(|s| (s.span.name.clone(), s.trace_id(), s.links()))
        .collect();
    assert!(
        others.is_empty(),
        "recorded besides the keyed request: {others:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_without_a_valid_key_is_at_most_a_link_of_a_trace_of_the_gateways_own() {
    // Arrange: every new trace sampled; a key exists.
    let receiver = Receiver::start();
    let bench = traced_gateway(&receiver, &[]).await;
    read_key(&bench).await;
    let http = client();

    // Act: a keyless read under a caller's sampled trace, with its tracestate.
    let parent = caller(1);
    let res = http
        .get(bench.url("/api/read?table=users&id=rec_1"))
        .header("x-shard-key", "user_1")
        .header("traceparent", sampled(&parent))
        .header("tracestate", "caller=1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 401);
    let (trace, server_span, flags) = traceresponse(&res);

    // Assert: a trace of the gateway's own (its sampler recorded it), a root, linked to
    // the caller's span; the caller's tracestate not taken.
    assert_ne!(trace, parent.0);
    assert_eq!(flags, "01");
    let exported = receiver
        .span(ARRIVAL, |s| s.trace_id() == trace && is_server(s))
        .await;
    assert_eq!(exported.span_id(), server_span);
    assert_eq!(
        exported.parent_span_id(),
        "",
        "a root, not the caller's child"
    );
    assert_eq!(
        exported.links(),
        std::slice::from_ref(&parent),
        "linked to the caller's span"
    );
    assert_eq!(exported.span.trace_state, "");
    assert_eq!(exported.span.links[0].trace_state, "");
    assert_eq!(
        exported.attribute("http.response.status_code").as_deref(),
        Some("401")
    );
    assert!(
        receiver.received().iter().all(|s| s.trace_id() != parent.0),
        "nothing in the caller's trace"
    );
}
