//! The tracer provider behind the `tracing` bridge: the resource (`service.name` and
//! the standard variables), the sampler, and the OTLP exporter on the SDK's batch
//! thread behind the ledger's bounded queue. Started once by [`super::super::telemetry`];
//! [`Exporting::shutdown`] sends what is left when the gateway stops.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracer, SdkTracerProvider,
};
use opentelemetry_sdk::Resource;

use super::ledger::{Bounded, Counted, SpanLedger};
use super::settings::{Destination, OtlpProtocol, TracingSettings};

/// Why traces cannot start: the gateway refuses to start rather than run untraced.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("invalid configuration: {0}")]
    Settings(String),
    #[error("this build exports OTLP over HTTP only: build api-router with the `otlp-grpc` feature for grpc")]
    NoGrpc,
    #[error("cannot build the OTLP exporter")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
}

/// Spans being exported: the provider (flushed and stopped by [`Exporting::shutdown`])
/// and its counts.
pub struct Exporting {
    provider: SdkTracerProvider,
    pub ledger: Arc<SpanLedger>,
    /// The tracer the `tracing` bridge records with.
    pub tracer: SdkTracer,
}

/// `OTEL_BSP_MAX_QUEUE_SIZE` when set to a number, else the setting.
fn queue_capacity(settings: &TracingSettings, var: &impl Fn(&str) -> Option<String>) -> usize {
    var("OTEL_BSP_MAX_QUEUE_SIZE")
        .and_then(|v| v.trim().parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(settings.max_queue_spans)
}

/// The standard detectors (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`), with
/// `service.name` from the settings when neither names one.
fn resource(settings: &TracingSettings) -> Resource {
    let detected = Resource::builder().build();
    let named = detected
        .get(&opentelemetry::Key::from_static_str("service.name"))
        .is_some_and(|name| !name.as_str().starts_with("unknown_service"));
    let builder = Resource::builder()
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")));
    if named {
        builder.build()
    } else {
        builder
            .with_service_name(settings.service_name.clone())
            .build()
    }
}

/// Parent-based with the settings' ratio for new traces, unless `OTEL_TRACES_SAMPLER`
/// is set: then None, and the SDK reads it (and `OTEL_TRACES_SAMPLER_ARG`) itself.
fn sampler(settings: &TracingSettings, var: &impl Fn(&str) -> Option<String>) -> Option<Sampler> {
    if var("OTEL_TRACES_SAMPLER").is_some_and(|v| !v.trim().is_empty()) {
        return None;
    }
    Some(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
        settings.sample_ratio,
    ))))
}

fn span_exporter(
    destination: &Destination,
) -> Result<opentelemetry_otlp::SpanExporter, ExportError> {
    match destination.protocol {
        OtlpProtocol::HttpProtobuf => {
            let mut builder = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary);
            if let Some(endpoint) = &destination.endpoint {
                builder = builder.with_endpoint(endpoint.clone());
            }
            Ok(builder.build()?)
        }
        #[cfg(feature = "otlp-grpc")]
        OtlpProtocol::Grpc => {
            let mut builder = opentelemetry_otlp::SpanExporter::builder().with_tonic();
            if let Some(endpoint) = &destination.endpoint {
                builder = builder.with_endpoint(endpoint.clone());
            }
            Ok(builder.build()?)
        }
        #[cfg(not(feature = "otlp-grpc"))]
        OtlpProtocol::Grpc => Err(ExportError::NoGrpc),
    }
}

impl Exporting {
    /// Starts exporting when the settings or the environment (`var`) name an endpoint;
    /// None when export is off.
    pub fn start(
        settings: &TracingSettings,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, ExportError> {
        settings.validate().map_err(ExportError::Settings)?;
        let Some(destination) = settings.destination(&var).map_err(ExportError::Settings)? else {
            return Ok(None);
        };
        let ledger = Arc::new(SpanLedger::default());
        let capacity = queue_capacity(settings, &var);
        let exporter = Counted {
            inner: span_exporter(&destination)?,
            ledger: ledger.clone(),
        };
        // The other OTEL_BSP_* variables (delay, batch size, timeout) as the SDK reads them.
        let batch = BatchConfigBuilder::default()
            .with_max_queue_size(capacity)
            .build();
        let processor = Bounded {
            inner: BatchSpanProcessor::new(exporter, batch),
            ledger: ledger.clone(),
            capacity,
        };
        let mut builder = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_resource(resource(settings));
        if let Some(sampler) = sampler(settings, &var) {
            builder = builder.with_sampler(sampler);
        }
        let provider = builder.build();
        let tracer = provider.tracer("shardgate");
        Ok(Some(Self {
            provider,
            ledger,
            tracer,
        }))
    }

    /// Sends the spans still queued (within `limit`), then stops the export thread.
    pub fn shutdown(&self, limit: Duration) {
        if let Err(error) = self.provider.shutdown_with_timeout(limit) {
            tracing::warn!(%error, "traces: the last spans were not all exported");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_sampler_is_parent_based_on_the_ratio_unless_a_variable_names_one() {
        let settings = TracingSettings::default();
        let none = |_: &str| None;
        assert!(matches!(
            sampler(&settings, &none),
            Some(Sampler::ParentBased(_))
        ));
        let named = |name: &str| (name == "OTEL_TRACES_SAMPLER").then(|| "always_on".to_owned());
        assert!(sampler(&settings, &named).is_none());
        let queue = |name: &str| (name == "OTEL_BSP_MAX_QUEUE_SIZE").then(|| "64".to_owned());
        assert_eq!(queue_capacity(&settings, &queue), 64);
        assert_eq!(queue_capacity(&settings, &none), 2048);
    }
}
