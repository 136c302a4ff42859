//! Transactions on several shards, the control plane's side: the coordinator log in the
//! metadata database ([`log`], the request path's `DecisionLog`), and the recovery every
//! gateway runs ([`recovery`]) that resolves prepared parts a dead gateway left behind.

mod finished;
pub mod log;
pub mod recovery;

pub use log::MetaLog;
pub use recovery::Recovery;
