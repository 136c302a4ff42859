//! The phases in order. `start` records a move after checking it against the map;
//! `run` takes it from wherever it stands to done (the same call resumes a move whose
//! mover died). Undoing one (`abort`, `reverse`) is `undo`'s.

use std::time::Duration;

use tokio_postgres::Client;
use tracing::Instrument;

use super::fault::fault;
use super::plan::{self, Which};
use super::replay::SlotLog;
use super::shard_conn::ShardConn;
use super::state::{ranges, Move, Phase};
use super::store::{Moves, NewMove};
use super::{caches, capture, copy, spans, switch, MoveError};
use crate::jobs::replay::{catch_up, CatchUp};
use crate::map::{gateways, meta, ownership, schema, ShardMap};
use shard_manager::config::ClusterSettings;

/// Slots copied per transaction.
const GROUP: usize = 64;
/// Catching up: until few enough logged changes are left to replay under the fence.
/// A move never gives up on it (it is stopped by killing the mover).
const CATCH_UP: CatchUp = CatchUp {
    batch: 2000,
    fence_backlog: 200,
    max_passes: usize::MAX,
};
/// How long a shard may stay unreachable before the mover gives up (and says so).
const SHARD_PATIENCE: u32 = 30;

/// What a new move is asked to do.
#[derive(Debug, Clone)]
pub struct Request {
    pub kind: String,
    pub from: u32,
    pub to: u32,
    pub which: Which,
}

pub(super) async fn open_meta(settings: &ClusterSettings) -> Result<Client, MoveError> {
    let mut conn = meta::connect(settings).await?;
    schema::apply(&mut conn.client).await?;
    Ok(conn.client)
}

pub(super) async fn load(client: &mut Client) -> Result<ShardMap, MoveError> {
    Ok(meta::load(client)
        .await?
        .ok_or(crate::map::MapError::NotInitialised)?)
}

/// Records a move after checking it against the stored map and the active moves.
/// Nothing is recorded when it is refused.
pub async fn start(settings: &ClusterSettings, request: &Request) -> Result<Move, MoveError> {
    let mut client = open_meta(settings).await?;
    let locked: bool = client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&schema::ADMIN_LOCK])
        .await?
        .get(0);
    if !locked {
        return Err(MoveError::Refused(
            "another map command is running (it holds the map lock); run this one when it is done"
                .into(),
        ));
    }
    let map = load(&mut client).await?;
    let slots =
        plan::choose(&map, request.from, request.to, &request.which).map_err(MoveError::Refused)?;
    let moves = Moves::new(&client);
    if let Some(other) = moves.holding(&slots).await?.first() {
        let mine: Vec<i32> = slots
            .iter()
            .filter(|s| other.detail.slots.contains(s))
            .copied()
            .collect();
        return Err(MoveError::Refused(format!(
            "slot(s) {} are already moving in move {} ({}, {} -> {}): wait for it, or `shard-admin moves abort {}`",
            ranges(&mine),
            other.id,
            other.phase.as_str(),
            other.detail.source,
            other.detail.target,
            other.id
        )));
    }
    let id = moves
        .create(&NewMove {
            kind: &request.kind,
            source: shard_manager::routing::ShardId(request.from),
            target: shard_manager::routing::ShardId(request.to),
            slots: &slots,
            map_before: map.version.0 as i64,
            actor: &meta::actor(),
        })
        .await?;
    client
        .execute("SELECT pg_advisory_unlock($1)", &[&schema::ADMIN_LOCK])
        .await?;
    Ok(moves.get(id).await?)
}

/// Takes move `id` from where it stands to done, calling `progress` after each step.
/// A shard that stops answering is waited for (up to half a minute; a promoted replica
/// is found by reading the map again), and so is a map that changed under the mover's
/// store (a failover recorded meanwhile); then the move stops where it is, to be
/// resumed.
///
/// With spans recorded, the run is a trace of its own ([`spans::move_slot`]), linked
/// with the span that started it (a balancer's round), each phase a child.
pub async fn run(
    settings: &ClusterSettings,
    id: i64,
    progress: &mut (dyn FnMut(&Move) + Send),
) -> Result<Move, MoveError> {
    let mut client = open_meta(settings).await?;
    let claimed = Moves::new(&client).claim(id).await?;
    let span = spans::move_slot(&claimed);
    spans::started_by(&span);
    let ran = phases(settings, &mut client, id, progress)
        .instrument(span.clone())
        .await;
    match &ran {
        Ok(mv) => spans::ended(&span, mv),
        Err(e) => {
            if let Ok(mv) = Moves::new(&client).get(id).await {
                spans::ended(&span, &mv);
            }
            spans::failed(&span, e);
        }
    }
    ran
}

