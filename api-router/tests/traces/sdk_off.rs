//! The standard switches that turn export off are honoured: with `OTEL_SDK_DISABLED=true`
//! or `OTEL_TRACES_EXPORTER=none`, a gateway whose environment names a collector sends
//! it nothing, however many sampled requests it serves; with `OTEL_SDK_DISABLED=false`
//! the same gateway exports (so the receiver would have seen spans had any been sent).

use std::time::Duration;

use super::{client, receiver::Receiver, traced_gateway, user, ARRIVAL, CALLER_SPAN};

/// Sampled writes through a gateway with `switch` set; how many spans reached a
/// collector its environment names, a second after the last answer and after it stopped
/// (which flushes what is queued).
async fn spans_received(switch: (&str, &str), first: u32) -> usize {
    let receiver = Receiver::start();
    let mut bench = traced_gateway(&receiver, &[switch]).await;
    let http = client();
    for n in first..first + 5 {
        let trace = format!("{:032x}", 0x5d0ff_u128 * 1000 + u128::from(n));
        let res = http
            .post(bench.url("/api/write"))
            .header("x-shard-key", format!("user_{n}"))
            .header("traceparent", format!("00-{trace}-{CALLER_SPAN}-01"))
            .json(&user(n))
            .send()
            .await
            .unwrap();
        assert!(
            res.status().is_success(),
            "{switch:?}: write {}",
            res.status()
        );
    }
    if switch.1 == "false" {
        receiver.span(ARRIVAL, |_| true).await;
    } else {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    bench.gateway.terminate();
    let (status, _) = bench.gateway.exit_within(Duration::from_secs(20)).await;
    assert!(status.success(), "{switch:?}: {status}");
    receiver.received().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_disabled_or_no_exporter_sends_the_collector_nothing() {
    assert_eq!(spans_received(("OTEL_SDK_DISABLED", "true"), 7100).await, 0);
    assert_eq!(
        spans_received(("OTEL_TRACES_EXPORTER", "none"), 7200).await,
        0
    );
    assert!(spans_received(("OTEL_SDK_DISABLED", "false"), 7300).await > 0);
}
