//! `shard-manager`: admin commands for a Shardgate cluster.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use shard_manager::{config, ClusterSettings, Router, ShardKey};

#[derive(Parser)]
#[command(
    name = "shard-manager",
    about = "Admin commands for a Shardgate cluster"
)]
struct Cli {
    /// A TOML file layered over config/default.toml.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply pending migrations on every shard's primary.
    Migrate,
    /// Show where a key lives: hash, slot, shard.
    Locate { key: String },
    /// Check the configuration and print the slot ranges each shard owns.
    Check,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse();
    let settings: ClusterSettings =
        config::load(cli.config.as_deref()).context("loading configuration")?;
    let ranges = settings.validate()?;
    match cli.command {
        Command::Migrate => {
            let applied = shard_manager::admin::migrate_all(&settings)?;
            for (i, versions) in applied.iter().enumerate() {
                let primary = &settings.shards[i].primary;
                if versions.is_empty() {
                    println!("shard-{i} ({primary}): up to date");
                } else {
                    println!("shard-{i} ({primary}): applied {}", versions.join(", "));
                }
            }
        }
        Command::Locate { key } => {
            let router = Router::new(&settings.routing, &ranges);
            let key = ShardKey::parse(&key)?;
            let p = router.locate(&key);
            println!(
                "key {key:?}: hash {:#018x}, slot {} of {}, {}",
                p.hash,
                p.slot,
                router.slot_count(),
                p.shard
            );
        }
        Command::Check => {
            let router = Router::new(&settings.routing, &ranges);
            for (i, shard) in settings.shards.iter().enumerate() {
                let owned = router.ranges_of(shard_manager::ShardId(i as u32));
                let text: Vec<String> = owned.iter().map(|(a, b)| format!("{a}-{b}")).collect();
                println!(
                    "shard-{i}: primary {}, replicas [{}], slots {}",
                    shard.primary,
                    shard.replicas.join(", "),
                    text.join(",")
                );
            }
        }
    }
    Ok(())
}
