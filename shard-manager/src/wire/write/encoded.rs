//! One single write as it waits for its primary's group commit (`group`): encoded by its
//! own request before it joins ([`Framed`]), and carrying the function that reads the
//! rows its statement answered ([`EncodedWrite`]), so the group knows nothing of what
//! its writes are and each write's answer is read by its own request.

use bytes::BytesMut;
use postgres_protocol::message::backend::DataRowBody;

use crate::wire::codec::values::Param;
use crate::wire::conn::bind_execute_into;
use crate::wire::error::WireError;

/// One write of a group: its statement's Bind and Execute, encoded.
#[derive(Debug)]
pub struct Framed {
    statement: &'static str,
    pub(in crate::wire) message: BytesMut,
    /// The slot and the record it writes (slot, table, shard key, id): a group's writes
    /// are sent in this order, so groups lock slots in the order a move's fence takes
    /// them (see migration `slot_ownership`), and two groups lock the same rows in the
    /// same order: neither deadlocks a group.
    pub(crate) order: (i32, String, String, String),
}

impl Framed {
    pub(in crate::wire) fn new(
        statement: &'static str,
        params: &[Param<'_>],
        slot: i32,
        (table, key, id): (&str, &str, &str),
    ) -> Result<Self, WireError> {
        let mut message = BytesMut::with_capacity(128);
        bind_execute_into(&mut message, statement, params, 0)?;
        Ok(Self {
            statement,
            message,
            order: (slot, table.to_owned(), key.to_owned(), id.to_owned()),
        })
    }

    /// Its size on the wire, in bytes: what a group's byte bound counts.
    pub fn bytes(&self) -> usize {
        self.message.len()
    }

    /// The statement's kind, as errors name it.
    pub fn statement(&self) -> &'static str {
        self.statement.strip_prefix("sg_").unwrap_or(self.statement)
    }
}

/// The rows one write of a group answered, for that write's own reader.
#[derive(Debug, Default)]
pub struct Rows(pub(in crate::wire) Vec<DataRowBody>);

/// What reads a write's rows into its answer.
pub type ReadRows<T> = Box<dyn FnOnce(Rows) -> Result<T, WireError> + Send>;

/// A single write, encoded, with the function that reads its rows into `T`, its answer:
/// what `Server::write_in_group` takes (`crate::wire::upsert`, `crate::wire::delete`
/// make one).
pub struct EncodedWrite<T> {
    framed: Framed,
    read: ReadRows<T>,
}

impl<T: 'static> EncodedWrite<T> {
    pub(in crate::wire) fn new(
        framed: Framed,
        read: impl FnOnce(Rows) -> Result<T, WireError> + Send + 'static,
    ) -> Self {
        Self {
            framed,
            read: Box::new(read),
        }
    }

    /// The same write, its answer turned into another.
    pub fn map<U>(self, f: impl FnOnce(T) -> U + Send + 'static) -> EncodedWrite<U> {
        let read = self.read;
        EncodedWrite {
            framed: self.framed,
            read: Box::new(move |rows| read(rows).map(f)),
        }
    }
}

impl<T> EncodedWrite<T> {
    /// What is sent (it joins the group) and what reads the answer (it stays with the
    /// request).
    pub fn into_parts(self) -> (Framed, ReadRows<T>) {
        (self.framed, self.read)
    }

    /// What is sent.
    pub fn framed(&self) -> &Framed {
        &self.framed
    }
}

impl<T> std::fmt::Debug for EncodedWrite<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncodedWrite")
            .field("framed", &self.framed)
            .finish_non_exhaustive()
    }
}
