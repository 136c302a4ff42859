//! `api-router`: configuration, telemetry, build, run. Everything else is in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use api_router::server::settings::Settings;
use api_router::server::telemetry;
use api_router::startup::Application;
use clap::Parser;
use shard_manager::redact::Redactor;

#[derive(Parser)]
#[command(
    name = "api-router",
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

/// Runs the gateway; an error that stops it is printed with its causes and without
/// any configured secret (a password in a URL that does not parse included), exit 1.
#[actix_web::main]
async fn main() -> ExitCode {
    telemetry::init();
    let mut redactor = Redactor::default();
    match run(&mut redactor).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {}", redactor.hide(&format!("{e:?}")));
            ExitCode::FAILURE
        }
    }
}

/// `redactor` learns the configured secrets as soon as they are read.
async fn run(redactor: &mut Redactor) -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut settings = Settings::load(cli.config.as_deref())?;
    *redactor = settings.cluster.redactor();
    if let Some(listen) = cli.listen {
        settings.server.listen = listen;
    }
    let app = Application::build(settings).await?;
    app.run_until_stopped().await?;
    Ok(())
}
