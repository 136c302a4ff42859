//! One wire connection: a TCP socket to PostgreSQL, its two buffers, and the message
//! loop. No driver task: the request that uses the connection reads and writes the
//! socket itself, so an exchange wakes that request once per flush from the server.

use bytes::BytesMut;
use postgres_protocol::message::backend::{DataRowBody, Message};
use postgres_protocol::message::frontend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::codec::buffers::{self, START_BYTES};
use super::codec::values::{Param, BINARY};
use super::connect::stream::Stream;
use super::error::{ServerError, WireError};
use crate::store::statements::ROLLBACK;

/// A connection, signed in (see [`super::connect::startup`]).
#[derive(Debug)]
pub struct WireConn {
    stream: Stream,
    read: BytesMut,
    /// The read buffer's largest capacity in the exchange under way (see `buffers`).
    read_peak: usize,
    /// Messages not sent yet; [`flush`](Self::flush) sends them in one write.
    pub(super) out: BytesMut,
    /// An exchange began and has not ended cleanly: answers may still be on the way (it
    /// was cancelled, or the connection failed). Such a connection is never reused.
    busy: bool,
    /// The statements of `statements` are prepared here (false again once PostgreSQL
    /// said they are stale: the next exchange prepares them anew).
    pub(super) prepared: bool,
    /// PostgreSQL said the statements prepared here are stale: the next exchange closes
    /// each before preparing it again.
    pub(super) stale: bool,
    /// How many statements the exchange under way prepares (its first): when all of
    /// them were, a refusal later in that exchange leaves the connection usable.
    pub(super) preparing: usize,
    /// The server process serving this connection, as its `BackendKeyData` at sign-in
    /// named it (`pg_stat_activity.pid`); 0 until then.
    backend_pid: i32,
    /// What the server reported of itself (ParameterStatus, at sign-in and whenever
    /// they change): `in_hot_standby` and `default_transaction_read_only`.
    reported: Reported,
    /// The timeline this connection reached, when its pool tags connections (a shard
    /// behind a service address: see `pool`); None otherwise.
    timeline: Option<u32>,
}

/// The parameters PostgreSQL 14+ reports at sign-in that say whether a server takes
/// writes (what libpq's `target_session_attrs=read-write` reads); None when it did
/// not report them (an older server).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reported {
    pub in_hot_standby: Option<bool>,
    pub default_transaction_read_only: Option<bool>,
}

impl Reported {
    /// Whether the server said it is a standby or read-only by default: no write may
    /// go there.
    pub fn refuses_writes(&self) -> bool {
        self.in_hot_standby == Some(true) || self.default_transaction_read_only == Some(true)
    }
}

/// How an exchange ended at its `ReadyForQuery`.
pub(super) struct Ended {
    /// The transaction status: `I` idle, `T` in a transaction, `E` in a failed one.
    pub status: u8,
    /// The first error the server sent, if any (it skips the rest until the Sync).
    pub error: Option<ServerError>,
    /// How many statements it prepared.
    pub parsed: usize,
    /// How many statements ran to their end (`CommandComplete`).
    pub completed: usize,
}

/// What an exchange does with each row: it is handed the row and how many statements
/// had run to their end before it (so the row's statement, in the exchange's order).
pub(super) type OnRow<'a> = &'a mut (dyn FnMut(usize, DataRowBody) + Send);

/// A refusal at the end of an exchange that left the connection usable.
#[derive(Debug)]
pub(super) struct Refused {
    pub error: ServerError,
    /// How many statements ran to their end before the refusal (so which one was
    /// refused, in the exchange's order).
    pub completed: usize,
    /// Nothing the exchange sent took effect: sending it again cannot apply anything
    /// twice.
    pub committed_nothing: bool,
}

impl WireConn {
    pub(super) fn new(stream: Stream) -> Self {
        Self {
            stream,
            read: BytesMut::with_capacity(START_BYTES),
            read_peak: 0,
            out: BytesMut::with_capacity(1024),
            busy: false,
            prepared: false,
            stale: false,
            preparing: 0,
            backend_pid: 0,
            reported: Reported::default(),
            timeline: None,
        }
    }

    /// What the server last reported of whether it takes writes.
    pub fn reported(&self) -> Reported {
        self.reported
    }

    /// The timeline the connection was tagged with when it opened (see `pool`).
    pub fn timeline(&self) -> Option<u32> {
        self.timeline
    }

    /// Tags the connection with the timeline it reached.
    pub(super) fn tag_timeline(&mut self, timeline: u32) {
        self.timeline = Some(timeline);
    }

    /// Keeps a reported parameter that says whether the server takes writes.
    fn keep_reported(&mut self, name: &str, value: &str) {
        let on = Some(value == "on");
        match name {
            "in_hot_standby" => self.reported.in_hot_standby = on,
            "default_transaction_read_only" => self.reported.default_transaction_read_only = on,
            _ => {}
        }
    }

