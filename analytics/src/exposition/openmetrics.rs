//! The OpenMetrics 1.0 text encoding of a list of families, with exemplars on the
//! buckets of one histogram family (the request latencies).
//!
//! The families are the same as the 0.0.4 text's; what changes is the spelling the
//! standard asks for: a counter's family is named without `_total` and its sample with
//! it; `HELP` escapes quotes too; a bucket's `le` is a canonical
//! number (`1.0`, not `1`); and the text ends with `# EOF`. A bucket's exemplar follows
//! its count as `# {trace_id="..."} <seconds> <unix time>`.

use std::fmt::Write;

use prometheus::proto::{Metric, MetricFamily, MetricType};

use crate::recording::exemplars::{BucketExemplars, Exemplar};

/// The exemplars of the histogram family `family`: `metrics[i]` for its `i`-th metric.
pub(crate) struct Exemplars<'a> {
    pub(crate) family: &'a str,
    pub(crate) metrics: Vec<&'a BucketExemplars>,
}

impl Exemplars<'_> {
    fn of(&self, family: &str, metric: usize, bucket: usize) -> Option<Exemplar> {
        if family != self.family {
            return None;
        }
        self.metrics.get(metric)?.get(bucket)
    }
}

/// OpenMetrics text of `families`, ending in `# EOF`. Families without a metric are
/// left out, as the 0.0.4 text does.
pub(crate) fn encode(families: &[MetricFamily], exemplars: &Exemplars<'_>) -> String {
    let mut text = String::new();
    for family in families.iter().filter(|f| !f.get_metric().is_empty()) {
        encode_family(&mut text, family, exemplars);
    }
    text.push_str("# EOF\n");
    text
}

fn encode_family(text: &mut String, family: &MetricFamily, exemplars: &Exemplars<'_>) {
    let kind = family.get_field_type();
    let full = family.name();
    let name = match kind {
        MetricType::COUNTER => full.strip_suffix("_total").unwrap_or(full),
        _ => full,
    };
    let type_name = match kind {
        MetricType::COUNTER => "counter",
        MetricType::GAUGE => "gauge",
        MetricType::HISTOGRAM => "histogram",
        MetricType::SUMMARY => "summary",
        // Nothing here builds untyped families; the 0.0.4 encoder refuses them too.
        MetricType::UNTYPED => return,
    };
    let _ = writeln!(text, "# TYPE {name} {type_name}");
    let _ = writeln!(text, "# HELP {name} {}", escape(family.help()));
    for (index, metric) in family.get_metric().iter().enumerate() {
        match kind {
            MetricType::COUNTER => {
                sample(
                    text,
                    name,
                    "_total",
                    metric,
                    None,
                    metric.get_counter().get_value(),
                );
            }
            MetricType::GAUGE => {
                sample(text, name, "", metric, None, metric.get_gauge().get_value())
            }
            MetricType::SUMMARY => {
                let summary = metric.get_summary();
                for quantile in summary.get_quantile() {
                    let q = canonical(quantile.quantile());
                    let extra = Some(("quantile", q.as_str()));
                    sample(text, name, "", metric, extra, quantile.value());
                }
                sample(text, name, "_sum", metric, None, summary.sample_sum());
                let count = summary.sample_count() as f64;
                sample(text, name, "_count", metric, None, count);
            }
            MetricType::UNTYPED => {}
            MetricType::HISTOGRAM => {
                let histogram = metric.get_histogram();
                let count = histogram.get_sample_count();
                let mut bounds: Vec<(f64, u64)> = histogram
                    .get_bucket()
                    .iter()
                    .map(|b| (b.upper_bound(), b.cumulative_count()))
                    .collect();
                if bounds.last().is_none_or(|(bound, _)| bound.is_finite()) {
                    bounds.push((f64::INFINITY, count));
                }
                for (bucket, (bound, cumulative)) in bounds.into_iter().enumerate() {
                    let le = canonical(bound);
                    let extra = Some(("le", le.as_str()));
                    sample(text, name, "_bucket", metric, extra, cumulative as f64);
                    if let Some(exemplar) = exemplars.of(full, index, bucket) {
                        // Replace the sample's newline with the exemplar and its own.
                        text.pop();
                        let _ = writeln!(
                            text,
                            " # {{trace_id=\"{}\"}} {} {}",
                            exemplar.trace.hex(),
                            number(exemplar.micros as f64 / 1e6),
                            unix_seconds(exemplar.at_ms)
                        );
                    }
                }
                sample(text, name, "_sum", metric, None, histogram.get_sample_sum());
                sample(text, name, "_count", metric, None, count as f64);
            }
        }
    }
}

/// One sample line: `name+suffix{labels[,extra]} value`.
fn sample(
    text: &mut String,
    name: &str,
    suffix: &str,
    metric: &Metric,
    extra: Option<(&str, &str)>,
    value: f64,
) {
    text.push_str(name);
    text.push_str(suffix);
    let labels = metric
        .get_label()
        .iter()
        .map(|pair| (pair.name(), pair.value()))
        .chain(extra);
    let mut first = true;
    for (label, value) in labels {
        text.push(if first { '{' } else { ',' });
        first = false;
        let _ = write!(text, "{label}=\"{}\"", escape(value));
    }
    if !first {
        text.push('}');
    }
    text.push(' ');
    text.push_str(&number(value));
    text.push('\n');
}

