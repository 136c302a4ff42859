//! Every write: the frame it runs in (`commit`: `BEGIN`, the statement, `COMMIT` and the
//! position read behind one Sync), one record or a bulk group ([`upsert`]), a delete
//! ([`delete`]), and the same three with an idempotency key ([`remembered`]).

pub(super) mod commit;
pub mod delete;
pub mod remembered;
pub mod upsert;
