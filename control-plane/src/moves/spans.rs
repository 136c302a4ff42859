//! The spans of moves and of the automatic balancer, for OpenTelemetry traces: plain
//! `tracing` spans and events, their fields named `shardgate.*`, as the request path's
//! are (`shard_manager::spans`). The gateway's OpenTelemetry layer exports them; this
//! crate depends on no OpenTelemetry crate.
//!
//! All share one target, [`TARGET`], at `DEBUG`: off in a subscriber that filters at
//! `INFO` (the admin CLI), and the gateway turns the target off outright when it
//! exports no traces. A span that is off costs a cached check and builds none of its
//! fields.
//!
//! - [`move_slot`]: one run of a move's mover (`move-slots`, `moves resume`, the
//!   balancer's moves) is a trace of its own, a root whatever span started it: its
//!   slots, shards, id, kind and map versions, and an error status when it stops.
//!   Whatever span was current when it began (a balancer's round) links to it, and it
//!   links back ([`started_by`]; `tracing`'s `follows_from`, which the OpenTelemetry
//!   layer turns into span links).
//! - [`phase`]: each phase the mover takes the move through (capture, copy, catch up,
//!   switch, clean), a child of the move's span, in order; [`fence`] and [`verify`]
//!   inside the switch.
//! - [`undo`]: an abort, a trace of its own with an error status (the move was undone).
//! - [`balance`]: one round of the automatic balancer, a root: the load per shard it
//!   weighed, its decision and why ([`decided`], [`move_decided`]).
//! - Events: [`retried`] (a step failed and is tried again), [`copied`], [`throttled`].

use tracing::field::Empty;
use tracing::{Level, Span};

use super::state::{ranges, Move, Phase};

/// The target of every span and event here.
pub const TARGET: &str = "shardgate::moves";

/// Whether a subscriber records this module's spans.
pub fn enabled() -> bool {
    tracing::enabled!(target: TARGET, Level::DEBUG)
}

/// One run of move `mv`'s mover, from the phase it stands in: a root span. Each field
/// is recorded once (an exporter keeps a field's first value).
pub fn move_slot(mv: &Move) -> Span {
    tracing::debug_span!(
        target: TARGET,
        parent: None,
        "move",
        otel.name = "move slot",
        otel.status_code = Empty,
        otel.status_message = Empty,
        shardgate.move_id = mv.id,
        shardgate.move.kind = mv.detail.kind.as_str(),
        shardgate.move.phase_at_start = mv.phase.as_str(),
        shardgate.move.phase_at_end = Empty,
        shardgate.slots = ranges(&mv.detail.slots).as_str(),
        shardgate.slot_count = mv.detail.slots.len(),
        shardgate.from_shard = mv.detail.source.0,
        shardgate.to_shard = mv.detail.target.0,
        shardgate.map_version_before = mv.detail.map_before,
        shardgate.map_version_after = Empty,
    )
}

/// Links `span` (a move's) and the span current now (what started it, e.g. a
/// balancer's round), both ways; nothing outside a span.
pub fn started_by(span: &Span) {
    if !enabled() || span.is_none() {
        return;
    }
    let starter = Span::current();
    if !starter.is_none() {
        starter.follows_from(span);
        span.follows_from(&starter);
    }
}

/// Where move `mv` ended this run: its phase, and the map version its switch stored.
pub fn ended(span: &Span, mv: &Move) {
    span.record("shardgate.move.phase_at_end", mv.phase.as_str());
    if let Some(after) = mv.detail.map_after {
        span.record("shardgate.map_version_after", after);
    }
}

/// The span stopped on `error` (a move that stopped part-way, a refused step).
pub fn failed(span: &Span, error: &dyn std::fmt::Display) {
    span.record("otel.status_code", "ERROR");
    span.record("otel.status_message", error.to_string().as_str());
}

/// The phase `phase` of the current move, to its end.
pub fn phase(phase: Phase) -> Span {
    tracing::debug_span!(
        target: TARGET,
        "phase",
        otel.name = match phase {
            Phase::Capturing => "capture",
            Phase::Copying => "copy",
            Phase::CatchingUp => "catch up",
            Phase::Switching => "switch",
            Phase::Cleaning => "clean",
            Phase::Done => "done",
            Phase::Aborted => "aborted",
        },
        otel.status_code = Empty,
        otel.status_message = Empty,
        shardgate.move.phase = phase.as_str(),
    )
}

