//! `/metrics` carries the gateway process's own figures as Prometheus's client
//! libraries name them (`process_*`, from `/proc/self`), with values a live process
//! has, and the whole exposition passes `promtool check metrics`. The gateway runs in
//! the test's process here: its figures are that process's.

use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_parse::{Scrape, Value as Metric};
use test_app::spawn_app;

use crate::metrics_lint::promtool_lint;

#[tokio::test]
async fn metrics_name_the_process_cpu_memory_descriptors_and_start() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let text = crate::metrics_lint::metrics_text(&app).await;

    // Assert: each family once, typed, with a sane value.
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("Prometheus text");
    let value = |name: &str| {
        let samples: Vec<_> = scrape.samples.iter().filter(|s| s.metric == name).collect();
        assert_eq!(samples.len(), 1, "{name} once, unlabelled:\n{text}");
        match samples[0].value {
            Metric::Counter(v) | Metric::Gauge(v) | Metric::Untyped(v) => v,
            ref other => panic!("{name}: {other:?}"),
        }
    };
    for (name, kind) in [
        ("process_cpu_seconds_total", "counter"),
        ("process_resident_memory_bytes", "gauge"),
        ("process_virtual_memory_bytes", "gauge"),
        ("process_open_fds", "gauge"),
        ("process_start_time_seconds", "gauge"),
    ] {
        let family = name.strip_suffix("_total").unwrap_or(name);
        assert!(
            text.lines()
                .any(|l| l == format!("# TYPE {name} {kind}")
                    || l == format!("# TYPE {family} {kind}")),
            "{name} is no {kind}:\n{text}"
        );
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let started = value("process_start_time_seconds");
    assert!(
        started <= now + 1.0 && started > now - 86_400.0,
        "started {started}, now {now}"
    );
    let resident = value("process_resident_memory_bytes");
    assert!(resident > 1_000_000.0, "resident memory {resident} bytes");
    assert!(value("process_virtual_memory_bytes") >= resident);
    let cpu = value("process_cpu_seconds_total");
    assert!(cpu > 0.0, "cpu {cpu} s");
    let fds = value("process_open_fds");
    assert!(fds >= 3.0, "open fds {fds}");
    let max = value("process_max_fds");
    assert!(max >= fds, "max fds {max}, open {fds}");
    if let Some(lint) = promtool_lint(&app).await {
        assert_eq!(lint, "", "promtool check metrics");
    }
}
