//! Which text a scraper gets: Prometheus text 0.0.4, as ever, or OpenMetrics 1.0 when
//! its `Accept` header prefers it (as Prometheus's does with exemplar storage on), the
//! format that carries exemplars.

/// A format of the exposition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Prometheus text exposition format 0.0.4: what every scraper understands.
    #[default]
    Prometheus,
    /// OpenMetrics 1.0 text, with exemplars on the request latency buckets.
    OpenMetrics,
}

impl Format {
    /// The format an `Accept` header asks for, as Prometheus's own client libraries
    /// negotiate it: the media ranges by falling `q` (ties in the header's order), and
    /// the first one served wins. OpenMetrics is served for
    /// `application/openmetrics-text` of version 1.0.0, 0.0.1 or none; the 0.0.4 text
    /// for `text/plain`, `text/*` and `*/*`, and when nothing listed is served (or no
    /// header came).
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Prometheus;
        };
        let mut ranges: Vec<(f64, Option<Format>)> = accept.split(',').map(range).collect();
        ranges.sort_by(|a, b| b.0.total_cmp(&a.0));
        ranges
            .into_iter()
            .filter(|(q, _)| *q > 0.0)
            .find_map(|(_, format)| format)
            .unwrap_or_default()
    }

    /// The response's `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// One media range's `q` (1 when absent or unreadable) and the format it asks for, if
/// one is served.
fn range(text: &str) -> (f64, Option<Format>) {
    let mut parts = text.split(';');
    let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    let mut q = 1.0;
    let mut version = None;
    for param in parts {
        let Some((name, value)) = param.split_once('=') else {
            continue;
        };
        let value = value.trim().trim_matches('"');
        match name.trim().to_ascii_lowercase().as_str() {
            "q" => q = value.parse().unwrap_or(1.0),
            "version" => version = Some(value.to_owned()),
            _ => {}
        }
    }
    let format = match (media.as_str(), version.as_deref()) {
        ("application/openmetrics-text", None | Some("1.0.0" | "0.0.1")) => {
            Some(Format::OpenMetrics)
        }
        ("text/plain", None | Some("0.0.4")) | ("text/*" | "*/*", _) => Some(Format::Prometheus),
        _ => None,
    };
    (q, format)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_with_exemplars_on_gets_openmetrics() {
        // Prometheus 2.x's and 3.x's scrape headers.
        for accept in [
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
            "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
            "application/openmetrics-text; version=1.0.0",
            "Application/OpenMetrics-Text",
        ] {
            assert_eq!(
                Format::negotiate(Some(accept)),
                Format::OpenMetrics,
                "{accept}"
            );
        }
    }

    #[test]
    fn everything_else_gets_the_text_format() {
        for accept in [
            None,
            Some(""),
            Some("*/*"),
            Some("text/plain"),
            Some("text/plain;version=0.0.4"),
            Some("application/json"),
            Some("text/plain;q=0.9,application/openmetrics-text;version=1.0.0;q=0.5"),
            Some("application/openmetrics-text;version=2.0.0,text/plain;q=0.1"),
            Some("application/openmetrics-text;q=0,*/*;q=0.1"),
            Some("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"),
        ] {
            assert_eq!(Format::negotiate(accept), Format::Prometheus, "{accept:?}");
        }
    }

    #[test]
    fn content_types_name_format_and_version() {
        assert_eq!(
            Format::OpenMetrics.content_type(),
            "application/openmetrics-text; version=1.0.0; charset=utf-8"
        );
        assert_eq!(
            Format::Prometheus.content_type(),
            "text/plain; version=0.0.4; charset=utf-8"
        );
    }
}
