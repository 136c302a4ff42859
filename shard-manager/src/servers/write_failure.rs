//! A write that failed, and whether it may have committed: what a lone write
//! (`write`) and a group commit (`write_batch`) answer when they cannot acknowledge.

use crate::error::ClusterError;

/// A write that failed, and whether it may have committed anyway.
#[derive(Debug)]
pub struct WriteFailure {
    pub error: ClusterError,
    /// The write reached the server and its outcome is unknown (the connection was lost
    /// or the answer timed out after sending): it may have committed.
    pub maybe_committed: bool,
}

impl WriteFailure {
    /// The error to answer with; one that may have committed says so (never re-sent).
    pub fn into_error(self) -> ClusterError {
        match self.maybe_committed {
            true => self.error.sent(),
            false => self.error,
        }
    }

    /// A write that failed before anything of it was sent: it did not commit.
    pub fn before_sending(error: ClusterError) -> Self {
        Self {
            error,
            maybe_committed: false,
        }
    }
}