    /// The server process serving this connection (`pg_stat_activity.pid`), read once
    /// at sign-in; 0 if the server never named it.
    pub fn backend_pid(&self) -> i32 {
        self.backend_pid
    }

    /// Whether the connection can be handed out again: no exchange left half-done, and
    /// the server has not closed it or sent anything unasked (a shutdown's notice).
    /// Never waits (see `Stream::is_open_and_quiet`).
    pub fn is_reusable(&mut self) -> bool {
        !self.busy && self.stream.is_open_and_quiet()
    }

    /// Whether no exchange is under way or left half-done.
    pub(super) fn is_idle(&self) -> bool {
        !self.busy
    }

    /// Closes the connection now: the server ends the session and whatever it held.
    /// It is never reusable again.
    pub(super) fn close_now(&mut self) {
        self.stream.shut_now();
    }

    /// Closes the connection now if an exchange is under way or was left half-done
    /// (see [`WireObject`](super::pool::WireObject)); an idle one is left as it is.
    pub(super) fn close_if_busy(&mut self) {
        if self.busy {
            self.close_now();
        }
    }

    /// Starts an exchange: until [`done`](Self::done), the connection is not reusable.
    pub(super) fn start(&mut self) {
        self.busy = true;
    }

    /// The exchange ended with the connection in a known, idle state. A buffer that
    /// grew large for it is replaced by a small one (see `buffers`).
    pub(super) fn done(&mut self) {
        self.busy = false;
        buffers::settle(&mut self.read, self.read_peak);
        buffers::settle(&mut self.out, 0);
        self.read_peak = 0;
    }

    /// Sends what is buffered, in one write.
    pub(super) async fn flush(&mut self) -> Result<(), WireError> {
        self.stream.write_all(&self.out).await?;
        // TLS may hold the last record back until flushed; plain TCP has nothing held.
        self.stream.flush().await?;
        self.out.clear();
        Ok(())
    }

