//! One invocation, start to end: check the gateway, prefill, let goose run the
//! scenarios, then print the summary.

use std::sync::Arc;

use anyhow::anyhow;
use goose::prelude::{GooseAttack, GooseDefault, GooseDefaultType, GooseError};

use crate::gateway::Gateway;
use crate::keys::KeySpace;
use crate::options::{Cli, WorkloadOptions, DEFAULT_HOST};
use crate::prefill;
use crate::server_report;
use crate::summary::{self, RunFacts};
use crate::workload::Workload;

/// Runs the load test the command line describes.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let Cli {
        workload: options,
        goose: config,
    } = cli;
    options.validate().map_err(|e| anyhow!(e))?;
    let host = config
        .host
        .clone()
        .unwrap_or_else(|| DEFAULT_HOST.to_owned());
    let keys = KeySpace::new(options.keys, options.skew);
    let workload = Arc::new(Workload::new(keys, options.batch));
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
        gateway.check_health().await?;
        prefill::run(&mut gateway, &keys, options.needs(), options.prefill).await?;
    }
    let metrics = attack(config, &options, &workload)?.execute().await?;
    if informational {
        return Ok(());
    }
    let server = server_report::fetch(&mut gateway, summary::measured_secs(&metrics)).await;
    let facts = RunFacts {
        host: gateway.host(),
        options: &options,
        keys: &keys.describe(),
        metrics: &metrics,
        ryw: workload.ryw.tally(),
        cache: workload.cache.tally(),
    };
    print!("{}", summary::render(&facts, &server));
    Ok(())
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
