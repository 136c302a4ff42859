//! Every write: the frame it runs in (`commit`: `BEGIN`, the statement, `COMMIT` and the
//! position read behind one Sync), one record or a bulk group ([`upsert`]), a delete
//! ([`delete`]), and the same three with an idempotency key ([`idempotent`]); a transaction's part
//! ([`txn`]), committed at once or prepared, and the prepared ones resolved; and single
//! writes that arrive together committed as one group ([`group`]).

pub(super) mod commit;
pub mod delete;
pub mod group;
pub mod idempotent;
pub mod txn;
pub mod upsert;
