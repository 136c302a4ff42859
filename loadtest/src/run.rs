//! One invocation, start to end: check the gateway, prefill, let goose run the
//! scenarios, then print the summary and, with `verify`, the verdict. Or, with
//! `--verify-check`, no load: a saved ledger read back and judged again.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context};
use goose::prelude::{GooseAttack, GooseDefault, GooseDefaultType, GooseError};

use crate::gateway::Gateway;
use crate::keys::KeySpace;
use crate::options::{Cli, WorkloadOptions, DEFAULT_HOST};
use crate::own_cpu;
use crate::prefill;
use crate::server_report;
use crate::summary::{self, RunFacts};
use crate::traces::TraceBook;
use crate::verify::{self, report::Saved, Follower, Recorder};
use crate::workload::Workload;

/// How a run ended, for the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The load ran (and, with `verify`, every promise held).
    Done,
    /// `verify` found a write lost or applied twice, a stale token read, a record it
    /// could not read back, or a change stream that broke a promise.
    Broken,
}

/// Runs the load test the command line describes.
pub async fn run(cli: Cli) -> anyhow::Result<Ended> {
    let Cli {
        workload: options,
        goose: config,
    } = cli;
    options.validate().map_err(|e| anyhow!(e))?;
    if let Some(path) = &options.verify_check {
        return check(path, &options, &config).await;
    }
    let host = config
        .host
        .clone()
        .unwrap_or_else(|| DEFAULT_HOST.to_owned());
    let keys = KeySpace::new(options.keys, options.skew);
    let recorder = Recorder::new(
        &verify::new_run_tag(),
        &options.verify_table,
        options.verify_records,
    );
    let traces = TraceBook::new(options.trace_ratio, options.trace_slowest as usize);
    let workload = Arc::new(Workload::new(keys, options.batch, recorder, traces));
    // Goose answers these itself and sends no load.
    let informational = config.version || config.list || config.scenarios_list;
    let mut gateway = Gateway::new(&host, &config)?;
    if !informational {
        println!(
            "loadtest: {} | scenarios {} | {} | batch {} | prefill {}",
            gateway.host(),
            options.describe_scenarios(),
            keys.describe(),
            options.batch,
            options.prefill.name()
        );
        if options.verifies() {
            // Its records' keys (`verify-<run>-<user>-<n>`), for whoever watches the run.
            println!(
                "loadtest: verify run {} in table {}",
                workload.verify.run(),
                options.verify_table
            );
        }
        if summary::DEBUG_BUILD {
            eprintln!(
                "loadtest: warning: {}",
                summary::DEBUG_BUILD_NOTE.trim_start()
            );
        }
        gateway.check_health().await?;
        prefill::run(&mut gateway, &keys, options.needs(), options.prefill).await?;
    }
    // Before the first write: the stream's consumer starts from the table's end.
    let follower = match !informational && options.follows_changes() {
        true => Some(
            Follower::start(&gateway, &options.verify_table, &workload.verify.run())
                .await
                .context(
                    "cannot follow the change stream (--follow-changes false: verify without it)",
                )?,
        ),
        false => None,
    };
    let sampler = own_cpu::Sampler::start();
    let metrics = attack(config, &options, &workload)?.execute().await?;
    let samples = sampler.finish();
    // Every write has its answer: the stream must show them all before a resolved mark
    // later than this.
    let writes_ended = chrono::Utc::now();
    if informational {
        return Ok(Ended::Done);
    }
    let server = server_report::fetch(&mut gateway, summary::measured_secs(&metrics)).await;
    let facts = RunFacts {
        host: gateway.host(),
        options: &options,
        keys: &keys.describe(),
        metrics: &metrics,
        ryw: workload.ryw.tally(),
        cache: workload.cache.tally(),
        traces: workload.traces.tally(),
        own_cpu: summary::own_cpu(&metrics, &samples),
    };
    print!("{}", summary::render(&facts, &server));
    if !options.verifies() {
        return Ok(Ended::Done);
    }
    let wait = Duration::from_secs(options.verify_wait);
    let followed = match follower {
        Some(follower) => Some(follower.finish(writes_ended, wait).await),
        None => None,
    };
    let holds = verify::finish(
        &mut gateway,
        workload.verify.ledger(),
        wait,
        options.verify_out.as_deref(),
        followed,
    )
    .await?;
    Ok(ended(holds))
}

fn ended(holds: bool) -> Ended {
    match holds {
        true => Ended::Done,
        false => Ended::Broken,
    }
}

/// `--verify-check`: the saved ledger read back (through `--host`, else the host it
/// was written through) and judged again; no load.
async fn check(
    path: &std::path::Path,
    options: &WorkloadOptions,
    config: &goose::config::GooseConfiguration,
) -> anyhow::Result<Ended> {
    let saved = Saved::read(path)?;
    let host = config.host.clone().unwrap_or(saved.host);
    let mut gateway = Gateway::new(&host, config)?;
    println!(
        "loadtest: {} | verify-check {} (run {}, {} records)",
        gateway.host(),
        path.display(),
        saved.ledger.run,
        saved.ledger.records.len()
    );
    gateway.check_health().await?;
    let holds = verify::finish(
        &mut gateway,
        saved.ledger,
        Duration::from_secs(options.verify_wait),
        options.verify_out.as_deref(),
        None,
    )
    .await?;
    Ok(ended(holds))
}

/// Goose with our defaults and the selected scenarios registered.
fn attack(
    config: goose::config::GooseConfiguration,
    options: &WorkloadOptions,
    workload: &Arc<Workload>,
) -> Result<GooseAttack, GooseError> {
    let mut attack = *GooseAttack::initialize_with_config(config)?
        .set_default(GooseDefault::Host, DEFAULT_HOST)?
        // No control port unless asked for: a load test should not open one by surprise.
        // (Goose 0.19's WebSocket controller is already off unless --websocket.)
        .set_default(GooseDefault::NoTelnet, true)?;
    for weighted in &options.scenario {
        attack = attack.register_scenario(weighted.kind.build(weighted.weight, workload)?);
    }
    Ok(attack)
}