/// A label value or help text with `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// A sample value: the shortest decimal that reads back the same, or `+Inf`, `-Inf`,
/// `NaN`.
fn number(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        value.to_string()
    }
}

/// A bucket bound or quantile as a canonical number: integers keep a `.0`.
fn canonical(value: f64) -> String {
    let text = number(value);
    if value.is_finite() && value.fract() == 0.0 {
        text + ".0"
    } else {
        text
    }
}

/// Milliseconds since the epoch as seconds with three decimals.
fn unix_seconds(at_ms: i64) -> String {
    let (secs, ms) = (at_ms.div_euclid(1000), at_ms.rem_euclid(1000));
    format!("{secs}.{ms:03}")
}

#[cfg(test)]
mod tests {
    use openmetrics_parser::openmetrics::parse_openmetrics;
    use openmetrics_parser::{MetricNumber, OpenMetricsType, OpenMetricsValue};

    use super::*;
    use crate::exposition::encoding::{counter, family, gauge, labelled};
    use crate::recording::exemplars::TraceId;
    use prometheus::proto::{Bucket, Histogram};

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

    fn histogram() -> MetricFamily {
        let mut histogram = Histogram::default();
        histogram.set_sample_count(3);
        histogram.set_sample_sum(0.7);
        histogram.set_bucket(
            [(0.1, 1), (1.0, 2)]
                .into_iter()
                .map(|(bound, count)| {
                    let mut bucket = Bucket::default();
                    bucket.set_upper_bound(bound);
                    bucket.set_cumulative_count(count);
                    bucket
                })
                .collect(),
        );
        let mut metric = labelled(&[("endpoint", "/api/read")]);
        metric.set_histogram(histogram);
        family(
            "latency_seconds",
            "Time \"from\" start\\end.",
            MetricType::HISTOGRAM,
            vec![metric],
        )
    }

    fn one_exemplar() -> BucketExemplars {
        let mut exemplars = BucketExemplars::default();
        exemplars.offer(
            1,
            Exemplar {
                trace: TraceId::parse(TRACE).unwrap(),
                micros: 600_000,
                at_ms: 1_790_000_000_042,
            },
        );
        exemplars
    }

    fn encoded() -> String {
        let families = vec![
            family(
                "requests_total",
                "Requests.",
                MetricType::COUNTER,
                vec![counter(&[("shard", "0")], 5.0)],
            ),
            family("uptime", "Up.", MetricType::GAUGE, vec![gauge(&[], 1.5)]),
            family("empty_total", "None.", MetricType::COUNTER, vec![]),
            histogram(),
        ];
        let exemplars = one_exemplar();
        encode(
            &families,
            &Exemplars {
                family: "latency_seconds",
                metrics: vec![&exemplars],
            },
        )
    }

    #[test]
    fn every_line_is_openmetrics() {
        let text = encoded();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "# TYPE requests counter",
                "# HELP requests Requests.",
                "requests_total{shard=\"0\"} 5",
                "# TYPE uptime gauge",
                "# HELP uptime Up.",
                "uptime 1.5",
                "# TYPE latency_seconds histogram",
                "# HELP latency_seconds Time \\\"from\\\" start\\\\end.",
                "latency_seconds_bucket{endpoint=\"/api/read\",le=\"0.1\"} 1",
                "latency_seconds_bucket{endpoint=\"/api/read\",le=\"1.0\"} 2 # {trace_id=\"4bf92f3577b34da6a3ce929d0e0e4736\"} 0.6 1790000000.042",
                "latency_seconds_bucket{endpoint=\"/api/read\",le=\"+Inf\"} 3",
                "latency_seconds_sum{endpoint=\"/api/read\"} 0.7",
                "latency_seconds_count{endpoint=\"/api/read\"} 3",
                "# EOF",
            ]
        );
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn a_parser_of_the_standard_reads_it_back_with_the_exemplar() {
        let parsed = parse_openmetrics(&encoded()).expect("valid OpenMetrics");
        let requests = &parsed.families["requests"];
        assert_eq!(requests.family_type, OpenMetricsType::Counter);
        let latency = &parsed.families["latency_seconds"];
        assert_eq!(latency.family_type, OpenMetricsType::Histogram);
        let sample = latency.iter_samples().next().unwrap();
        let OpenMetricsValue::Histogram(histogram) = &sample.value else {
            panic!("{:?}", sample.value);
        };
        assert_eq!(histogram.count, Some(3));
        assert_eq!(histogram.sum, Some(MetricNumber::Float(0.7)));
        let exemplar = histogram.buckets[1].exemplar.as_ref().expect("an exemplar");
        assert_eq!(histogram.buckets[1].upper_bound, 1.0);
        assert_eq!(exemplar.labels["trace_id"], TRACE);
        assert_eq!(exemplar.id, 0.6);
        assert_eq!(exemplar.timestamp, Some(1_790_000_000.042));
        assert!(histogram.buckets[0].exemplar.is_none());
    }

    #[test]
    fn numbers_are_spelled_as_the_standard_wants() {
        assert_eq!(number(f64::INFINITY), "+Inf");
        assert_eq!(number(f64::NEG_INFINITY), "-Inf");
        assert_eq!(number(f64::NAN), "NaN");
        assert_eq!(number(3.0), "3");
        assert_eq!(canonical(10.0), "10.0");
        assert_eq!(canonical(0.00025), "0.00025");
        assert_eq!(unix_seconds(1_000), "1.000");
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
