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
/// the pool for its next checkout to find it unusable.
pub struct WireObject(Option<managed::Object<WireManager>>);

impl WireObject {
    pub(crate) fn new(object: managed::Object<WireManager>) -> Self {
        Self(Some(object))
    }

    /// Never back to the pool: the connection is closed now (a dead or doubtful one).
    pub fn discard(mut self) {
        if let Some(object) = self.0.take() {
            drop(managed::Object::take(object));
        }
    }

    /// The pool's figures of this connection (its age, its uses, when last used).
    pub fn metrics(&self) -> Metrics {
        self.0
            .as_ref()
            .map(|o| *managed::Object::metrics(o))
            .unwrap_or_default()
    }
}

impl std::ops::Deref for WireObject {
    type Target = WireConn;
    fn deref(&self) -> &WireConn {
        // Some from `new` until `discard` or drop, which consume it.
        self.0
            .as_deref()
            .expect("a WireObject holds its connection")
    }
}

impl std::ops::DerefMut for WireObject {
    fn deref_mut(&mut self) -> &mut WireConn {
        self.0
            .as_deref_mut()
            .expect("a WireObject holds its connection")
    }
}

impl Drop for WireObject {
    fn drop(&mut self) {
        if let Some(object) = self.0.take() {
            if object.is_idle() {
                drop(object);
            } else {
                drop(managed::Object::take(object));
            }
        }
    }
}

impl WireManager {
    pub fn new(target: Target) -> Self {
        Self { target }
    }
}
