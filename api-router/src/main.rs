//! `api-router`: configuration, telemetry, build, run. Everything else is in the library.

use std::path::PathBuf;

use api_router::settings::Settings;
use api_router::startup::Application;
use api_router::telemetry;
use clap::Parser;

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

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init();
    let cli = Cli::parse();
    let mut settings = Settings::load(cli.config.as_deref())?;
    if let Some(listen) = cli.listen {
        settings.server.listen = listen;
    }
    let app = Application::build(settings).await?;
    app.run_until_stopped().await?;
    Ok(())
}
