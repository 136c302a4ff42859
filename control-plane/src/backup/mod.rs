//! Backups of the whole cluster with pgBackRest (the engine: Shardgate writes no backup
//! code of its own), and *cluster restore points* consistent across shards.
//!
//! A backup ([`take`]) refuses while a slot move or an import is active, backs up every
//! server's stanza with pgBackRest, then names one restore point on every server under
//! a short fence ([`point`]) and records it in the metadata database
//! (`restore_points`). Restoring every server to that name gives a state the cluster
//! was really in: no transaction on several shards is half there (see
//! [`crate::txn::log::DECISION_FENCE_LOCK`]).
//!
//! ## Layout
//! - [`error`]: what can go wrong, each naming the server or stanza.
//! - [`stanza`]: which servers are backed up, under which stanza names.
//! - [`pgbackrest`]: the runner: pgbackrest run as the servers' OS user, from config.
//! - [`repo`]: the repository checked (there, writable, full).
//! - [`point`]: the fence and `pg_create_restore_point` on every server.
//! - [`take`]: `shard-admin backup`, in order.
//! - [`list`]: `shard-admin backups list`: recorded points and pgBackRest's backups.
//! - [`restore`]: `shard-admin restore --point NAME`: every server back to a point.

pub mod error;
pub mod list;
pub mod pgbackrest;
pub mod point;
pub mod repo;
pub mod restore;
pub mod stanza;
pub mod take;

pub use error::BackupError;
pub use list::{list, Listing};
pub use pgbackrest::{BackupKind, Runner};
pub use point::RestorePoint;
pub use restore::{plan as plan_restore, restore, Plan, Restored};
pub use take::{take, Progress, Taken};
