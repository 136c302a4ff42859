//! `shard-admin move-slots` and `shard-admin moves ...`: slots moved between shards
//! online, from the command line. A move draws a progress bar (rows copied, rows/s,
//! ETA) on a terminal and prints each phase as it starts; it ends with a summary. A
//! refused command changed nothing and says why; a move that stopped says how to go on.

use std::time::{Duration, Instant};

use crate::audit::Named;
use crate::tools::plan::report::thousands;
use control_plane::moves::plan::Which;
use control_plane::moves::state::ranges;
use control_plane::moves::{mover, stuck, undo, Move, MoveError, Moves, Phase};
use shard_manager::config::ClusterSettings;
use shard_manager::routing::ShardId;

/// `move-slots`: which slots go where.
#[derive(Debug, clap::Args)]
pub struct MoveSlotsArgs {
    /// The shard giving the slots.
    #[arg(long)]
    pub from: u32,
    /// The shard taking them.
    #[arg(long)]
    pub to: u32,
    /// The slots, e.g. `0-15,40`.
    #[arg(long, conflicts_with = "count", required_unless_present = "count")]
    pub slots: Option<String>,
    /// Or this many of the source's slots (its highest-numbered ones).
    #[arg(long)]
    pub count: Option<u32>,
}

/// The `moves` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum MovesCommand {
    /// Every active move and the newest finished ones: phase, slots, rows, ETA, and
    /// what to do about a stopped one.
    Status {
        /// One move only.
        id: Option<i64>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Continue a stopped move from where it stands.
    Resume { id: i64 },
    /// Roll back a move that has not switched: the target's copies are deleted.
    Abort { id: i64 },
    /// Move a finished move's slots back to its source (a new move).
    Reverse { id: i64 },
}

impl MoveSlotsArgs {
    /// What the audit line names: the two shards, and the slots or their count.
    pub fn named(&self) -> Named {
        Named {
            from: Some(ShardId(self.from).to_string()),
            to: Some(ShardId(self.to).to_string()),
            slots: self.slots.clone(),
            options: self.count.map(|n| format!("--count {n}")),
            ..Named::default()
        }
    }
}

impl MovesCommand {
    /// The audit line's action and the move it names; `None` for `status`.
    pub fn audited(&self) -> Option<(&'static str, Named)> {
        let (action, id) = match self {
            Self::Status { .. } => return None,
            Self::Resume { id } => ("moves resume", id),
            Self::Abort { id } => ("moves abort", id),
            Self::Reverse { id } => ("moves reverse", id),
        };
        let named = Named {
            move_id: Some(*id),
            ..Named::default()
        };
        Some((action, named))
    }
}

pub(super) fn runtime() -> Result<tokio::runtime::Runtime, MoveError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| MoveError::Refused(format!("cannot start a runtime: {e}")))
}

/// `move-slots`: records the move, then runs it to the end.
pub fn move_slots(settings: &ClusterSettings, args: MoveSlotsArgs) -> Result<String, MoveError> {
    let which = match (args.slots, args.count) {
        (Some(list), _) => Which::List(list),
        (None, Some(n)) => Which::Count(n),
        (None, None) => return Err(MoveError::Refused("give --slots or --count".into())),
    };
    let request = mover::Request {
        kind: "move-slots".into(),
        from: args.from,
        to: args.to,
        which,
    };
    let rt = runtime()?;
    let mv = rt.block_on(mover::start(settings, &request))?;
    eprintln!("move {}: {}", mv.id, what(&mv));
    drive(&rt, settings, mv.id)
}

/// Runs one `moves` subcommand; returns what to print.
pub fn run(settings: &ClusterSettings, command: MovesCommand) -> Result<String, MoveError> {
    let rt = runtime()?;
    match command {
        MovesCommand::Status { id, json } => {
            let moves = rt.block_on(async {
                let conn = control_plane::map::meta::connect(settings).await?;
                let moves = Moves::new(&conn.client);
                Ok::<_, MoveError>(match id {
                    Some(id) => vec![moves.get(id).await?],
                    None => moves.list(10).await?,
                })
            });
            let moves = match moves {
                Err(MoveError::NoMoves) => Vec::new(),
                other => other?,
            };
            let after = settings.moves.stuck_after();
            if json {
                let shown: Vec<Shown> = moves.iter().map(|mv| Shown::new(mv, after)).collect();
                return Ok(serde_json::to_string_pretty(&shown).unwrap_or_default() + "\n");
            }
            Ok(status(&moves, after))
        }
        MovesCommand::Resume { id } => drive(&rt, settings, id),
        MovesCommand::Abort { id } => {
            let mv = rt.block_on(undo::abort(settings, id))?;
            Ok(format!("move {}: {}\n", mv.id, mv.note))
        }
        MovesCommand::Reverse { id } => {
            let mv = rt.block_on(undo::reverse(settings, id))?;
            eprintln!("move {} reverses move {id}: {}", mv.id, what(&mv));
            drive(&rt, settings, mv.id)
        }
    }
}

