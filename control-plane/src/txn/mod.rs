//! Transactions on several shards, the control plane's side: the coordinator log in the
//! metadata database ([`log`], the request path's `DecisionLog`), and the recovery every
//! gateway runs ([`recovery`]) that resolves prepared parts a dead gateway left behind,
//! and the fence snapshot reads take ([`fence`]).

pub mod fence;
mod finished;
pub mod log;
pub mod recovery;

pub use fence::MetaFence;
pub use log::MetaLog;
pub use recovery::Recovery;