/// The fence: the slots' write locks held on the source while they change hands;
/// `shardgate.fence_ms` is how long writes to them waited.
pub fn fence() -> Span {
    tracing::debug_span!(
        target: TARGET,
        "fence",
        otel.name = "fence",
        otel.status_code = Empty,
        otel.status_message = Empty,
        shardgate.fence_ms = Empty,
    )
}

/// Source against target, per slot, under the fence: rows checked, slots that differ.
pub fn verify() -> Span {
    tracing::debug_span!(
        target: TARGET,
        "verify",
        otel.name = "verify",
        otel.status_code = Empty,
        shardgate.rows_checked = Empty,
        shardgate.slots_differing = Empty,
    )
}

/// Undoing move `mv` (`how`: `abort`): a root span, an error status once done (the
/// move did not happen).
pub fn undo(mv: &Move, how: &'static str) -> Span {
    tracing::debug_span!(
        target: TARGET,
        parent: None,
        "undo",
        otel.name = "undo move",
        otel.status_code = Empty,
        otel.status_message = Empty,
        shardgate.undo = how,
        shardgate.move_id = mv.id,
        shardgate.move.kind = mv.detail.kind.as_str(),
        shardgate.move.phase = mv.phase.as_str(),
        shardgate.slots = ranges(&mv.detail.slots).as_str(),
        shardgate.slot_count = mv.detail.slots.len(),
        shardgate.from_shard = mv.detail.source.0,
        shardgate.to_shard = mv.detail.target.0,
        shardgate.map_version_before = mv.detail.map_before,
    )
}

/// One round of the automatic balancer: a root span, whose decision is recorded once
/// made ([`decided`]).
pub fn balance() -> Span {
    tracing::debug_span!(
        target: TARGET,
        parent: None,
        "balance",
        otel.name = "balance",
        otel.status_code = Empty,
        otel.status_message = Empty,
        shardgate.map_version = Empty,
        shardgate.balancer.load = Empty,
        shardgate.balancer.mean = Empty,
        shardgate.balancer.busiest = Empty,
        shardgate.balancer.decision = Empty,
        shardgate.balancer.reason = Empty,
        shardgate.balancer.reason_kind = Empty,
    )
}

/// What a balancer's round weighed: each shard's requests over the last minute, by
/// shard, at map version `version`.
pub fn weighed(version: u64, per_shard: &[u64]) {
    if !enabled() {
        return;
    }
    let span = Span::current();
    let load: Vec<String> = per_shard.iter().map(u64::to_string).collect();
    let mean = per_shard.iter().sum::<u64>() / per_shard.len().max(1) as u64;
    span.record("shardgate.map_version", version);
    span.record("shardgate.balancer.load", load.join(",").as_str());
    span.record("shardgate.balancer.mean", mean);
    span.record(
        "shardgate.balancer.busiest",
        per_shard.iter().copied().max().unwrap_or(0),
    );
}

/// The round's decision (`hold` or `move`), the kind of its reason and the reason.
pub fn decided(decision: &'static str, kind: &'static str, reason: &dyn std::fmt::Display) {
    if !enabled() {
        return;
    }
    let span = Span::current();
    span.record("shardgate.balancer.decision", decision);
    span.record("shardgate.balancer.reason_kind", kind);
    span.record("shardgate.balancer.reason", reason.to_string().as_str());
}

/// An event: the round decided to move `slots` (`weight` requests a minute) from
/// shard `from` to shard `to`.
pub fn move_decided(from: u32, to: u32, slots: &[i32], weight: u64) {
    tracing::event!(
        target: TARGET,
        Level::DEBUG,
        shardgate.from_shard = from,
        shardgate.to_shard = to,
        shardgate.slots = ranges(slots).as_str(),
        shardgate.slot_count = slots.len(),
        shardgate.balancer.weight = weight,
        "move decided"
    );
}

