//! The `[tracing]` section, and the one rule for whether spans are exported: an OTLP
//! endpoint named here or by the standard variables. The standard `OTEL_*` variables
//! win over these keys where both say something.

use serde::{Deserialize, Serialize};

/// The standard variable naming every signal's OTLP endpoint (`/v1/traces` added).
pub const ENDPOINT_VAR: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// The standard variable naming the traces' OTLP endpoint, used as it is.
pub const TRACES_ENDPOINT_VAR: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
/// `true` turns the whole SDK off: nothing is exported, whatever names an endpoint.
pub const SDK_DISABLED_VAR: &str = "OTEL_SDK_DISABLED";
/// The traces' exporters, comma-separated: `otlp` (the default) or `none`.
pub const TRACES_EXPORTER_VAR: &str = "OTEL_TRACES_EXPORTER";
/// `gzip` or `none` (the traces' own variable first, then every signal's).
const COMPRESSION_VARS: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
    "OTEL_EXPORTER_OTLP_COMPRESSION",
];
/// `grpc`, `http/protobuf` (the traces' own variable first, then every signal's).
const PROTOCOL_VARS: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
];

/// OpenTelemetry traces, exported over OTLP: off unless an endpoint is named, here or
/// by `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`). The
/// standard `OTEL_*` variables win over these keys.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TracingSettings {
    /// The collector's OTLP base URL, e.g. `http://127.0.0.1:4318` (`/v1/traces` is added over HTTP); empty: no export unless a variable names one.
    pub endpoint: String,
    /// How spans travel: `http/protobuf`, or `grpc` in a build with the `otlp-grpc` feature.
    pub protocol: OtlpProtocol,
    /// The spans' `service.name` unless `OTEL_SERVICE_NAME` or `OTEL_RESOURCE_ATTRIBUTES` names one.
    pub service_name: String,
    /// Share of new traces recorded, 0 to 1, unless `OTEL_TRACES_SAMPLER` is set; a caller's `traceparent` decides for its own trace (parent-based).
    pub sample_ratio: f64,
    /// Ended spans waiting for export at most (`OTEL_BSP_MAX_QUEUE_SIZE` wins); past it a span is dropped and counted, never waited for.
    pub max_queue_spans: usize,
}

/// How spans travel to the collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum OtlpProtocol {
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
    #[serde(rename = "grpc")]
    Grpc,
}

impl Default for TracingSettings {
    fn default() -> Self {
        Self {
            endpoint: String::new(),
            protocol: OtlpProtocol::HttpProtobuf,
            service_name: "shardgate".into(),
            sample_ratio: 0.1,
            max_queue_spans: 2048,
        }
    }
}

/// Where and how spans go, once export is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// The endpoint to give the exporter, or None when a standard variable names it
    /// (the exporter reads that variable itself).
    pub endpoint: Option<String>,
    pub protocol: OtlpProtocol,
    /// Whether each export is gzipped (`OTEL_EXPORTER_OTLP_COMPRESSION=gzip`).
    pub gzip: bool,
}

/// Whether the `OTEL_*` compression variables ask for gzip: `gzip` or `none` (or
/// unset); anything else is refused naming the variable, as is `gzip` in a build
/// without the `gzip` feature.
fn gzip(named: &impl Fn(&str) -> Option<String>) -> Result<bool, String> {
    let Some((var, value)) = COMPRESSION_VARS
        .iter()
        .find_map(|var| named(var).map(|v| (*var, v)))
    else {
        return Ok(false);
    };
    match value.trim().to_ascii_lowercase().as_str() {
        "none" => Ok(false),
        "gzip" if cfg!(feature = "gzip") => Ok(true),
        "gzip" => Err(format!(
            "{var} is \"gzip\"; this build compresses nothing (build with telemetry's `gzip` feature), use none"
        )),
        _ => Err(format!("{var} is {value:?}; use gzip or none")),
    }
}

/// Refuses an https:// endpoint in a build without the `tls` feature, naming where it
/// was set.
fn tls_available(endpoint: &str, named_by: &str) -> Result<(), String> {
    if cfg!(feature = "tls") || !endpoint.trim().starts_with("https://") {
        return Ok(());
    }
    Err(format!(
        "{named_by} is {endpoint:?}; this build has no TLS for traces (build with telemetry's `tls` feature), use http://"
    ))
}

