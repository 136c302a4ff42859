//! A request's sampling decision, made at its root before any span of it exists, so that
//! a request the sampler leaves out costs no span at all: the process asks
//! [`RootSampler::decide`] first and starts its root span only when the answer is
//! [`Root::Sampled`]; otherwise it makes no span for the trace and keeps the ids the
//! decision gave it (for its log lines and the `traceresponse` it answers).
//!
//! The decision is the configured sampler's ([`FollowsLinks`], the one the tracer
//! provider holds), asked as the SDK would ask it: parent-based on a caller's context
//! when there is one, else by the ratio on a trace id of its own. A new trace's root
//! span gets another trace id from the SDK when it starts, which a ratio could decide
//! otherwise: the context a sampled root starts from carries the decision
//! ([`Root::Sampled`]), and the sampler records a root that carries it.

use std::sync::Arc;

use opentelemetry::trace::{Link, SpanContext, SpanId, SpanKind, TraceContextExt, TraceFlags};
use opentelemetry::{Context, TraceId};
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator, SamplingDecision, ShouldSample};

use crate::sampled_at_root::SampledAtRoot;
use crate::sampler::FollowsLinks;

/// The configured sampler, asked before a root span exists.
#[derive(Debug, Clone)]
pub struct RootSampler {
    sampler: Arc<FollowsLinks>,
    ids: RandomIdGenerator,
}

/// What became of a root.
#[derive(Debug, Clone)]
pub enum Root {
    /// Recorded: start the root span from this context (the parent given to
    /// [`RootSampler::decide`], marked as decided).
    Sampled(Context),
    /// Left out: no span is started; these are the ids the root would have had (the
    /// caller's trace id when it continues one, a span id of its own), not sampled.
    Unsampled(SpanContext),
}

impl RootSampler {
    pub fn new(sampler: FollowsLinks) -> Self {
        Self {
            sampler: Arc::new(sampler),
            ids: RandomIdGenerator::default(),
        }
    }

    /// Decides a root span named `name` of `kind`, started from `parent` (a caller's
    /// context, or an empty one for a new trace) with `links`.
    pub fn decide(&self, parent: Context, name: &str, kind: &SpanKind, links: &[Link]) -> Root {
        let caller = parent.span().span_context().clone();
        let trace_id = if caller.is_valid() {
            caller.trace_id()
        } else {
            self.ids.new_trace_id()
        };
        let result = self
            .sampler
            .should_sample(Some(&parent), trace_id, name, kind, &[], links);
        match result.decision {
            SamplingDecision::RecordAndSample => Root::Sampled(parent.with_value(SampledAtRoot)),
            SamplingDecision::Drop | SamplingDecision::RecordOnly => {
                Root::Unsampled(self.unsampled(trace_id, &result.trace_state))
            }
        }
    }

    fn unsampled(
        &self,
        trace_id: TraceId,
        state: &opentelemetry::trace::TraceState,
    ) -> SpanContext {
        let span_id: SpanId = self.ids.new_span_id();
        SpanContext::new(
            trace_id,
            span_id,
            TraceFlags::default(),
            false,
            state.clone(),
        )
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{Span as _, TraceState, Tracer as _, TracerProvider as _};
    use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};

    use super::*;

    fn ratio(r: f64) -> FollowsLinks {
        FollowsLinks::new(Box::new(Sampler::ParentBased(Box::new(
            Sampler::TraceIdRatioBased(r),
        ))))
    }

    fn caller(sampled: bool) -> Context {
        let flags = if sampled {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        };
        Context::new().with_remote_span_context(SpanContext::new(
            TraceId::from(7u128),
            SpanId::from(9u64),
            flags,
            true,
            TraceState::default(),
        ))
    }

    fn sampled(root: &Root) -> bool {
        matches!(root, Root::Sampled(_))
    }

    #[test]
    fn a_callers_flag_decides_its_trace_and_the_ratio_a_new_one() {
        let server = SpanKind::Server;
        let never = RootSampler::new(ratio(0.0));
        let always = RootSampler::new(ratio(1.0));
        assert!(sampled(&never.decide(caller(true), "r", &server, &[])));
        assert!(!sampled(&always.decide(caller(false), "r", &server, &[])));
        assert!(!sampled(&never.decide(Context::new(), "r", &server, &[])));
        assert!(sampled(&always.decide(Context::new(), "r", &server, &[])));
    }

    #[test]
    fn an_unsampled_root_keeps_the_callers_trace_and_a_span_id_of_its_own() {
        let always = RootSampler::new(ratio(1.0));
        let Root::Unsampled(ids) = always.decide(caller(false), "r", &SpanKind::Server, &[]) else {
            panic!("the caller's unsampled flag is followed");
        };
        assert_eq!(ids.trace_id(), TraceId::from(7u128));
        assert_ne!(ids.span_id(), SpanId::from(9u64));
        assert!(ids.is_valid() && !ids.is_sampled());
        let Root::Unsampled(fresh) =
            RootSampler::new(ratio(0.0)).decide(Context::new(), "r", &SpanKind::Server, &[])
        else {
            panic!("the ratio, 0, leaves it out");
        };
        assert!(fresh.is_valid() && !fresh.is_sampled());
    }

    #[test]
    fn a_root_sampled_here_is_recorded_whatever_trace_id_the_sdk_gives_it() {
        // A ratio that would leave out nearly every trace id: the root decided here
        // (the first of up to 1000 tries) starts recorded from the context the decision gave.
        let sampler = ratio(0.05);
        let root = RootSampler::new(sampler.clone());
        let provider = SdkTracerProvider::builder().with_sampler(sampler).build();
        let tracer = provider.tracer("test");
        let parent = (0..1000)
            .find_map(
                |_| match root.decide(Context::new(), "r", &SpanKind::Server, &[]) {
                    Root::Sampled(parent) => Some(parent),
                    Root::Unsampled(_) => None,
                },
            )
            .expect("one root in 1000 sampled at 5 %");
        for _ in 0..32 {
            let span = tracer.start_with_context("r", &parent);
            assert!(span.span_context().is_sampled());
        }
        // Without the decision's mark, the same sampler leaves most of them out.
        let unmarked = (0..32)
            .filter(|_| tracer.start("r").span_context().is_sampled())
            .count();
        assert!(unmarked < 32, "{unmarked} of 32 sampled at 5 %");
    }
}