/// The phases of claimed move `id`, one after another, each tried again after a
/// failure worth another try.
async fn phases(
    settings: &ClusterSettings,
    client: &mut Client,
    id: i64,
    progress: &mut (dyn FnMut(&Move) + Send),
) -> Result<Move, MoveError> {
    let mut failures = 0;
    // The two primaries' connections, kept from phase to phase; opened again after a
    // failure.
    let mut shards: Option<(ShardConn, ShardConn)> = None;
    loop {
        let map = load(client).await?;
        let mv = Moves::new(client).get(id).await?;
        if !mv.phase.active() {
            progress(&mv);
            return Ok(mv);
        }
        let opened = match shards.take() {
            Some(pair) => Ok(pair),
            None => open_shards(settings, &map, &mv).await,
        };
        let done = match opened {
            Ok((source, target)) => {
                let done = advance(settings, client, id, (&source, &target), &map, progress).await;
                // Kept for the next phase unless they failed.
                if done.is_ok() {
                    shards = Some((source, target));
                }
                done
            }
            Err(e) => Err(e),
        };
        match done {
            Ok(()) => failures = 0,
            Err(e) if failures < SHARD_PATIENCE && e.retry_after().is_some() => {
                failures += 1;
                let wait = e.retry_after().unwrap_or_default();
                tracing::warn!(move_id = id, error = %e, wait_ms = wait.as_millis() as u64, "a step failed; trying again");
                spans::retried(failures, wait.as_millis() as u64, &e);
                let note = format!("waiting: {e}");
                Moves::new(client).set_note(id, &note).await?;
                tokio::time::sleep(wait).await;
            }
            Err(e) => {
                let _ = Moves::new(client).set_note(id, &e.to_string()).await;
                return Err(e);
            }
        }
    }
}

/// Connections to the move's source and target primaries.
async fn open_shards(
    settings: &ClusterSettings,
    map: &ShardMap,
    mv: &Move,
) -> Result<(ShardConn, ShardConn), MoveError> {
    let source = ShardConn::open(settings, map, mv.detail.source).await?;
    let target = ShardConn::open(settings, map, mv.detail.target).await?;
    Ok((source, target))
}

/// One phase, to its end.
async fn advance(
    settings: &ClusterSettings,
    client: &mut Client,
    id: i64,
    (source, target): (&ShardConn, &ShardConn),
    map: &ShardMap,
    progress: &mut (dyn FnMut(&Move) + Send),
) -> Result<(), MoveError> {
    let mv = Moves::new(client).get(id).await?;
    progress(&mv);
    let span = spans::phase(mv.phase);
    let done = step(settings, client, (source, target), map, &mv, progress)
        .instrument(span.clone())
        .await;
    if let Err(e) = &done {
        spans::failed(&span, e);
    }
    done
}

/// The phase move `mv` stands in, to its end.
async fn step(
    settings: &ClusterSettings,
    client: &mut Client,
    (source, target): (&ShardConn, &ShardConn),
    map: &ShardMap,
    mv: &Move,
    progress: &mut (dyn FnMut(&Move) + Send),
) -> Result<(), MoveError> {
    let id = mv.id;
    let slots = &mv.detail.slots;
    match mv.phase {
        Phase::Capturing => {
            capture::start(source, id, slots).await?;
            caches::abandon_target(settings, client, target).await?;
            fault("capture");
            let total = capture::count(source, slots).await?;
            let moves = Moves::new(client);
            moves.set_total(id, total).await?;
            Ok(moves
                .set_phase(id, mv.phase, Phase::Copying, "copying")
                .await?)
        }
        Phase::Copying => {
            let moves = Moves::new(client);
            let left: Vec<i32> = slots
                .iter()
                .filter(|s| !mv.detail.copied_slots.contains(s))
                .copied()
                .collect();
            let limit = settings.replication.max_lag_bytes;
            for group in left.chunks(GROUP) {
                let waited = copy::throttle(target, limit, Duration::from_secs(30)).await?;
                if waited > Duration::from_millis(100) {
                    spans::throttled(waited.as_millis() as u64, limit);
                    let note = format!(
                        "throttled {} ms: a replica of {} lagged over {limit} bytes",
                        waited.as_millis(),
                        target.shard
                    );
                    moves.set_note(id, &note).await?;
                }
                let rows = copy::group(source, target, group).await?;
                spans::copied(group.len(), rows);
                fault("copy");
                moves.copied_slots(id, group, rows as i64).await?;
                progress(&moves.get(id).await?);
            }
            copy::align_versions(source, target).await?;
            Ok(moves
                .set_phase(id, mv.phase, Phase::CatchingUp, "catching up")
                .await?)
        }
        Phase::CatchingUp => {
            // After a switch that did not happen, the target may still think it owns
            // the slots: it is told the stored map again.
            ownership::tell(settings, map, target.shard).await?;
            let moves = Moves::new(client);
            let mut log = SlotLog { source, target, id };
            let mut report = |mv: &Move| {
                fault("replay");
                progress(mv)
            };
            catch_up(&moves, id, &mut log, CATCH_UP, &mut report).await?;
            let next = switch::next_map(map, mv)?;
            moves.set_map_after(id, next.version.0 as i64).await?;
            Ok(moves
                .set_phase(id, mv.phase, Phase::Switching, "switching")
                .await?)
        }
        Phase::Switching => switching(settings, client, source, target, map, mv).await,
        Phase::Cleaning => cleaning(settings, client, source, mv).await,
        Phase::Done | Phase::Aborted => Ok(()),
    }
}

