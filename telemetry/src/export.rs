//! The tracer provider behind the `tracing` bridge: the resource (`service.name` and
//! the standard variables), the sampler, and the OTLP exporter on the SDK's batch
//! thread behind the ledger's bounded queue. Started once by each process that exports
//! (the gateway, the admin CLI); [`Exporting::shutdown`] sends what is left when it stops.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Config, Sampler, SdkTracer, SdkTracerProvider,
    ShouldSample,
};
use opentelemetry_sdk::Resource;

use crate::ledger::{Bounded, Counted, SpanLedger};
use crate::root::RootSampler;
use crate::sampler::FollowsLinks;
use crate::settings::{Destination, OtlpProtocol, TracingSettings};

/// Why traces cannot start (the gateway refuses to start rather than run untraced).
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("invalid configuration: {0}")]
    Settings(String),
    #[error("this build exports OTLP over HTTP only: build with the `otlp-grpc` feature for grpc")]
    NoGrpc,
    #[error("cannot build the OTLP exporter")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    #[error("cannot start the runtime the gRPC export runs on")]
    Runtime(#[source] std::io::Error),
}

/// Spans being exported: the provider (flushed and stopped by [`Exporting::shutdown`])
/// and its counts.
pub struct Exporting {
    provider: SdkTracerProvider,
    pub ledger: Arc<SpanLedger>,
    /// The tracer the `tracing` bridge records with.
    pub tracer: SdkTracer,
    /// The tracer's sampler, to decide a request before its root span exists.
    pub sampler: RootSampler,
    /// The runtime gRPC's channel runs on, in a process that runs none (the admin CLI).
    #[cfg(feature = "otlp-grpc")]
    _runtime: Option<tokio::runtime::Runtime>,
}

/// A runtime of the export's own when it goes over gRPC (tonic's channel needs one) and
/// the caller runs none; None otherwise.
#[cfg(feature = "otlp-grpc")]
fn grpc_runtime(destination: &Destination) -> Result<Option<tokio::runtime::Runtime>, ExportError> {
    if destination.protocol != OtlpProtocol::Grpc || tokio::runtime::Handle::try_current().is_ok() {
        return Ok(None);
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("otlp-grpc")
        .enable_all()
        .build()
        .map(Some)
        .map_err(ExportError::Runtime)
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
/// is set: then the sampler the SDK reads from it (and `OTEL_TRACES_SAMPLER_ARG`). Either
/// way a new trace linked to a sampled span (a batch carrying a sampled request) is
/// sampled: see [`crate::sampler`].
fn sampler(settings: &TracingSettings, var: &impl Fn(&str) -> Option<String>) -> FollowsLinks {
    let inner: Box<dyn ShouldSample> =
        if var("OTEL_TRACES_SAMPLER").is_some_and(|v| !v.trim().is_empty()) {
            Config::default().sampler
        } else {
            Box::new(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                settings.sample_ratio,
            ))))
        };
    FollowsLinks::new(inner)
}

