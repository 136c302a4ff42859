//! The sampler: a new trace that links to a sampled span is sampled too; every other span
//! is decided by the sampler the settings or `OTEL_TRACES_SAMPLER` name.
//!
//! A trip that carries several requests (a group commit, a pipelined read batch) is a
//! root span of its own, linked with the span of each request it carried. Left to a
//! ratio, such a root would be decided apart from its requests: at 1 in 10, a sampled
//! write's trace would name its group commit by a link nine times in ten and the group
//! would never arrive. Here the root follows its requests: sampled when any request it
//! carries is (a request the sampler left out gives it no link), by the ratio when none
//! is. The links must be on the root when it starts; `shard_manager::spans::batch` adds
//! them first, before the links back.

use opentelemetry::trace::{Link, SpanKind, TraceContextExt};
use opentelemetry::{Context, KeyValue, TraceId};
use opentelemetry_sdk::trace::{SamplingDecision, SamplingResult, ShouldSample};

/// `inner`, except that a root span with a sampled link is sampled.
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
        if root && links.iter().any(|l| l.span_context.is_sampled()) {
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

    fn context(sampled: bool) -> SpanContext {
        let flags = if sampled {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        };
        SpanContext::new(
            TraceId::from(7u128),
            SpanId::from(9u64),
            flags,
            true,
            TraceState::default(),
        )
    }

    fn decide(sampler: &FollowsLinks, parent: Option<SpanContext>, links: &[bool]) -> bool {
        let links: Vec<Link> = links
            .iter()
            .map(|&s| Link::with_context(context(s)))
            .collect();
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
    fn a_span_with_a_parent_follows_its_parent_whatever_its_links() {
        let sampler = never();
        assert!(!decide(&sampler, Some(context(false)), &[true]));
        assert!(decide(&sampler, Some(context(true)), &[false]));
    }
}