/// The fence, or what a mover killed during it left: the source owns all of the slots
/// (nothing switched), none (it switched; the map may still need storing), or some
/// (never left by the mover: refused).
async fn switching(
    settings: &ClusterSettings,
    client: &mut Client,
    source: &ShardConn,
    target: &ShardConn,
    map: &ShardMap,
    mv: &Move,
) -> Result<(), MoveError> {
    let switched = (Phase::Switching, Phase::Cleaning);
    let slots = &mv.detail.slots;
    if slots
        .iter()
        .all(|s| map.owners[*s as usize] == mv.detail.target)
    {
        // Stored already, at this version or before: cleaning waits for it.
        let moves = Moves::new(client);
        moves.set_map_after(mv.id, map.version.0 as i64).await?;
        return Ok(moves.fenced(mv.id, switched, None, "switched").await?);
    }
    // The version the switch stores is one past the map as it is now, not as it was
    // when catching up began (a failover may have been recorded since): cleaning waits
    // for every gateway to route with this one.
    let next = switch::next_map(map, mv)?;
    Moves::new(client)
        .set_map_after(mv.id, next.version.0 as i64)
        .await?;
    let owns = switch::source_owns(source, slots).await?;
    if owns == 0 {
        // Switched, and maybe not told: the caches hear of the raised epoch first.
        let live = caches::current(source).await?;
        caches::retire(settings, client, source.shard, live).await?;
        switch::store_next(client, map, &next, mv).await?;
        return Ok(Moves::new(client)
            .fenced(mv.id, switched, None, "switched")
            .await?);
    }
    if owns != slots.len() {
        return Err(MoveError::Corrupt(format!(
            "{} owns {owns} of move {}'s {} slots: run `shard-admin map sync`, then resume",
            source.shard,
            mv.id,
            slots.len()
        )));
    }
    let span = spans::fence();
    let fenced = switch::run(settings, client, (source, target), mv, map)
        .instrument(span.clone())
        .await;
    match &fenced {
        Ok(fence) => {
            span.record("shardgate.fence_ms", fence.total_ms());
        }
        Err(e) => spans::failed(&span, e),
    }
    match fenced {
        Ok(fence) => {
            tracing::info!(move_id = mv.id, "switched: {fence}");
            let note = format!("switched: {fence}");
            let moves = Moves::new(client);
            Ok(moves
                .fenced(mv.id, switched, Some(fence.total_ms()), &note)
                .await?)
        }
        Err(e @ MoveError::Verify(_)) => {
            let back = Phase::CatchingUp;
            Moves::new(client)
                .set_phase(mv.id, mv.phase, back, &e.to_string())
                .await?;
            Err(e)
        }
        Err(e) => Err(e),
    }
}

/// Once every live gateway routes with the next map, the source's rows go.
async fn cleaning(
    settings: &ClusterSettings,
    client: &mut Client,
    source: &ShardConn,
    mv: &Move,
) -> Result<(), MoveError> {
    let after = mv.detail.map_after.unwrap_or(mv.detail.map_before + 1) as u64;
    let ttl = settings.metadata.gateway_ttl_ms;
    loop {
        let live = gateways::live(client, ttl).await?;
        let behind: Vec<String> = live
            .iter()
            .filter(|g| g.map_version < after)
            .map(|g| format!("{} (map v{})", g.address, g.map_version))
            .collect();
        if behind.is_empty() {
            break;
        }
        let note = format!(
            "waiting for gateway(s) {} to route with map v{after}",
            behind.join(", ")
        );
        Moves::new(client).set_note(mv.id, &note).await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    fault("clean");
    let deleted = capture::delete_rows(source, &mv.detail.slots).await?;
    capture::stop(source, mv.id).await?;
    let note = format!(
        "done: {} source row(s) deleted after every live gateway routed with map v{after}",
        deleted
    );
    Ok(Moves::new(client)
        .set_phase(mv.id, mv.phase, Phase::Done, &note)
        .await?)
}
