//! `loadtest`: parses the command line and hands it to [`loadtest::run`]. See the crate
//! documentation (or `cargo run -p loadtest -- --help`) for how to use it.
//!
//! Exit status: 0 done, 1 an error, 3 the `verify` verdict does not hold.

use std::process::ExitCode;

use clap::Parser;
use loadtest::options::Cli;
use loadtest::run::Ended;
use loadtest::verify::BROKEN_EXIT;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match loadtest::run(cli).await {
        Ok(Ended::Done) => ExitCode::SUCCESS,
        // The verdict is printed; scripts tell it from an error by the status.
        Ok(Ended::Broken) => ExitCode::from(BROKEN_EXIT),
        Err(error) => {
            eprintln!("loadtest: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