/// Runs move `id` to its end with a progress bar; the summary.
pub(super) fn drive(
    rt: &tokio::runtime::Runtime,
    settings: &ClusterSettings,
    id: i64,
) -> Result<String, MoveError> {
    let started = Instant::now();
    let bar = crate::tools::progress::phase_bar();
    let mut phase = None;
    let mut progress = |mv: &Move| {
        if phase != Some(mv.phase) {
            phase = Some(mv.phase);
            bar.suspend(|| eprintln!("move {}: {}", mv.id, mv.phase.as_str()));
            bar.set_prefix(mv.phase.as_str());
        }
        bar.set_length(mv.rows_total.max(0) as u64);
        bar.set_position(mv.rows_copied.max(0) as u64);
        bar.set_message(format!("behind {}", mv.rows_behind));
    };
    let done = rt.block_on(mover::run(settings, id, &mut progress));
    bar.finish_and_clear();
    let mv = done.map_err(|e| match e {
        MoveError::Refused(_) | MoveError::UnknownMove(_) | MoveError::NoMoves => e,
        e => MoveError::Stopped {
            id,
            cause: Box::new(e),
        },
    })?;
    Ok(summary(&mv, started.elapsed().as_secs_f64()))
}

/// "16 slot(s) 0-15 from shard-0 to shard-2".
pub(super) fn what(mv: &Move) -> String {
    format!(
        "{} slot(s) {} from {} to {}",
        mv.detail.slots.len(),
        ranges(&mv.detail.slots),
        mv.detail.source,
        mv.detail.target
    )
}

fn summary(mv: &Move, secs: f64) -> String {
    match mv.phase {
        Phase::Done => format!(
            "move {} done in {secs:.1} s: {}; {} rows copied ({}/s), {} changes replayed, writes paused {} ms at the switch; map v{} -> v{}\n",
            mv.id,
            what(mv),
            thousands(mv.rows_copied as u64),
            thousands((mv.rows_copied as f64 / secs.max(0.001)) as u64),
            thousands(mv.rows_replayed as u64),
            mv.fence_ms.map_or("?".into(), |ms| ms.to_string()),
            mv.detail.map_before,
            mv.detail.map_after.unwrap_or(mv.detail.map_before)
        ),
        _ => format!("move {}: {} ({})\n", mv.id, mv.phase.as_str(), mv.note),
    }
}

/// A move as `moves status --json` prints it: its record's columns, and `stuck` (null
/// unless it is: see [`stuck`]).
#[derive(serde::Serialize)]
struct Shown<'a> {
    id: i64,
    kind: &'a str,
    source: ShardId,
    target: ShardId,
    slots: &'a [i32],
    phase: &'static str,
    copied_slots: &'a [i32],
    rows_total: i64,
    rows_copied: i64,
    rows_replayed: i64,
    rows_behind: i64,
    map_before: i64,
    map_after: Option<i64>,
    fence_ms: Option<i64>,
    note: &'a str,
    actor: &'a str,
    age_secs: f64,
    idle_secs: f64,
    running: bool,
    stuck: Option<stuck::StuckMove>,
}

impl<'a> Shown<'a> {
    fn new(mv: &'a Move, stuck_after: Duration) -> Self {
        let d = &mv.detail;
        Self {
            id: mv.id,
            kind: &d.kind,
            source: d.source,
            target: d.target,
            slots: &d.slots,
            phase: mv.phase.as_str(),
            copied_slots: &d.copied_slots,
            rows_total: mv.rows_total,
            rows_copied: mv.rows_copied,
            rows_replayed: mv.rows_replayed,
            rows_behind: mv.rows_behind,
            map_before: d.map_before,
            map_after: d.map_after,
            fence_ms: mv.fence_ms,
            note: &mv.note,
            actor: &mv.actor,
            age_secs: mv.age_secs,
            idle_secs: mv.idle_secs,
            running: mv.running,
            stuck: stuck::judge(mv, 0.0, stuck_after),
        }
    }
}

/// The moves as a table, then one line of advice per move, then a warning for each
/// move stopped `after` or longer ago (at the switch: at once).
pub fn status(moves: &[Move], after: Duration) -> String {
    if moves.is_empty() {
        return "no moves recorded\n".into();
    }
    let mut out = format!(
        "{:<5} {:<11} {:<12} {:<9} {:<16} {:>12} {:>8} {:>8} {:>7}\n",
        "MOVE", "KIND", "PHASE", "SHARDS", "SLOTS", "COPIED", "BEHIND", "ETA", "FENCE"
    );
    for m in moves {
        let slots = ranges(&m.detail.slots);
        out += &format!(
            "{:<5} {:<11} {:<12} {:<9} {:<16} {:>12} {:>8} {:>8} {:>7}\n",
            m.id,
            m.detail.kind,
            m.phase.as_str(),
            format!("{}->{}", m.detail.source.0, m.detail.target.0),
            if slots.len() > 16 {
                format!("{}...", &slots[..13])
            } else {
                slots
            },
            format!(
                "{}/{}",
                thousands(m.rows_copied as u64),
                thousands(m.rows_total as u64)
            ),
            thousands(m.rows_behind as u64),
            m.eta_secs().map_or("-".into(), |s| format!("{s:.0}s")),
            m.fence_ms.map_or("-".into(), |ms| format!("{ms}ms")),
        );
    }
    for m in moves
        .iter()
        .filter(|m| m.phase.active() || m.id == moves[0].id)
    {
        out += &format!("move {}: {}", m.id, m.advice());
        if !m.note.is_empty() {
            out += &format!(" (last: {})", m.note);
        }
        out += "\n";
    }
    for stuck in stuck::all(moves, 0.0, after) {
        out += &format!("warning: {}\n", stuck.warning);
    }
    out
}
