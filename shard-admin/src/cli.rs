//! The command line of `shard-admin`, the admin CLI for a Shardgate cluster: its
//! commands (clap), the audit line of each that changes something, and the exit code.
//! The binary `shard-admin` runs [`main`].

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use serde::Deserialize;
use shard_manager::redact::Redactor;
use shard_manager::{config, ClusterSettings, Router, ShardKey};
use telemetry::TracingSettings;

use crate as admin;
use crate::audit::{Audit, Judged, Named, Outcome};

#[derive(Parser)]
#[command(
    name = "shard-admin",
    version,
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
    /// Apply pending migrations on every shard's primary (the stored map's shards,
    /// else the configuration's).
    Migrate,
    /// Seed the metadata database's shard map from the configuration (once; later runs
    /// keep the stored map) and tell every shard which slots it owns. Idempotent.
    Init,
    /// The shard map in the metadata database: show, history, assign-slots, sync.
    #[command(subcommand)]
    Map(admin::commands::map::MapCommand),
    /// Move slots, with their rows, from one shard to another while they keep taking
    /// reads and writes (resumable: `moves resume`).
    MoveSlots(admin::commands::moves::MoveSlotsArgs),
    /// Add a shard: its schema applied, it joins the map, then takes its fair share of
    /// slots, moved online from the shards that own the most (`--no-move`: join only).
    AddShard(admin::commands::add_shard::AddShardArgs),
    /// Remove a shard: its slots moved online to the others (each to the lightest by
    /// bytes), then retired (kept in the map, owning nothing; its servers can go).
    RemoveShard(admin::commands::remove_shard::RemoveShardArgs),
    /// Hand a shard's primary to one of its replicas for maintenance (planned: writes
    /// drained first, then promoted by the HA manager; clients see a short pause).
    Switchover(admin::commands::switchover::SwitchoverArgs),
    /// Even out the shards by bytes stored (or by slots): print the plan, or `--apply`
    /// it as online moves.
    Rebalance(admin::commands::rebalance::RebalanceArgs),
    /// Slot moves: status, resume, abort, reverse.
    #[command(subcommand)]
    Moves(admin::commands::moves::MovesCommand),
    /// Import a table of an existing, unsharded PostgreSQL database: its rows become
    /// records, copied while the source takes writes; `--cutover` switches (resumable:
    /// the same command continues).
    Import(admin::commands::import::ImportArgs),
    /// Write one table of every shard to a file, as NDJSON or CSV (atomically: the
    /// file appears whole or not at all).
    Export(admin::commands::export::ExportArgs),
    /// Records of a table that match conditions (`--where 'age gte 40'`), sorted, a
    /// page at a time across every shard, as `POST /api/query` answers; `--all`: every
    /// page, one JSON line per record.
    Query(admin::commands::query::QueryArgs),
    /// A table's change stream (`changes tail --table T`): one JSON line per change with
    /// the cursor that resumes after it, as `GET /api/changes` serves it.
    #[command(subcommand)]
    Changes(admin::commands::changes::ChangesCommand),
    /// Back up every shard's primary and the metadata server with pgBackRest, then name
    /// a cluster restore point on each (consistent across shards) and record it.
    Backup(admin::commands::backup::BackupArgs),
    /// Restore every shard's primary and the metadata server to a cluster restore point
    /// (without --yes: print the plan and change nothing).
    Restore(admin::commands::backup::RestoreArgs),
    /// Backups: list (the recorded restore points and pgBackRest's backups).
    #[command(subcommand)]
    Backups(admin::commands::backup::BackupsCommand),
    /// Imports: status, abort.
    #[command(subcommand)]
    Imports(admin::commands::import::ImportsCommand),
    /// API keys for the gateways: create (printed once), list, revoke, rotate, limit.
    #[command(subcommand)]
    Keys(admin::commands::keys::KeysCommand),
    /// Indexes for queries on every shard's primary: create, list, drop.
    #[command(subcommand)]
    Index(admin::commands::index::IndexCommand),
    /// Show where a key lives: hash, slot, shard.
    Locate { key: String },
    /// Check the configuration and print the slot ranges each shard owns.
    Check,
    /// For the data stored now, what each strategy would move if a shard were added.
    Plan {
        /// The change to plan (the only one so far): one more shard.
        #[arg(long, required = true)]
        add_shard: bool,
        /// Count only this logical table's records.
        #[arg(long)]
        table: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Generate realistic records and load them, routed, straight into the shards.
    Seed(admin::tools::seed::SeedArgs),
    /// The same workload against a single database and against the shards.
    Bench(admin::tools::bench::BenchArgs),
}