fn span_exporter(
    destination: &Destination,
) -> Result<opentelemetry_otlp::SpanExporter, ExportError> {
    match destination.protocol {
        OtlpProtocol::HttpProtobuf => {
            use opentelemetry_otlp::WithHttpConfig;
            let mut builder = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary);
            if let Some(endpoint) = &destination.endpoint {
                builder = builder.with_endpoint(endpoint.clone());
            }
            if destination.gzip {
                builder = builder.with_compression(opentelemetry_otlp::Compression::Gzip);
            }
            Ok(builder.build()?)
        }
        #[cfg(feature = "otlp-grpc")]
        OtlpProtocol::Grpc => {
            use opentelemetry_otlp::WithTonicConfig;
            let mut builder = opentelemetry_otlp::SpanExporter::builder().with_tonic();
            if let Some(endpoint) = &destination.endpoint {
                builder = builder.with_endpoint(endpoint.clone());
            }
            if destination.gzip {
                builder = builder.with_compression(opentelemetry_otlp::Compression::Gzip);
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
        #[cfg(feature = "otlp-grpc")]
        let runtime = grpc_runtime(&destination)?;
        let inner = {
            #[cfg(feature = "otlp-grpc")]
            let _inside = runtime.as_ref().map(|rt| rt.enter());
            span_exporter(&destination)?
        };
        let exporter = Counted {
            inner,
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
        let sampler = sampler(settings, &var);
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_resource(resource(settings))
            .with_sampler(sampler.clone())
            .build();
        let tracer = provider.tracer("shardgate");
        Ok(Some(Self {
            provider,
            ledger,
            tracer,
            sampler: RootSampler::new(sampler),
            #[cfg(feature = "otlp-grpc")]
            _runtime: runtime,
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
        use opentelemetry::trace::SpanKind;
        use opentelemetry_sdk::trace::SamplingDecision;
        let settings = TracingSettings {
            sample_ratio: 0.0,
            ..TracingSettings::default()
        };
        let sampled = |sampler: FollowsLinks| {
            let result = sampler.should_sample(
                None,
                opentelemetry::TraceId::from(99u128),
                "HTTP request",
                &SpanKind::Server,
                &[],
                &[],
            );
            result.decision == SamplingDecision::RecordAndSample
        };
        let none = |_: &str| None;
        assert!(!sampled(sampler(&settings, &none)), "the ratio, 0, decides");
        // Named: the SDK's own reading of the variables, which this process does not set
        // (its default: every new trace).
        let named = |name: &str| (name == "OTEL_TRACES_SAMPLER").then(|| "always_on".to_owned());
        assert!(
            sampled(sampler(&settings, &named)),
            "the SDK's sampler decides"
        );
        let queue = |name: &str| (name == "OTEL_BSP_MAX_QUEUE_SIZE").then(|| "64".to_owned());
        assert_eq!(queue_capacity(&settings, &queue), 64);
        assert_eq!(queue_capacity(&settings, &none), 2048);
    }

    /// Starts export to `settings`, ends one span, and shuts down within 500 ms: how long
    /// the shutdown took, and how many spans were exported.
    fn one_span_then_shut_down(settings: &TracingSettings) -> (Duration, u64) {
        use opentelemetry::trace::{Span as _, Tracer as _};
        let exporting = Exporting::start(settings, |_| None)
            .expect("export starts")
            .expect("an endpoint is named");
        exporting.tracer.start("move slot").end();
        let started = std::time::Instant::now();
        exporting.shutdown(Duration::from_millis(500));
        (started.elapsed(), exporting.ledger.counts().exported)
    }

    #[test]
    fn a_collector_that_never_answers_holds_the_shutdown_no_longer_than_its_bound() {
        // Arrange: a collector that takes the connection and never answers.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let settings = TracingSettings {
            endpoint: format!("http://{}", silent.local_addr().unwrap()),
            sample_ratio: 1.0,
            ..TracingSettings::default()
        };

        // Act
        let (took, exported) = one_span_then_shut_down(&settings);

        // Assert: back within the bound (the exporter's own timeout is 10 s), nothing
        // exported.
        assert!(took < Duration::from_secs(3), "shutdown took {took:?}");
        assert_eq!(exported, 0);
    }

    #[cfg(feature = "otlp-grpc")]
    #[test]
    fn grpc_export_starts_and_stops_in_a_process_without_a_runtime() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let settings = TracingSettings {
            endpoint: format!("http://{closed}"),
            protocol: OtlpProtocol::Grpc,
            sample_ratio: 1.0,
            ..TracingSettings::default()
        };
        let (took, exported) = one_span_then_shut_down(&settings);
        assert!(took < Duration::from_secs(3), "shutdown took {took:?}");
        assert_eq!(exported, 0);
    }
}
