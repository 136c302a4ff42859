//! Every write: the frame it runs in (`commit`: `BEGIN`, the statement, `COMMIT` and the
//! position read behind one Sync), one record or a bulk group ([`upsert`]), a delete
//! ([`delete`]), and the same three with an idempotency key ([`idempotent`]); a record
//! replaced or deleted only when its version meets a condition ([`conditional`]); a single
//! write or delete as its request encodes it, with what reads its answer ([`single`],
//! [`encoded`]), committed with the others that arrive together as one group
//! ([`group`]); a transaction's part ([`txn`]), committed at once or prepared, and the
//! prepared ones resolved.

pub(super) mod commit;
pub mod conditional;
pub mod delete;
pub mod encoded;
pub mod group;
pub mod idempotent;
pub mod single;
pub mod txn;
pub mod upsert;
