//! `loadtest`: parses the command line and hands it to [`loadtest::run`]. See the crate
//! documentation (or `cargo run -p loadtest -- --help`) for how to use it.

use std::process::ExitCode;

use clap::Parser;
use loadtest::options::Cli;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match loadtest::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("loadtest: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
