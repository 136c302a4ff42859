//! `api-router`: configuration, telemetry, build, run. Everything else is in the library.

use std::path::PathBuf;

use api_router::settings::Settings;
use api_router::startup::Application;
use api_router::telemetry;
use clap::Parser;

/// Every request allocates its headers, SQL, row and JSON; glibc's malloc/free took
/// 29% of the gateway's CPU per request in the profile (docs/BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
