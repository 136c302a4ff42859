//! The mark a root's context carries when its sampling was decided before the root span
//! started ([`crate::root`]): the sampler the tracer holds ([`crate::sampler`]) then
//! records the root whatever trace id the SDK draws for it. Its own file: the one that
//! sets the mark and the one that reads it both need it, and neither needs the other.

/// The mark, in the context a root starts from, of a root
/// [`RootSampler::decide`](crate::root::RootSampler::decide) sampled.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SampledAtRoot;
