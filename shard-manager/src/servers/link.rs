//! The kinds of pooled connection a server hands out: diesel-async's, and wire
//! connections (`crate::wire`: every request's statements; diesel-async serves admin
//! work and health checks). One trait, so that the rules for running a read
//! (`Server::run_on`) and for choosing the server it goes to (`cluster::shard`) are
//! written once; writes run on wire connections only (`Server::run_write`).

use deadpool::managed::{Manager, Object};
use diesel::QueryResult;
use diesel_async::pooled_connection::AsyncDieselConnectionManager;
use diesel_async::AsyncPgConnection;

use super::pools::{Pools, Unpooled};
use crate::store;
use crate::wire::{self, WireConn, WireManager};

/// diesel-async's pool manager.
pub(crate) type DieselLink = AsyncDieselConnectionManager<AsyncPgConnection>;

/// A kind of pooled connection.
pub(crate) trait Link: Manager + Sized {
    /// A connection of this kind from the server's pool for this thread.
    async fn check_out(pools: &Pools) -> Result<Object<Self>, Unpooled>;
    /// The server's WAL replay position (None on a primary), for read-your-writes.
    async fn replay_wal(conn: &mut Self::Type) -> QueryResult<Option<String>>;
}

impl Link for DieselLink {
    async fn check_out(pools: &Pools) -> Result<Object<Self>, Unpooled> {
        pools.checkout().await
    }

    async fn replay_wal(conn: &mut AsyncPgConnection) -> QueryResult<Option<String>> {
        store::replay_wal(conn).await
    }
}

impl Link for WireManager {
    async fn check_out(pools: &Pools) -> Result<Object<Self>, Unpooled> {
        pools.checkout_wire().await
    }

    async fn replay_wal(conn: &mut WireConn) -> QueryResult<Option<String>> {
        Ok(wire::replay_wal(conn).await?)
    }
}