/// Exit code of a command refused before it changed anything: a usage error (clap's own
/// code for one), an argument, configuration or state of the cluster it refuses (the
/// audit line's `refused`). The same command fails the same way until something changes.
pub const REFUSED_EXIT: u8 = 2;
/// Exit code of a command that failed: a server or the metadata database let it down,
/// possibly half-way (the audit line's `failed`); trying again may pass.
pub const FAILED_EXIT: u8 = 1;

/// Runs the command; a refusal or failure is printed as one clear message (no
/// backtrace, whatever RUST_BACKTRACE says, and no configured secret) and exits
/// [`REFUSED_EXIT`] or [`FAILED_EXIT`] as [`outcome`] judges the error. A command
/// that changes something leaves one audit line (`admin::audit`) once it is over,
/// whatever became of it.
pub fn main() -> std::process::ExitCode {
    let mut redactor = Redactor::default();
    match run(&mut redactor) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", redactor.hide(&format!("{e:#}")));
            std::process::ExitCode::from(exit_code(outcome(&e)))
        }
    }
}

/// The exit code of a command that ended in `outcome` with an error.
fn exit_code(outcome: Outcome) -> u8 {
    match outcome {
        Outcome::Refused => REFUSED_EXIT,
        Outcome::Failed | Outcome::Done => FAILED_EXIT,
    }
}

/// `redactor` learns the configured secrets as soon as they are read. Logging starts
/// once they are, with the moves exported as traces when the `[tracing]` section or the
/// `OTEL_*` variables name a collector; the last spans are sent once the command is over.
fn run(redactor: &mut Redactor) -> anyhow::Result<()> {
    // Usage lines name `shard-admin` whatever the binary file is called.
    let cli = Cli::parse_from(
        std::iter::once(std::ffi::OsString::from("shard-admin")).chain(std::env::args_os().skip(1)),
    );
    let settings: ClusterSettings =
        config::load(cli.config.as_deref()).context("loading configuration")?;
    *redactor = settings.redactor();
    let _traces = admin::traces::init(
        config::load::<Traced>(cli.config.as_deref())
            .map(|traced| traced.tracing)
            .context("loading the [tracing] section"),
    );
    let router = settings.validate()?;
    let audit = audited(&cli.command, &settings);
    let result = dispatch(cli.command, &settings, router);
    if let Some(audit) = audit {
        match &result {
            Ok(()) => audit.done(),
            Err(e) => audit.refused_or_failed(outcome(e), &format!("{e:#}")),
        }
    }
    result
}

/// Whether an error refused the command or failed it: the command's own error type
/// decides, else the control plane's ([`Outcome::of`]).
fn outcome(error: &anyhow::Error) -> Outcome {
    error
        .chain()
        .find_map(|e| {
            if let Some(e) = e.downcast_ref::<admin::commands::export::ExportCommandError>() {
                Some(e.outcome())
            } else if let Some(e) = e.downcast_ref::<admin::commands::query::QueryCommandError>() {
                Some(e.outcome())
            } else if let Some(e) =
                e.downcast_ref::<admin::commands::changes::ChangesCommandError>()
            {
                Some(e.outcome())
            } else {
                e.downcast_ref::<admin::commands::index::IndexCommandError>()
                    .map(Judged::outcome)
            }
        })
        .unwrap_or_else(|| Outcome::of(error))
}

/// The configuration's `[tracing]` section, which the CLI shares with the gateway.
#[derive(Deserialize)]
struct Traced {
    #[serde(default)]
    tracing: TracingSettings,
}

/// The audit line of a command that changes something, to write once it is over;
/// `None` for a read-only command, and for `keys`, whose line names the key as changed.
fn audited(command: &Command, settings: &ClusterSettings) -> Option<Audit> {
    let (action, named) = match command {
        Command::Migrate => (
            "migrate",
            Named {
                database: Some(settings.database.dbname.clone()),
                ..Named::default()
            },
        ),
        Command::Init => ("init", admin::commands::map::metadata(settings)),
        Command::Map(command) => command.audited(settings)?,
        Command::MoveSlots(args) => ("move-slots", args.named()),
        Command::Moves(command) => command.audited()?,
        Command::AddShard(args) => ("add-shard", args.named()),
        Command::Import(args) => ("import", args.named()),
        Command::Imports(command) => command.audited()?,
        Command::RemoveShard(args) => ("remove-shard", args.named()),
        Command::Switchover(args) => (args.action(), args.named()),
        Command::Rebalance(args) => args.audited()?,
        Command::Seed(args) => ("seed", args.named(settings)),
        Command::Backup(args) => (
            "backup",
            Named {
                database: Some(format!("every server ({})", args.kind.as_str())),
                ..Named::default()
            },
        ),
        Command::Restore(args) if args.yes => (
            "restore",
            Named {
                database: Some(format!("every server to point {}", args.point)),
                ..Named::default()
            },
        ),
        Command::Index(command) => command.audited()?,
        Command::Keys(_)
        | Command::Restore(_)
        | Command::Export(_)
        | Command::Query(_)
        | Command::Changes(_)
        | Command::Backups(_)
        | Command::Locate { .. }
        | Command::Check
        | Command::Plan { .. }
        | Command::Bench(_) => return None,
    };
    Some(Audit::new(settings, action, named))
}

