//! Pooled wire connections: a deadpool manager that opens them and hands one out again
//! only when it is idle and still open (see [`WireConn::is_reusable`]), and the
//! [`WireObject`] a request holds, which closes a connection left mid-exchange the
//! moment it is let go.

use deadpool::managed::{self, Metrics, RecycleError, RecycleResult};

use super::conn::WireConn;
use super::connect::{connect, Target};
use super::error::WireError;

/// Opens and checks wire connections to one server.
#[derive(Debug)]
pub struct WireManager {
    target: Target,
}

impl managed::Manager for WireManager {
    type Type = WireConn;
    type Error = WireError;

    async fn create(&self) -> Result<WireConn, WireError> {
        connect(&self.target).await
    }

    async fn recycle(&self, conn: &mut WireConn, _: &Metrics) -> RecycleResult<WireError> {
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
        Self { target }
    }
}