/// An event: a step failed (the `attempt`-th time in a row) and is tried again after
/// `wait_ms`.
pub fn retried(attempt: u32, wait_ms: u64, why: &dyn std::fmt::Display) {
    tracing::event!(
        target: TARGET,
        Level::DEBUG,
        shardgate.attempt = attempt,
        shardgate.wait_ms = wait_ms,
        shardgate.reason = %why,
        "retry"
    );
}

/// An event: a group of `slots` slots copied, `rows` rows.
pub fn copied(slots: usize, rows: u64) {
    tracing::event!(
        target: TARGET,
        Level::DEBUG,
        shardgate.slot_count = slots,
        shardgate.rows = rows,
        "copied"
    );
}

/// An event: the copy waited `waited_ms` for the target's replicas to catch up.
pub fn throttled(waited_ms: u64, limit_bytes: u64) {
    tracing::event!(
        target: TARGET,
        Level::DEBUG,
        shardgate.wait_ms = waited_ms,
        shardgate.max_lag_bytes = limit_bytes,
        "throttled"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::moves::MoveDetail;
    use shard_manager::routing::ShardId;
    use std::sync::{Arc, Mutex};
    use tracing::span::{Attributes, Id};
    use tracing::Subscriber;
    use tracing_subscriber::layer::{Context, SubscriberExt};
    use tracing_subscriber::registry::LookupSpan;
    use tracing_subscriber::{EnvFilter, Layer};

    /// A span opened: its name, and its parent's.
    type Opened = (String, Option<String>);

    /// What a subscriber saw: spans opened and `follows_from` links (from, to), by
    /// span name.
    #[derive(Default, Clone)]
    struct Seen {
        opened: Arc<Mutex<Vec<Opened>>>,
        links: Arc<Mutex<Vec<(String, String)>>>,
    }

    impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Seen {
        fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
            let name = attrs.metadata().name().to_owned();
            let parent = ctx
                .span(id)
                .and_then(|s| s.parent().map(|p| p.name().to_owned()));
            self.opened.lock().unwrap().push((name, parent));
        }

        fn on_follows_from(&self, span: &Id, follows: &Id, ctx: Context<'_, S>) {
            let name = |id| ctx.span(id).map(|s| s.name().to_owned()).unwrap();
            let link = (name(span), name(follows));
            self.links.lock().unwrap().push(link);
        }
    }

    fn a_move() -> Move {
        let detail = MoveDetail {
            kind: "balance".into(),
            source: ShardId(0),
            target: ShardId(2),
            slots: vec![3, 4, 5, 9],
            copied_slots: vec![],
            map_before: 4,
            map_after: None,
        };
        crate::jobs::test_kind::job(7, Phase::Copying, detail)
    }

    #[test]
    fn a_move_is_a_root_linked_both_ways_with_the_round_that_started_it() {
        let seen = Seen::default();
        let subscriber = tracing_subscriber::registry()
            .with(seen.clone())
            .with(EnvFilter::new("debug"));
        tracing::subscriber::with_default(subscriber, || {
            let round = balance();
            let _in = round.enter();
            let mv = move_slot(&a_move());
            started_by(&mv);
            let _phase = mv.in_scope(|| phase(Phase::Copying));
        });
        let opened = seen.opened.lock().unwrap().clone();
        let parent = |p: &str| Some(p.to_owned());
        assert_eq!(
            opened,
            [
                ("balance".to_owned(), None),
                ("move".to_owned(), None),
                ("phase".to_owned(), parent("move")),
            ],
            "the move a root under the round; its phase its child"
        );
        let mut links = seen.links.lock().unwrap().clone();
        links.sort();
        let link = |a: &str, b: &str| (a.to_owned(), b.to_owned());
        assert_eq!(links, [link("balance", "move"), link("move", "balance")]);
    }

    #[test]
    fn off_under_an_info_filter() {
        let subscriber = tracing_subscriber::registry().with(EnvFilter::new("info"));
        tracing::subscriber::with_default(subscriber, || {
            assert!(!enabled());
            assert!(move_slot(&a_move()).is_disabled());
            assert!(phase(Phase::Switching).is_disabled());
            assert!(balance().is_disabled());
        });
    }
}