fn dispatch(command: Command, settings: &ClusterSettings, router: Router) -> anyhow::Result<()> {
    match command {
        Command::Migrate => {
            for line in admin::commands::map::follow_promotions(settings) {
                println!("{line}");
            }
            let applied = admin::migrate_cluster(settings)?;
            for (i, (primary, versions)) in applied.iter().enumerate() {
                if versions.is_empty() {
                    println!("shard-{i} ({primary}): up to date");
                } else {
                    println!("shard-{i} ({primary}): applied {}", versions.join(", "));
                }
            }
        }
        Command::Init => print!("{}", admin::commands::map::init(settings)?),
        Command::Map(command) => print!("{}", admin::commands::map::run(settings, command)?),
        Command::MoveSlots(args) => {
            print!("{}", admin::commands::moves::move_slots(settings, args)?)
        }
        Command::Moves(command) => print!("{}", admin::commands::moves::run(settings, command)?),
        Command::RemoveShard(args) => {
            print!(
                "{}",
                admin::commands::remove_shard::remove_shard(settings, args)?
            )
        }
        Command::Switchover(args) => {
            print!(
                "{}",
                admin::commands::switchover::switchover(settings, args)?
            )
        }
        Command::Rebalance(args) => {
            print!("{}", admin::commands::rebalance::rebalance(settings, args)?)
        }
        Command::Import(args) => print!("{}", admin::commands::import::import(settings, args)?),
        Command::Imports(command) => print!("{}", admin::commands::import::run(settings, command)?),
        Command::Export(args) => print!("{}", admin::commands::export::export(settings, args)?),
        Command::Query(args) => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            admin::commands::query::run(settings, args, &mut out)?
        }
        Command::Changes(command) => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let mut log = std::io::stderr().lock();
            admin::commands::changes::run(settings, command, &mut out, &mut log)?
        }
        Command::Backup(args) => print!("{}", admin::commands::backup::backup(settings, args)?),
        Command::Restore(args) => print!("{}", admin::commands::backup::restore(settings, args)?),
        Command::Backups(command) => print!("{}", admin::commands::backup::run(settings, command)?),
        Command::AddShard(args) => {
            print!("{}", admin::commands::add_shard::add_shard(settings, args)?)
        }
        Command::Keys(command) => {
            let printed = admin::commands::keys::run(settings, command)?;
            print!("{}", printed.out);
            eprint!("{}", printed.note);
        }
        Command::Index(command) => print!("{}", admin::commands::index::run(settings, command)?),
        Command::Locate { key } => {
            let (router, note) = admin::commands::map::router_for(settings, router);
            if let Some(note) = note {
                eprintln!("note: {note}");
            }
            let p = router.route(ShardKey::parse(&key)?)?.placement();
            println!(
                "key {key:?}: hash {:#018x}, slot {} of {}, {} (map {})",
                p.hash,
                p.slot,
                router.slot_count(),
                p.shard,
                router.version()
            );
        }
        Command::Check => {
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
        Command::Plan {
            add_shard: _,
            table,
            json,
        } => {
            let plan = admin::tools::plan::plan_add_shard(settings, &router, table.as_deref())?;
            if json {
                println!("{}", serde_json::to_string_pretty(&plan)?);
            } else {
                print!("{}", admin::tools::plan::report::render(&plan));
            }
        }
        Command::Seed(args) => {
            let (settings, router, note) = admin::commands::map::placement(settings, router);
            if let Some(note) = note {
                eprintln!("note: {note}");
            }
            let summary = admin::tools::seed::seed(&settings, &router, &args)?;
            println!("{summary}");
        }
        Command::Bench(args) => {
            let report = admin::tools::bench::bench(settings, &router, &args)?;
            print!("{report}");
        }
    }
    Ok(())
}
