//! `api-router`: configuration, telemetry, build, run. Everything else is in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use api_router::server::settings::Settings;
use api_router::server::traces::{exported, Exporting};
use api_router::startup::Application;
use clap::Parser;
use shard_manager::redact::Redactor;
use shard_manager::ConfigError;

#[derive(Parser)]
#[command(
    name = "api-router",
    version,
    about = "Shardgate: HTTP gateway for sharded PostgreSQL"
)]
struct Cli {
    /// A TOML file layered over config/default.toml.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address to listen on (overrides server.listen), e.g. 0.0.0.0:8080 or 127.0.0.1:0.
    #[arg(long)]
    listen: Option<String>,
}

/// Exit code of a gateway that refused its configuration (clap's usage errors exit 2
/// too): it will not start until the configuration changes.
const REFUSED_EXIT: u8 = 2;
/// Exit code of a gateway stopped by any other error: a server, a port or the system let
/// it down, and starting it again may pass.
const FAILED_EXIT: u8 = 1;

/// Runs the gateway; an error that stops it is printed with its causes and without
/// any configured secret (a password in a URL that does not parse included), exit
/// [`REFUSED_EXIT`] for a configuration refused, [`FAILED_EXIT`] for anything else.
#[actix_web::main]
async fn main() -> ExitCode {
    let mut redactor = Redactor::default();
    match run(&mut redactor).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {}", redactor.hide(&format!("{e:?}")));
            let refused = e.chain().any(|cause| cause.is::<ConfigError>());
            ExitCode::from(if refused { REFUSED_EXIT } else { FAILED_EXIT })
        }
    }
}

/// `redactor` learns the configured secrets as soon as they are read. Logging starts
/// once the settings are read, with traces when they or the `OTEL_*` variables name a
/// collector; the last spans are sent when the gateway stops.
async fn run(redactor: &mut Redactor) -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut settings = Settings::load(cli.config.as_deref())?;
    *redactor = settings.cluster.redactor();
    if let Some(listen) = cli.listen {
        settings.server.listen = listen;
    }
    let traces = Exporting::start(&settings.tracing, |name| std::env::var(name).ok())?;
    telemetry::install(exported::LOGS, traces.as_ref().map(exported::export));
    if traces.is_some() {
        tracing::info!("exporting traces over OTLP");
    }
    let spans = traces.as_ref().map(|t| t.ledger.clone());
    let app = Application::build_traced(settings, spans).await;
    let result = match app {
        Ok(app) => app.run_until_stopped().await.map_err(Into::into),
        Err(e) => Err(e),
    };
    if let Some(traces) = traces {
        let _ = tokio::task::spawn_blocking(move || traces.shutdown(SPAN_FLUSH)).await;
    }
    result
}

/// How long a stopping gateway waits to send its last spans.
const SPAN_FLUSH: std::time::Duration = std::time::Duration::from_secs(3);
