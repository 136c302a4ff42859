//! `api-router`: configuration, telemetry, build, run; or `api-router probe`, the
//! container health check. Everything else is in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use api_router::probe::{self, Endpoint};
use api_router::server::settings::Settings;
use api_router::server::traces::{exported, Exporting, Traced};
use api_router::startup::Application;
use clap::{Args, Parser, Subcommand};
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
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Address to listen on (overrides server.listen), e.g. 0.0.0.0:8080 or 127.0.0.1:0.
    #[arg(long, global = true)]
    listen: Option<String>,
    /// Without a command: run the gateway.
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Ask the gateway configured here (server.listen; a wildcard address on loopback)
    /// for its readiness or liveness: exit 0 on 200, 1 on anything else (not
    /// listening, silent, 503 while draining), 2 if the configuration is refused. A
    /// container's health check without a shell: `api-router probe --ready`.
    Probe(ProbeArgs),
}

#[derive(Args)]
#[group(skip)]
#[command(group(clap::ArgGroup::new("endpoint").required(true).args(["ready", "live"])))]
struct ProbeArgs {
    /// GET /api/health/ready: the gateway wants traffic (503 while it drains before a stop).
    #[arg(long)]
    ready: bool,
    /// GET /api/health/live: the process serves HTTP.
    #[arg(long)]
    live: bool,
    /// How long the connection, and then the answer, may take, milliseconds.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..))]
    timeout_ms: u64,
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
    let cli = Cli::parse();
    if let Some(Command::Probe(args)) = &cli.command {
        return run_probe(&cli, args);
    }
    let mut redactor = Redactor::default();
    match run(cli, &mut redactor).await {
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
async fn run(cli: Cli, redactor: &mut Redactor) -> anyhow::Result<()> {
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
    let app = Application::build_traced(settings, traces.as_ref().map(Traced::of)).await;
    let result = match app {
        Ok(app) => app.run_until_stopped().await.map_err(Into::into),
        Err(e) => Err(e),
    };
    if let Some(traces) = traces {
        let _ = tokio::task::spawn_blocking(move || traces.shutdown(SPAN_FLUSH)).await;
    }
    result
}

/// `api-router probe`: one line on standard error unless the endpoint answered 200.
fn run_probe(cli: &Cli, args: &ProbeArgs) -> ExitCode {
    let refused = |e: &dyn std::fmt::Display, redactor: &Redactor| {
        eprintln!("api-router probe: {}", redactor.hide(&e.to_string()));
        ExitCode::from(REFUSED_EXIT)
    };
    let mut settings = match Settings::load(cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(e) => return refused(&e, &Redactor::default()),
    };
    let redactor = settings.cluster.redactor();
    if let Some(listen) = &cli.listen {
        settings.server.listen = listen.clone();
    }
    let endpoint = if args.live {
        Endpoint::Live
    } else {
        Endpoint::Ready
    };
    let timeout = std::time::Duration::from_millis(args.timeout_ms);
    match probe::probe(&settings.server, endpoint, timeout) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is_refusal() => refused(&e, &redactor),
        Err(e) => {
            eprintln!("api-router probe: {}", redactor.hide(&e.to_string()));
            ExitCode::from(FAILED_EXIT)
        }
    }
}

/// How long a stopping gateway waits to send its last spans.
const SPAN_FLUSH: std::time::Duration = std::time::Duration::from_secs(3);
