//! The end of a verify run (or of `--verify-check`): read every record back, judge,
//! print the section and the machine-readable line, save the file.

use std::path::Path;
use std::time::Duration;

use super::ledger::Ledger;
use super::readback::read_back;
use super::report::{self, Saved};
use super::verdict::{judge, Verdict};
use crate::gateway::Gateway;

/// Reads back `ledger` through `gateway`, reports, saves to `out` when given; returns
/// the verdict.
pub async fn finish(
    gateway: &mut Gateway,
    ledger: Ledger,
    wait: Duration,
    out: Option<&Path>,
) -> anyhow::Result<Verdict> {
    let finals = read_back(gateway, &ledger, wait).await;
    let verdict = judge(&ledger, &finals);
    print!("{}", report::render(&ledger, &verdict));
    println!("{}", report::line(&ledger, &verdict));
    if let Some(path) = out {
        let saved = Saved {
            host: gateway.host().to_owned(),
            verdict,
            ledger,
        };
        saved.write(path)?;
        println!("verify: ledger and verdict written to {}", path.display());
        return Ok(saved.verdict);
    }
    Ok(verdict)
}
