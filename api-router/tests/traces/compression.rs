//! `OTEL_EXPORTER_OTLP_COMPRESSION=gzip`: every export leaves gzipped, and decodes into
//! the request's spans.

use super::{client, is_server, traced_gateway, traceresponse, user, ARRIVAL};
use test_support::otlp_receiver::Receiver;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_exports_arrive_compressed_and_decode() {
    // Arrange
    let receiver = Receiver::start();
    let bench = traced_gateway(&receiver, &[("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")]).await;

    // Act: one sampled write.
    let res = client()
        .post(bench.url("/api/write"))
        .header("x-shard-key", "user_70")
        .json(&user(70))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "write: {}", res.status());
    let (trace, span, _) = traceresponse(&res);

    // Assert: its server span arrived, decoded, and every export was gzipped.
    let server = receiver
        .span(ARRIVAL, |s| is_server(s) && s.trace_id() == trace)
        .await;
    assert_eq!(server.span_id(), span);
    let encodings = receiver.encodings();
    assert!(!encodings.is_empty());
    assert!(
        encodings.iter().all(|e| e == "gzip"),
        "exports' Content-Encoding: {encodings:?}"
    );
}
