//! What became of a gateway's OpenTelemetry spans, in the Prometheus exposition, when
//! it exports traces. The gateway keeps the counts and passes them at scrape time.
//!
//! | family                                 | type    | labels |
//! |----------------------------------------|---------|--------|
//! | `shardgate_trace_spans_exported_total` | counter |        |
//! | `shardgate_trace_spans_dropped_total`  | counter | reason |

use prometheus::proto::{MetricFamily, MetricType};

use crate::exposition::encoding::{counter, encode, family};

/// Spans since the gateway started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TraceSpans {
    /// Accepted by the collector.
    pub exported: u64,
    /// Dropped because the export queue was full.
    pub dropped_queue_full: u64,
    /// Lost with an export that failed (collector down, refusing, too slow).
    pub dropped_export_failed: u64,
}

/// The families, for a gateway's exposition ([`crate::exposition::GatewayFigures`]).
pub(crate) fn families(spans: &TraceSpans) -> Vec<MetricFamily> {
    vec![
        family(
            "shardgate_trace_spans_exported_total",
            "Trace spans the OTLP collector accepted.",
            MetricType::COUNTER,
            vec![counter(&[], spans.exported as f64)],
        ),
        family(
            "shardgate_trace_spans_dropped_total",
            "Trace spans never exported, by reason: queue_full (the export queue was full), export_failed (the collector did not take their batch).",
            MetricType::COUNTER,
            vec![
                counter(&[("reason", "queue_full")], spans.dropped_queue_full as f64),
                counter(
                    &[("reason", "export_failed")],
                    spans.dropped_export_failed as f64,
                ),
            ],
        ),
    ]
}

/// The families as text, to follow the rest of a gateway's exposition.
pub fn text(spans: &TraceSpans) -> String {
    encode(&families(spans))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exported_and_dropped_spans_by_reason() {
        let text = text(&TraceSpans {
            exported: 7,
            dropped_queue_full: 2,
            dropped_export_failed: 5,
        });
        assert!(
            text.contains("# TYPE shardgate_trace_spans_exported_total counter"),
            "{text}"
        );
        assert!(
            text.contains("shardgate_trace_spans_exported_total 7"),
            "{text}"
        );
        assert!(
            text.contains("shardgate_trace_spans_dropped_total{reason=\"queue_full\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("shardgate_trace_spans_dropped_total{reason=\"export_failed\"} 5"),
            "{text}"
        );
    }
}