    /// The next message from the server.
    pub(super) async fn next(&mut self) -> Result<Message, WireError> {
        loop {
            if let Some(message) = Message::parse(&mut self.read)? {
                return Ok(message);
            }
            let received = self.stream.read_buf(&mut self.read).await?;
            self.read_peak = self.read_peak.max(self.read.capacity());
            if received == 0 {
                return Err(WireError::Io(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the server closed the connection",
                )));
            }
        }
    }

    /// The next message that answers this client: notices, parameter changes and
    /// notifications, which may come at any time, are skipped (the parameters that say
    /// whether the server takes writes are kept: [`Reported`]).
    pub(super) async fn answer(&mut self) -> Result<Message, WireError> {
        loop {
            match self.next().await? {
                Message::ParameterStatus(body) => {
                    if let (Ok(name), Ok(value)) = (body.name(), body.value()) {
                        self.keep_reported(name, value);
                    }
                }
                Message::NoticeResponse(_) | Message::NotificationResponse(_) => continue,
                message => return Ok(message),
            }
        }
    }

    /// Reads up to the `ReadyForQuery` that ends an exchange, handing each row to
    /// `on_row` as it arrives (so a caller may keep only some) and keeping the first
    /// error.
    /// When the server closes the connection after an error (a FATAL one), that error
    /// is what is returned, and the connection stays unusable.
    pub(super) async fn until_ready(
        &mut self,
        mut error: Option<ServerError>,
        on_row: OnRow<'_>,
    ) -> Result<Ended, WireError> {
        let mut parsed = 0;
        let mut completed = 0;
        loop {
            let message = match self.answer().await {
                Ok(message) => message,
                Err(lost) => return Err(error.map(WireError::from).unwrap_or(lost)),
            };
            match message {
                Message::ReadyForQuery(body) => {
                    return Ok(Ended {
                        status: body.status(),
                        error,
                        parsed,
                        completed,
                    })
                }
                Message::DataRow(body) => on_row(completed, body),
                Message::ParseComplete => parsed += 1,
                // Sent once, at sign-in.
                Message::BackendKeyData(body) => self.backend_pid = body.process_id(),
                Message::CommandComplete(_) => completed += 1,
                Message::ErrorResponse(body) => {
                    let parsed = ServerError::parse(&body)?;
                    error.get_or_insert(parsed);
                }
                _ => {}
            }
        }
    }

    /// Buffers a Bind of the prepared `statement` with `params` and an Execute of it;
    /// binary parameters and columns throughout.
    pub(super) fn bind_execute(
        &mut self,
        statement: &str,
        params: &[Param<'_>],
    ) -> Result<(), WireError> {
        self.bind_execute_rows(statement, params, 0)
    }

    /// [`bind_execute`](Self::bind_execute) with an Execute that returns at most
    /// `max_rows` rows (0: all); the server then suspends the portal, and
    /// [`execute_more`](Self::execute_more) asks for more.
    pub(super) fn bind_execute_rows(
        &mut self,
        statement: &str,
        params: &[Param<'_>],
        max_rows: i32,
    ) -> Result<(), WireError> {
        bind_execute_into(&mut self.out, statement, params, max_rows)
    }

    /// Sends what is buffered behind a Flush, not a Sync: the server answers what it
    /// has so far and the exchange (its transaction, its portal) stays open.
    pub(super) async fn send_open(&mut self) -> Result<(), WireError> {
        frontend::flush(&mut self.out);
        self.flush().await
    }

    /// Asks the suspended portal for up to `max_rows` more rows (see `send_open`).
    pub(super) async fn execute_more(&mut self, max_rows: i32) -> Result<(), WireError> {
        frontend::execute("", max_rows, &mut self.out)?;
        self.send_open().await
    }

    /// Ends an exchange begun with `statements::start` and buffered statements: a Sync,
    /// one send, and the answers up to `ReadyForQuery`. Returns the rows, or the refusal
    /// (see [`Refused`]).
    ///
    /// When PostgreSQL refused a statement, the server skipped the rest; a transaction
    /// left open is rolled back, so the connection is reusable, and the refusal is
    /// returned. A refusal while preparing the statements (a connection's first
    /// exchange) leaves the connection unusable instead: which of them exist there is
    /// unknown. A refusal that says the prepared statements are stale (see
    /// [`ServerError::invalidates_statements`]) marks them to be prepared again with the
    /// next exchange.
    pub(super) async fn exchange(
        &mut self,
    ) -> Result<Result<Vec<DataRowBody>, Refused>, WireError> {
        let mut rows = Vec::new();
        let ended = self.exchange_rows(&mut |_, row| rows.push(row)).await?;
        Ok(ended.map(|()| rows))
    }

    /// [`exchange`](Self::exchange), handing each row to `on_row` as it arrives instead
    /// of keeping them all.
    pub(super) async fn exchange_rows(
        &mut self,
        on_row: OnRow<'_>,
    ) -> Result<Result<(), Refused>, WireError> {
        self.finish(None, 0, on_row).await
    }

    /// Ends an exchange whose first answers the caller already read (after
    /// `send_open`): `error` is the refusal it read, if any, and `parsed` the statements
    /// it saw prepared. Then as [`exchange_rows`](Self::exchange_rows).
    pub(super) async fn finish(
        &mut self,
        error: Option<ServerError>,
        parsed: usize,
        on_row: OnRow<'_>,
    ) -> Result<Result<(), Refused>, WireError> {
        frontend::sync(&mut self.out);
        self.flush().await?;
        let mut ended = self.until_ready(error, on_row).await?;
        ended.parsed += parsed;
        if !self.prepared && ended.parsed == self.preparing {
            self.prepared = true;
        }
        let Some(error) = ended.error else {
            self.done();
            return Ok(Ok(()));
        };
        if !self.prepared {
            return Err(error.into());
        }
        // A failed rollback leaves the connection busy (never reused); the refusal is
        // still what the request gets: nothing was committed.
        let rolled_back = ended.status == b'I' || self.simple(ROLLBACK).await.is_ok();
        if !rolled_back {
            self.start();
            return Err(error.into());
        }
        self.done();
        if error.invalidates_statements() {
            self.prepared = false;
            self.stale = true;
        }
        Ok(Err(Refused {
            // Refused inside the transaction (rolled back) or before any statement
            // completed: nothing ran to its end, so the exchange may be sent again.
            committed_nothing: ended.status == b'E' || ended.completed == 0,
            completed: ended.completed,
            error,
        }))
    }

    /// Runs one statement with the simple protocol (no parameters): the idle check (an
    /// empty statement) and the `ROLLBACK` after a failed write.
    pub async fn simple(&mut self, sql: &str) -> Result<(), WireError> {
        self.start();
        frontend::query(sql, &mut self.out)?;
        self.flush().await?;
        let ended = self.until_ready(None, &mut |_, _| {}).await?;
        self.done();
        match ended.error {
            Some(error) => Err(error.into()),
            None => Ok(()),
        }
    }
}

/// Writes a Bind of the prepared `statement` with `params` and an Execute of it
/// returning at most `max_rows` rows (0: all) into `out`; binary parameters and columns
/// throughout. (A write in a group is encoded by its own request, before it joins.)
pub(super) fn bind_execute_into(
    out: &mut BytesMut,
    statement: &str,
    params: &[Param<'_>],
    max_rows: i32,
) -> Result<(), WireError> {
    frontend::bind(
        "",
        statement,
        [BINARY],
        params.iter().copied(),
        |param, buf| param.write(buf),
        [BINARY],
        out,
    )
    .map_err(|e| match e {
        frontend::BindError::Conversion(e) => WireError::Protocol(e.to_string()),
        frontend::BindError::Serialization(e) => WireError::Io(e),
    })?;
    frontend::execute("", max_rows, out)?;
    Ok(())
}

impl Drop for WireConn {
    /// Says goodbye when the socket takes it at once, so the server does not log a lost
    /// client; never waits.
    fn drop(&mut self) {
        let mut bye = BytesMut::with_capacity(5);
        frontend::terminate(&mut bye);
        self.stream.try_write_now(&bye);
    }
}
