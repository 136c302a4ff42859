//! `shard-admin seed`: generates realistic records ([`crate::tools::generate`]) and loads
//! them, routed by the configured strategy, straight into the shards' primaries.
//!
//! Pipeline: the calling thread generates records in order and routes each one
//! (storing its `slot` as the gateway does); one writer thread per shard owns one
//! connection and receives full batches over a bounded channel
//! (`sync_channel(QUEUED_BATCHES)`), so at most `shards × (QUEUED_BATCHES + 2)`
//! batches exist at once and memory stays flat however many rows are asked for.
//!
//! Each batch is one statement, `INSERT … SELECT FROM unnest($2::text[], …) ON CONFLICT
//! DO UPDATE`: five parameters (four arrays) whatever the batch size (a multi-row `VALUES` list
//! hits PostgreSQL's 65,535-parameter limit at 13,107 rows and is planned afresh for
//! every size), and the same upsert semantics as the gateway (`version` from the
//! sequence, `updated_at = now()`), so seeding twice with the same seed rewrites the
//! same records instead of failing. Plain `COPY` cannot upsert, and is not much faster
//! here: index upkeep (the GIN index on `data` above all) dominates. Measured on one
//! primary of the local topology, 100,000 `users` rows: `COPY` into `records` 5.7 s,
//! `COPY` into a staging table then the same set-based upsert 6.8 s.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use diesel::pg::PgConnection;
use diesel::sql_types::{Array, Integer, Text};
use diesel::RunQueryDsl;

use crate::audit::Named;
use crate::connect::{connect, CommandError};
use crate::tools::generate::Generator;
use crate::tools::plan::report::thousands;
use crate::tools::progress::{Bars, Tracker};
use shard_manager::config::ClusterSettings;
use shard_manager::routing::Router;
use shard_manager::routing::ShardKey;
use shard_manager::store::table::Tables;

/// Full batches waiting for each writer.
const QUEUED_BATCHES: usize = 2;
/// Largest `--batch`.
const MAX_BATCH: usize = 50_000;

const UPSERT_BATCH: &str = "\
    INSERT INTO records (table_name, shard_key, id, slot, data) \
    SELECT $1, k, i, s, d::jsonb FROM unnest($2::text[], $3::text[], $4::int4[], $5::text[]) \
         AS batch(k, i, s, d) \
    ON CONFLICT (table_name, shard_key, id) DO UPDATE SET \
        data = excluded.data, slot = excluded.slot, \
        version = nextval('record_version_seq'), updated_at = now()";

/// `seed` options.
#[derive(Debug, Clone, clap::Args)]
pub struct SeedArgs {
    /// The logical table to fill (one of `tables.allowed`).
    #[arg(long)]
    pub table: String,
    /// How many records to generate.
    #[arg(long, default_value_t = 100_000)]
    pub rows: u64,
    /// The same seed gives the same records.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Records per statement.
    #[arg(long, default_value_t = 5_000)]
    pub batch: usize,
    /// Distinct shard keys the records are spread over (default: rows / 10).
    #[arg(long)]
    pub keys: Option<u64>,
}

impl SeedArgs {
    /// What the audit line names: the table, the shards' database, the options.
    pub fn named(&self, settings: &ClusterSettings) -> Named {
        let mut options = format!(
            "--rows {} --seed {} --batch {}",
            self.rows, self.seed, self.batch
        );
        if let Some(keys) = self.keys {
            options += &format!(" --keys {keys}");
        }
        Named {
            table: Some(self.table.clone()),
            database: Some(settings.database.dbname.clone()),
            options: Some(options),
            ..Named::default()
        }
    }
}

/// What was loaded, and how fast.
#[derive(Debug, Clone)]
pub struct SeedSummary {
    pub table: String,
    pub rows: u64,
    pub keys: u64,
    pub per_shard: Vec<u64>,
    pub elapsed: Duration,
}

impl std::fmt::Display for SeedSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let shards: Vec<String> = self
            .per_shard
            .iter()
            .enumerate()
            .map(|(i, n)| format!("shard-{i}: {}", thousands(*n)))
            .collect();
        write!(
            f,
            "seeded {} {} records over {} keys in {secs:.1}s ({} rows/s); {}",
            thousands(self.rows),
            self.table,
            thousands(self.keys),
            thousands((self.rows as f64 / secs) as u64),
            shards.join(", ")
        )
    }
}

/// One shard's batch, column by column (as the statement binds it).
#[derive(Debug, Default)]
struct Batch {
    keys: Vec<String>,
    ids: Vec<String>,
    slots: Vec<i32>,
    /// Serialized JSON documents: about half the memory of `Value`s.
    data: Vec<String>,
}

impl Batch {
    fn with_capacity(n: usize) -> Self {
        Self {
            keys: Vec::with_capacity(n),
            ids: Vec::with_capacity(n),
            slots: Vec::with_capacity(n),
            data: Vec::with_capacity(n),
        }
    }

    fn len(&self) -> usize {
        self.ids.len()
    }
}

