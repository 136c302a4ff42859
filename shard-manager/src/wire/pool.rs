//! Pooled wire connections: a deadpool manager that opens them and hands one out again
//! only when it is idle and still open (see [`WireConn::is_reusable`]), and the
//! [`WireObject`] a request holds, which closes a connection left mid-exchange the
//! moment it is let go.
//!
//! For a primary behind a service address the manager also keeps its [`Behind`]: each
//! new connection is judged once as it opens (refused unless it reached the primary,
//! then tagged with its timeline), and one tagged below the floor is never handed out
//! again (deadpool's `recycle` runs at every checkout of an idle connection).

use std::sync::Arc;

use deadpool::managed::{self, Metrics, RecycleError, RecycleResult};

use super::behind::Behind;
use super::conn::WireConn;
use super::connect::{connect, Target};
use super::error::WireError;

/// Opens and checks wire connections to one server.
#[derive(Debug)]
pub struct WireManager {
    target: Target,
    /// The floor, for a primary behind a service address.
    behind: Option<Arc<Behind>>,
}

impl managed::Manager for WireManager {
    type Type = WireConn;
    type Error = WireError;

    async fn create(&self) -> Result<WireConn, WireError> {
        let mut conn = connect(&self.target).await?;
        if let Some(behind) = &self.behind {
            Behind::judge_reported(conn.reported()).map_err(WireError::NotThePrimary)?;
            let seen = super::upkeep::identity(&mut conn).await?;
            let timeline = behind.judge(seen).map_err(WireError::NotThePrimary)?;
            conn.tag_timeline(timeline);
        }
        Ok(conn)
    }

    async fn recycle(&self, conn: &mut WireConn, _: &Metrics) -> RecycleResult<WireError> {
        if let Some(behind) = &self.behind {
            if !behind.admits(conn.timeline()) {
                return Err(RecycleError::message(
                    "opened on a timeline the primary has left",
                ));
            }
        }
        if conn.is_reusable() {
            Ok(())
        } else {
            Err(RecycleError::message("closed, or left mid-exchange"))
        }
    }
}

/// A pooled connection as a request holds it. Let go with an exchange left half done
/// (the request's future dropped at an await: its client hung up, a timeout fired; or a
/// refusal that could not be rolled back), its socket is shut at once: the server ends
/// the session and whatever it held (an open or aborted transaction, its locks, a
/// pipelined batch still running), rather than keep it while the connection waits in
/// the pool for its next checkout to find it unusable (the pool then drops it).
pub struct WireObject(managed::Object<WireManager>);

impl WireObject {
    pub(crate) fn new(object: managed::Object<WireManager>) -> Self {
        Self(object)
    }

    /// Never used again: the connection is closed now (a dead or doubtful one), and the
    /// pool drops it at its next checkout, which finds it closed.
    pub fn discard(mut self) {
        self.0.close_now();
    }

    /// The pool's figures of this connection (its age, its uses, when last used).
    pub fn metrics(&self) -> Metrics {
        *managed::Object::metrics(&self.0)
    }
}

impl std::ops::Deref for WireObject {
    type Target = WireConn;
    fn deref(&self) -> &WireConn {
        &self.0
    }
}

impl std::ops::DerefMut for WireObject {
    fn deref_mut(&mut self) -> &mut WireConn {
        &mut self.0
    }
}

impl Drop for WireObject {
    fn drop(&mut self) {
        self.0.close_if_busy();
    }
}

impl WireManager {
    pub fn new(target: Target) -> Self {
        Self {
            target,
            behind: None,
        }
    }

    /// A manager for a primary behind a service address, judging its connections
    /// against `behind` (see the module doc).
    pub fn behind(target: Target, behind: Arc<Behind>) -> Self {
        Self {
            target,
            behind: Some(behind),
        }
    }
}
