//! The sampler: a new trace that links to a sampled span of this process is sampled too;
//! every other span is decided by the sampler the settings or `OTEL_TRACES_SAMPLER` name.
//!
//! A trip that carries several requests (a group commit, a pipelined read batch) is a
//! root span of its own, linked with the span of each request it carried. Left to a
//! ratio, such a root would be decided apart from its requests: at 1 in 10, a sampled
//! write's trace would name its group commit by a link nine times in ten and the group
//! would never arrive. Here the root follows its requests: sampled when any request it
//! carries is (a request the sampler left out gives it no link), by the ratio when none
//! is. The links must be on the root when it starts; `shard_manager::spans::batch` adds
//! them first, before the links back.
//!
//! A root whose sampling was decided before it started ([`crate::root`]) carries that
//! decision in the context it starts from, and is recorded.
//!
//! A link to a remote span (another process's, as a caller's `traceparent` names it) is
//! left out of the decision: it is the caller's word that its span was sampled, and a
//! gateway that links a request to a caller it does not trust (instead of continuing
//! the caller's trace) leaves the decision to its own sampler.

use opentelemetry::trace::{Link, SpanKind, TraceContextExt};
use opentelemetry::{Context, KeyValue, TraceId};
use opentelemetry_sdk::trace::{SamplingDecision, SamplingResult, ShouldSample};

use crate::sampled_at_root::SampledAtRoot;

/// `inner`, except that a root span with a sampled link to a span of this process, or
/// decided sampled before it started, is sampled.
#[derive(Debug, Clone)]
pub struct FollowsLinks {
    inner: Box<dyn ShouldSample>,
}

impl FollowsLinks {
    pub fn new(inner: Box<dyn ShouldSample>) -> Self {
        Self { inner }
    }
}

impl ShouldSample for FollowsLinks {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        trace_id: TraceId,
        name: &str,
        span_kind: &SpanKind,
        attributes: &[KeyValue],
        links: &[Link],
    ) -> SamplingResult {
        let root = parent_context.is_none_or(|cx| !cx.has_active_span());
        let sampled_here = |l: &Link| l.span_context.is_sampled() && !l.span_context.is_remote();
        let decided = parent_context.is_some_and(|cx| cx.get::<SampledAtRoot>().is_some());
        if root && (decided || links.iter().any(sampled_here)) {
            return SamplingResult {
                decision: SamplingDecision::RecordAndSample,
                attributes: Vec::new(),
                trace_state: Default::default(),
            };
        }
        self.inner
            .should_sample(parent_context, trace_id, name, span_kind, attributes, links)
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceState};
    use opentelemetry_sdk::trace::Sampler;

    use super::*;

    /// A caller's span, as a parent.
    fn context(sampled: bool) -> SpanContext {
        span_context(sampled, true)
    }

    /// A span, another process's when `remote`.
    fn span_context(sampled: bool, remote: bool) -> SpanContext {
        let flags = if sampled {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        };
        SpanContext::new(
            TraceId::from(7u128),
            SpanId::from(9u64),
            flags,
            remote,
            TraceState::default(),
        )
    }

    /// `links`: whether each link's span is sampled (all of this process).
    fn decide(sampler: &FollowsLinks, parent: Option<SpanContext>, links: &[bool]) -> bool {
        let links: Vec<_> = links.iter().map(|&s| span_context(s, false)).collect();
        decide_linked(sampler, parent, links)
    }

    fn decide_linked(
        sampler: &FollowsLinks,
        parent: Option<SpanContext>,
        links: Vec<SpanContext>,
    ) -> bool {
        let links: Vec<Link> = links.into_iter().map(Link::with_context).collect();
        let parent = parent.map(|p| Context::new().with_remote_span_context(p));
        let result = sampler.should_sample(
            parent.as_ref(),
            TraceId::from(1234u128),
            "batch",
            &SpanKind::Internal,
            &[],
            &links,
        );
        result.decision == SamplingDecision::RecordAndSample
    }

    fn never() -> FollowsLinks {
        FollowsLinks::new(Box::new(Sampler::ParentBased(Box::new(
            Sampler::TraceIdRatioBased(0.0),
        ))))
    }

    #[test]
    fn a_root_is_sampled_when_one_of_its_links_is_and_by_the_ratio_when_none_is() {
        let sampler = never();
        assert!(decide(&sampler, None, &[false, true, false]));
        assert!(!decide(&sampler, None, &[false, false]));
        assert!(!decide(&sampler, None, &[]));
        let always = FollowsLinks::new(Box::new(Sampler::TraceIdRatioBased(1.0)));
        assert!(decide(&always, None, &[false]));
    }

    #[test]
    fn a_sampled_link_to_another_process_decides_nothing() {
        let sampler = never();
        assert!(!decide_linked(
            &sampler,
            None,
            vec![span_context(true, true)]
        ));
        assert!(decide_linked(
            &sampler,
            None,
            vec![span_context(true, true), span_context(true, false)]
        ));
    }

    #[test]
    fn a_span_with_a_parent_follows_its_parent_whatever_its_links() {
        let sampler = never();
        assert!(!decide(&sampler, Some(context(false)), &[true]));
        assert!(decide(&sampler, Some(context(true)), &[false]));
    }
}