/// Generates `args.rows` records and upserts them into the shards; see the module doc.
pub fn seed(
    settings: &ClusterSettings,
    router: &Router,
    args: &SeedArgs,
) -> Result<SeedSummary, CommandError> {
    let tables = Tables::new(settings.tables.allowed.clone());
    let table = tables
        .parse(&args.table)
        .map_err(|e| CommandError::Usage(e.to_string()))?;
    if args.rows == 0 || !(1..=MAX_BATCH).contains(&args.batch) {
        return Err(CommandError::Usage(format!(
            "--rows must be at least 1 and --batch 1 to {MAX_BATCH}"
        )));
    }
    let keys = args.keys.unwrap_or(args.rows / 10).max(1);
    let generator = Generator::new(table.as_str(), args.seed, keys, router.is_numeric());
    let route = |key: &str| -> Result<_, CommandError> {
        let key = ShardKey::parse(key).map_err(|e| CommandError::Usage(e.to_string()))?;
        router
            .route(key)
            .map(|routed| routed.placement())
            .map_err(|e| CommandError::Usage(e.to_string()))
    };

    // Exact per-shard totals for the bars: keys alone are cheap to draw.
    let mut per_shard = vec![0u64; settings.shards.len()];
    for n in 0..args.rows {
        per_shard[route(&generator.key(n))?.shard.index()] += 1;
    }
    let labels: Vec<(String, u64)> = per_shard
        .iter()
        .enumerate()
        .map(|(i, n)| (format!("shard-{i}"), *n))
        .collect();
    let bars = Bars::new(&labels);

    let started = Instant::now();
    let (senders, writers) = spawn_writers(settings, &args.table, &bars)?;
    let mut buffers: Vec<Batch> = (0..senders.len())
        .map(|_| Batch::with_capacity(args.batch))
        .collect();
    for n in 0..args.rows {
        let record = generator.record(n);
        let placement = route(&record.shard_key)?;
        let i = placement.shard.index();
        let buffer = &mut buffers[i];
        buffer.keys.push(record.shard_key);
        buffer.ids.push(record.id);
        buffer.slots.push(placement.slot.0 as i32);
        buffer.data.push(record.data.to_string());
        if buffer.len() >= args.batch {
            let full = std::mem::replace(buffer, Batch::with_capacity(args.batch));
            // A closed channel means that writer failed; its error is reported below.
            if senders[i].send(full).is_err() {
                break;
            }
        }
    }
    for (tx, rest) in senders.into_iter().zip(buffers) {
        if rest.len() > 0 {
            let _ = tx.send(rest);
        }
    }
    let mut written = Vec::with_capacity(writers.len());
    for (i, handle) in writers.into_iter().enumerate() {
        let result = handle
            .join()
            .map_err(|_| CommandError::WorkerPanicked(format!("seed-shard-{i} writer")))?;
        written.push(result?);
    }
    bars.finish();
    Ok(SeedSummary {
        table: args.table.clone(),
        rows: written.iter().sum(),
        keys,
        per_shard: written,
        elapsed: started.elapsed(),
    })
}

/// Channels to, and handles of, one writer thread per shard.
type Writers = (
    Vec<SyncSender<Batch>>,
    Vec<JoinHandle<Result<u64, CommandError>>>,
);

/// Connects to every primary and starts its writer thread.
fn spawn_writers(
    settings: &ClusterSettings,
    table: &str,
    bars: &Bars,
) -> Result<Writers, CommandError> {
    let mut senders = Vec::new();
    let mut writers = Vec::new();
    for (i, shard) in settings.shards.iter().enumerate() {
        let (tx, rx) = sync_channel::<Batch>(QUEUED_BATCHES);
        let db = &settings.database;
        let conn = connect(db, &shard.primary, &db.dbname)?;
        let (server, table, tracker) = (shard.primary.clone(), table.to_owned(), bars.tracker(i));
        let handle = thread::Builder::new()
            .name(format!("seed-shard-{i}"))
            .spawn(move || write_batches(conn, &server, &table, rx, &tracker))
            .map_err(CommandError::Spawn)?;
        senders.push(tx);
        writers.push(handle);
    }
    Ok((senders, writers))
}

/// A shard's writer: upserts every batch it receives; returns the rows written.
fn write_batches(
    mut conn: PgConnection,
    server: &str,
    table: &str,
    batches: Receiver<Batch>,
    tracker: &Tracker,
) -> Result<u64, CommandError> {
    let mut rows = 0;
    for batch in batches {
        let n = batch.len() as u64;
        diesel::sql_query(UPSERT_BATCH)
            .bind::<Text, _>(table)
            .bind::<Array<Text>, _>(&batch.keys)
            .bind::<Array<Text>, _>(&batch.ids)
            .bind::<Array<Integer>, _>(&batch.slots)
            .bind::<Array<Text>, _>(&batch.data)
            .execute(&mut conn)
            .map_err(CommandError::query(server, "upserting a batch of records"))?;
        rows += n;
        tracker.inc(n);
    }
    Ok(rows)
}