impl TracingSettings {
    /// Refuses values that cannot work, naming the key.
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.sample_ratio) {
            return Err(format!(
                "tracing.sample_ratio is {}; use 0 to 1 (0.1 records one new trace in ten)",
                self.sample_ratio
            ));
        }
        if self.max_queue_spans == 0 {
            return Err("tracing.max_queue_spans is 0; use 1 or more (2048 by default): with 0 every span would be dropped".into());
        }
        let endpoint = self.endpoint.trim();
        let url = endpoint.starts_with("http://") || endpoint.starts_with("https://");
        if !(endpoint.is_empty() || url) {
            return Err(format!(
                "tracing.endpoint is {endpoint:?}; use an http:// or https:// URL, e.g. http://127.0.0.1:4318"
            ));
        }
        Ok(())
    }

    /// Where spans go, or None when export is off; `var` reads the environment.
    /// `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none` turn it off whatever
    /// names an endpoint; an exporter other than `otlp` and `none` is refused, never
    /// silently replaced.
    pub fn destination(
        &self,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Destination>, String> {
        let named = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        if named(SDK_DISABLED_VAR).is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        if let Some(exporters) = named(TRACES_EXPORTER_VAR) {
            let exporters: Vec<String> = exporters
                .split(',')
                .map(|e| e.trim().to_ascii_lowercase())
                .filter(|e| !e.is_empty())
                .collect();
            if let Some(other) = exporters.iter().find(|e| *e != "otlp" && *e != "none") {
                return Err(format!(
                    "{TRACES_EXPORTER_VAR} names {other:?}; this build exports traces over otlp only (use otlp, or none for no export)"
                ));
            }
            if !exporters.iter().any(|e| e == "otlp") {
                return Ok(None);
            }
        }
        let protocol = match PROTOCOL_VARS.iter().find_map(|name| named(name)) {
            None => self.protocol,
            Some(p) if p == "grpc" => OtlpProtocol::Grpc,
            Some(p) if p == "http/protobuf" => OtlpProtocol::HttpProtobuf,
            Some(p) => {
                return Err(format!(
                    "OTEL_EXPORTER_OTLP_PROTOCOL is {p:?}; use http/protobuf or grpc"
                ))
            }
        };
        let gzip = gzip(&named)?;
        let from_var = [TRACES_ENDPOINT_VAR, ENDPOINT_VAR]
            .into_iter()
            .find_map(|var| named(var).map(|v| (var, v)));
        if let Some((var, endpoint)) = from_var {
            tls_available(&endpoint, var)?;
            return Ok(Some(Destination {
                endpoint: None,
                protocol,
                gzip,
            }));
        }
        let base = self.endpoint.trim().trim_end_matches('/');
        if base.is_empty() {
            return Ok(None);
        }
        tls_available(base, "tracing.endpoint")?;
        let endpoint = match protocol {
            OtlpProtocol::HttpProtobuf => format!("{base}/v1/traces"),
            OtlpProtocol::Grpc => base.to_owned(),
        };
        Ok(Some(Destination {
            endpoint: Some(endpoint),
            protocol,
            gzip,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn the_sdk_disabled_or_no_exporter_turns_export_off_whatever_names_an_endpoint() {
        let on = TracingSettings {
            endpoint: "http://127.0.0.1:4318".into(),
            ..TracingSettings::default()
        };
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318");
        for off in [
            ("OTEL_SDK_DISABLED", "true"),
            ("OTEL_SDK_DISABLED", "TRUE"),
            ("OTEL_TRACES_EXPORTER", "none"),
            ("OTEL_TRACES_EXPORTER", " None "),
        ] {
            assert_eq!(on.destination(env(&[off])), Ok(None), "{off:?}");
            assert_eq!(on.destination(env(&[off, endpoint])), Ok(None), "{off:?}");
        }
        let exporting = Ok(Some(Destination {
            endpoint: Some("http://127.0.0.1:4318/v1/traces".into()),
            protocol: OtlpProtocol::HttpProtobuf,
            gzip: false,
        }));
        for still_on in [
            ("OTEL_SDK_DISABLED", "false"),
            ("OTEL_SDK_DISABLED", ""),
            ("OTEL_TRACES_EXPORTER", "otlp"),
            ("OTEL_TRACES_EXPORTER", "otlp,none"),
        ] {
            assert_eq!(on.destination(env(&[still_on])), exporting, "{still_on:?}");
        }
        assert_eq!(
            on.destination(env(&[("OTEL_TRACES_EXPORTER", "zipkin")])),
            Err("OTEL_TRACES_EXPORTER names \"zipkin\"; this build exports traces over otlp only (use otlp, or none for no export)".into())
        );
    }

    #[test]
    fn off_unless_an_endpoint_is_named_here_or_by_a_variable() {
        let off = TracingSettings::default();
        assert_eq!(off.destination(env(&[])), Ok(None));
        assert_eq!(off.destination(env(&[(ENDPOINT_VAR, " ")])), Ok(None));
        let by_var = off
            .destination(env(&[(ENDPOINT_VAR, "http://c:4318")]))
            .unwrap()
            .unwrap();
        assert_eq!(by_var.endpoint, None, "the exporter reads the variable");
        assert_eq!(by_var.protocol, OtlpProtocol::HttpProtobuf);
        assert!(off
            .destination(env(&[(TRACES_ENDPOINT_VAR, "http://c:4318/v1/traces")]))
            .unwrap()
            .is_some());

        let configured = TracingSettings {
            endpoint: "http://collector:4318/".into(),
            ..TracingSettings::default()
        };
        assert_eq!(
            configured.destination(env(&[])).unwrap().unwrap().endpoint,
            Some("http://collector:4318/v1/traces".into())
        );
        let grpc = configured
            .destination(env(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]))
            .unwrap()
            .unwrap();
        assert_eq!(grpc.protocol, OtlpProtocol::Grpc);
        assert_eq!(grpc.endpoint, Some("http://collector:4318".into()));
        assert_eq!(
            configured.destination(env(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")])),
            Err("OTEL_EXPORTER_OTLP_PROTOCOL is \"http/json\"; use http/protobuf or grpc".into())
        );
    }

    #[cfg(feature = "gzip")]
    #[test]
    fn gzip_or_none_is_honoured_and_anything_else_refused_naming_the_variable() {
        let on = TracingSettings {
            endpoint: "http://collector:4318".into(),
            ..TracingSettings::default()
        };
        let gzip = |pairs: &[(&str, &str)]| on.destination(env(pairs)).map(|d| d.unwrap().gzip);
        assert_eq!(gzip(&[]), Ok(false));
        assert_eq!(
            gzip(&[("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")]),
            Ok(true)
        );
        assert_eq!(
            gzip(&[("OTEL_EXPORTER_OTLP_COMPRESSION", " GZIP ")]),
            Ok(true)
        );
        assert_eq!(
            gzip(&[("OTEL_EXPORTER_OTLP_COMPRESSION", "none")]),
            Ok(false)
        );
        // The traces' own variable wins.
        assert_eq!(
            gzip(&[
                ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "none"),
                ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
            ]),
            Ok(false)
        );
        assert_eq!(
            gzip(&[("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "zstd")]),
            Err("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION is \"zstd\"; use gzip or none".into())
        );
        assert_eq!(
            gzip(&[("OTEL_EXPORTER_OTLP_COMPRESSION", "br")]),
            Err("OTEL_EXPORTER_OTLP_COMPRESSION is \"br\"; use gzip or none".into())
        );
    }

    #[test]
    fn https_is_refused_only_in_a_build_without_tls() {
        let https = TracingSettings {
            endpoint: "https://collector:4318".into(),
            ..TracingSettings::default()
        };
        let by_var = [(ENDPOINT_VAR, "https://collector:4318")];
        for result in [
            https.destination(env(&[])),
            TracingSettings::default().destination(env(&by_var)),
        ] {
            if cfg!(feature = "tls") {
                assert!(result.unwrap().is_some());
            } else {
                assert!(result.unwrap_err().contains("no TLS"));
            }
        }
    }

    #[test]
    fn out_of_range_values_are_named() {
        assert_eq!(TracingSettings::default().validate(), Ok(()));
        let ratio = TracingSettings {
            sample_ratio: 1.5,
            ..TracingSettings::default()
        };
        assert!(ratio
            .validate()
            .unwrap_err()
            .starts_with("tracing.sample_ratio is 1.5"));
        let queue = TracingSettings {
            max_queue_spans: 0,
            ..TracingSettings::default()
        };
        assert!(queue
            .validate()
            .unwrap_err()
            .starts_with("tracing.max_queue_spans is 0"));
        let url = TracingSettings {
            endpoint: "collector:4318".into(),
            ..TracingSettings::default()
        };
        assert!(url
            .validate()
            .unwrap_err()
            .starts_with("tracing.endpoint is \"collector:4318\""));
    }
}
