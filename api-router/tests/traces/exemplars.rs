//! Exemplars on `/metrics`: a scraper that asks for OpenMetrics (as Prometheus does with
//! exemplar storage on) gets the standard's text, in which the request latency bucket a
//! sampled request fell in names its trace; a request the sampler left out is named
//! nowhere, and a plain scrape gets the 0.0.4 text as ever.

use openmetrics_parser::openmetrics::parse_openmetrics;
use openmetrics_parser::{OpenMetricsValue, Sample};

use super::receiver::Receiver;
use super::{client, traced_gateway, traceresponse, user};

const SAMPLED_TRACE: &str = "7d3efb1b173fecfa8c2bcbc45b5a8b4e";
const UNSAMPLED_TRACE: &str = "1f2b8c9a0d3e4f5061728394a5b6c7d8";
const CALLER_SPAN: &str = "53995c3f42cd8ad8";
/// What Prometheus 2.x sends with exemplar storage on.
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sampled_request_is_the_exemplar_of_its_latency_bucket() {
    // Arrange
    let receiver = Receiver::start();
    let bench = traced_gateway(&receiver, &[("RUST_LOG", "warn,api_router::startup=info")]).await;
    let http = client();

    // Act: a write the caller samples, and one it asks not to.
    for (n, trace, flags) in [(71, SAMPLED_TRACE, "01"), (72, UNSAMPLED_TRACE, "00")] {
        let res = http
            .post(bench.url("/api/write"))
            .header("x-shard-key", format!("user_{n}"))
            .header("traceparent", format!("00-{trace}-{CALLER_SPAN}-{flags}"))
            .json(&user(n))
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "write: {}", res.status());
        assert_eq!(
            traceresponse(&res).2,
            flags,
            "the caller's flag is followed"
        );
    }
    let res = http
        .get(bench.url("/metrics"))
        .header("accept", PROMETHEUS_ACCEPT)
        .send()
        .await
        .unwrap();

    // Assert: OpenMetrics, whole.
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let text = res.text().await.unwrap();
    let parsed = parse_openmetrics(&text).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
    assert!(text.ends_with("# EOF\n"));
    assert!(!text.contains(UNSAMPLED_TRACE), "{text}");

    // The sampled write is the exemplar of the bucket its latency fell in, on the
    // write endpoint's series, and of no other.
    let latency = &parsed.families["shardgate_http_request_duration_seconds"];
    let label = |sample: &Sample<OpenMetricsValue>, name: &str| {
        let labels = sample.get_labelset().unwrap();
        labels.get_label_value(name).unwrap().to_owned()
    };
    let mut found = Vec::new();
    for sample in latency.iter_samples() {
        let OpenMetricsValue::Histogram(histogram) = &sample.value else {
            panic!("{:?}", sample.value);
        };
        let mut lower = 0.0;
        for bucket in &histogram.buckets {
            if let Some(exemplar) = &bucket.exemplar {
                if exemplar.labels.get("trace_id").map(String::as_str) == Some(SAMPLED_TRACE) {
                    assert!(
                        lower < exemplar.id && exemplar.id <= bucket.upper_bound,
                        "{} s in the bucket ({lower}, {}]",
                        exemplar.id,
                        bucket.upper_bound
                    );
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .as_secs_f64();
                    let at = exemplar.timestamp.expect("a timestamp");
                    assert!((now - at).abs() < 60.0, "exemplar at {at}, now {now}");
                    found.push((label(sample, "endpoint"), label(sample, "method")));
                }
            }
            lower = bucket.upper_bound;
        }
    }
    assert_eq!(
        found,
        [("/api/write".to_owned(), "POST".to_owned())],
        "{text}"
    );

    // A plain scrape gets the 0.0.4 text, without exemplars.
    let res = http.get(bench.url("/metrics")).send().await.unwrap();
    assert_eq!(
        res.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let plain = res.text().await.unwrap();
    assert!(!plain.contains(SAMPLED_TRACE), "{plain}");
    assert!(!plain.contains("# EOF"), "{plain}");
}
