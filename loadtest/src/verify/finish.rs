//! The end of a verify run (or of `--verify-check`): read every record back, judge the
//! records and, when one was followed, the change stream; print the sections and the
//! machine-readable line, save the file.

use std::path::Path;
use std::time::Duration;

use super::follow::Followed;
use super::ledger::Ledger;
use super::readback::read_back;
use super::report::{self, Saved};
use super::stream_verdict::judge_stream;
use super::verdict::judge;
use crate::gateway::Gateway;

/// Reads back `ledger` through `gateway`, judges it and what the stream's consumer
/// received (`followed`), reports, saves to `out` when given; returns whether every
/// promise held.
pub async fn finish(
    gateway: &mut Gateway,
    ledger: Ledger,
    wait: Duration,
    out: Option<&Path>,
    followed: Option<Followed>,
) -> anyhow::Result<bool> {
    let finals = read_back(gateway, &ledger, wait).await;
    let verdict = judge(&ledger, &finals);
    let stream = followed
        .as_ref()
        .map(|f| judge_stream(&ledger, &f.events, f.incomplete.clone()));
    print!("{}", report::render(&ledger, &verdict));
    if let (Some(followed), Some(stream)) = (&followed, &stream) {
        print!("{}", report::render_stream(followed, stream));
    }
    println!("{}", report::line(&ledger, &verdict, stream.as_ref()));
    let saved = Saved {
        host: gateway.host().to_owned(),
        verdict,
        stream,
        ledger,
    };
    if let Some(path) = out {
        saved.write(path)?;
        println!("verify: ledger and verdict written to {}", path.display());
    }
    Ok(saved.holds())
}
