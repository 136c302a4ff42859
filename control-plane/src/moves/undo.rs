//! Undoing a move: `abort` rolls back one that has not switched; `reverse` records the
//! move that takes a finished one's slots back (run like any move, by `mover::run`).

use super::mover::{load, open_meta, start, Request};
use super::plan::Which;
use super::shard_conn::ShardConn;
use super::state::{ranges, Move, Phase};
use super::store::Moves;
use super::{capture, spans, switch, MoveError};
use crate::map::ownership;
use shard_manager::config::ClusterSettings;
use tracing::Instrument;

/// Rolls back a move that has not switched: the target forgets its copies, the source
/// stops logging. Refused while a mover runs it, and once it has switched.
///
/// With spans recorded, an abort is a trace of its own ([`spans::undo`]), its status an
/// error either way: the move was undone, or the abort refused.
pub async fn abort(settings: &ClusterSettings, id: i64) -> Result<Move, MoveError> {
    let mut client = open_meta(settings).await?;
    let mv = Moves::new(&client).claim(id).await?;
    let span = spans::undo(&mv, "abort");
    let undone = roll_back(settings, &mut client, mv)
        .instrument(span.clone())
        .await;
    match &undone {
        Ok(mv) => spans::failed(&span, &mv.note),
        Err(e) => spans::failed(&span, e),
    }
    undone
}

/// Rolls back claimed move `mv`, unless it is over or has switched.
async fn roll_back(
    settings: &ClusterSettings,
    client: &mut tokio_postgres::Client,
    mv: Move,
) -> Result<Move, MoveError> {
    let id = mv.id;
    if !mv.phase.active() {
        return Err(MoveError::Refused(format!(
            "move {id} is already {}: nothing to abort",
            mv.phase.as_str()
        )));
    }
    let map = load(client).await?;
    let (slots, from, to) = (&mv.detail.slots, mv.detail.source, mv.detail.target);
    let source = ShardConn::open(settings, &map, from).await?;
    let switched = mv.phase.switched()
        || (mv.phase == Phase::Switching && switch::source_owns(&source, slots).await? == 0);
    if switched {
        return Err(MoveError::Refused(format!(
            "move {id} has switched: {to} owns the slots now; `shard-admin moves resume {id}` finishes it, then `shard-admin moves reverse {id}` moves them back",
        )));
    }
    let target = ShardConn::open(settings, &map, to).await?;
    ownership::tell(settings, &map, to).await?;
    let deleted = capture::delete_rows(&target, slots).await?;
    capture::stop(&source, id).await?;
    let note = format!("aborted: {deleted} copied row(s) deleted on {to}; {from} keeps the slots");
    let moves = Moves::new(client);
    moves.set_phase(id, mv.phase, Phase::Aborted, &note).await?;
    Ok(moves.get(id).await?)
}

/// Records the move that takes finished move `id`'s slots back to its source.
pub async fn reverse(settings: &ClusterSettings, id: i64) -> Result<Move, MoveError> {
    let client = open_meta(settings).await?;
    let mv = Moves::new(&client).get(id).await?;
    if mv.phase != Phase::Done {
        return Err(MoveError::Refused(format!(
            "move {id} is {}: only a finished (done) move can be reversed{}",
            mv.phase.as_str(),
            if mv.phase.active() {
                "; `moves abort` rolls back one that has not switched"
            } else {
                ""
            }
        )));
    }
    let request = Request {
        kind: "reverse".into(),
        from: mv.detail.target.0,
        to: mv.detail.source.0,
        which: Which::List(ranges(&mv.detail.slots)),
    };
    start(settings, &request).await
}
