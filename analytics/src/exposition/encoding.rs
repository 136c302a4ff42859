//! The pieces every family of the exposition is built from (a family, a labelled
//! counter or gauge) and the text encoding (format 0.0.4) of a list of families.
//!
//! Encoding is the `prometheus` crate's `TextEncoder`, which owns escaping and
//! formatting. Nothing is registered in a global registry: each recorder exposes only
//! its own data.

use prometheus::proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType};
use prometheus::TextEncoder;

/// Text exposition of `families`. Encoding into a `String` only fails on a family
/// without samples, which [`crate::exposition::requests::families`] never returns; if it
/// ever did, the text says so in a comment rather than panicking inside a scrape.
pub(crate) fn encode(families: &[MetricFamily]) -> String {
    let mut text = String::new();
    if let Err(error) = TextEncoder::new().encode_utf8(families, &mut text) {
        text.push_str("# shardgate: encoding failed: ");
        text.push_str(&error.to_string().replace('\n', " "));
        text.push('\n');
    }
    text
}

pub(crate) fn family(
    name: &str,
    help: &str,
    kind: MetricType,
    metrics: Vec<Metric>,
) -> MetricFamily {
    let mut family = MetricFamily::default();
    family.set_name(name.to_owned());
    family.set_help(help.to_owned());
    family.set_field_type(kind);
    family.set_metric(metrics);
    family
}

pub(crate) fn labelled(pairs: &[(&str, &str)]) -> Metric {
    let labels = pairs
        .iter()
        .map(|(name, value)| {
            let mut pair = LabelPair::default();
            pair.set_name((*name).to_owned());
            pair.set_value((*value).to_owned());
            pair
        })
        .collect();
    Metric::from_label(labels)
}

pub(crate) fn counter(pairs: &[(&str, &str)], value: f64) -> Metric {
    let mut counter = Counter::default();
    counter.set_value(value);
    let mut metric = labelled(pairs);
    metric.set_counter(counter);
    metric
}

pub(crate) fn gauge(pairs: &[(&str, &str)], value: f64) -> Metric {
    let mut gauge = Gauge::default();
    gauge.set_value(value);
    let mut metric = labelled(pairs);
    metric.set_gauge(gauge);
    metric
}
