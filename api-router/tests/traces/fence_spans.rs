//! The snapshot fence in a read's trace: a list at one cut (`consistency=snapshot`)
//! shows the fence's take and then its release, both inside the request's trace.

use super::receiver::{Received, Receiver};
use super::{client, traced_gateway, traceresponse, ARRIVAL};

const CALLER_SPAN: &str = "fe4ce0000000beef";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_list_shows_the_fence_taken_then_released() {
    let receiver = Receiver::start();
    let bench = traced_gateway(&receiver, &[("RUST_LOG", "warn,api_router::startup=info")]).await;
    let trace = format!("fe4ce{:027x}", std::process::id());
    let res = client()
        .get(bench.url("/api/read?table=users&limit=5&consistency=snapshot"))
        .header("traceparent", format!("00-{trace}-{CALLER_SPAN}-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{:?}", res.text().await);
    assert_eq!(traceresponse(&res).0, trace);

    let is = |s: &Received, name: &str| s.trace_id() == trace && s.span.name == name;
    // Both fence spans, and the request's span (the last to end, so the last to leave).
    let spans = receiver
        .until(ARRIVAL, |spans| {
            spans.iter().any(|s| is(s, "take snapshot fence"))
                && spans.iter().any(|s| is(s, "release snapshot fence"))
                && spans
                    .iter()
                    .any(|s| s.trace_id() == trace && s.parent_span_id() == CALLER_SPAN)
        })
        .await;
    let take: Vec<&Received> = spans
        .iter()
        .filter(|s| is(s, "take snapshot fence"))
        .collect();
    let release: Vec<&Received> = spans
        .iter()
        .filter(|s| is(s, "release snapshot fence"))
        .collect();
    assert_eq!((take.len(), release.len()), (1, 1), "{spans:?}");
    let (take, release) = (take[0], release[0]);
    // Taken, then released: the release starts after the take has ended.
    assert!(
        take.span.end_time_unix_nano <= release.span.start_time_unix_nano,
        "take {take:?}\nrelease {release:?}"
    );
    // Both inside the request: each has a parent in the same trace, which leads up to
    // the caller's span.
    let by_id = |id: String| {
        spans
            .iter()
            .find(|s| s.trace_id() == trace && s.span_id() == id)
    };
    for fence in [take, release] {
        let mut at = fence;
        let mut hops = 0;
        while let Some(parent) = by_id(at.parent_span_id()) {
            at = parent;
            hops += 1;
            assert!(hops < 20, "a loop in the parents");
        }
        assert_eq!(
            at.parent_span_id(),
            CALLER_SPAN,
            "{fence:?} is not under the request"
        );
    }
}
