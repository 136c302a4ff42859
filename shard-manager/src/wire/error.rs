//! What can go wrong on a wire connection. A server's refusal keeps every field it sent,
//! its SQLSTATE first, and which statement it refused; what it means is decided from
//! the SQLSTATE alone (`crate::error::sqlstate`), never from the message, by the
//! servers' one failure mapping (`crate::servers::failure`).

use std::fmt;

use postgres_protocol::message::backend::ErrorResponseBody;

use crate::error::sqlstate::{decide, Decision};

/// A failure on a wire connection.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The socket failed or closed: the connection is gone.
    #[error("connection lost: {0}")]
    Io(#[from] std::io::Error),
    /// PostgreSQL refused (an `ErrorResponse`).
    #[error("{0}")]
    Server(Box<ServerError>),
    /// The server asked for a way of signing in this client does not speak, or the
    /// exchange failed on our side.
    #[error("authentication: {0}")]
    Auth(String),
    /// TLS could not be set up as `database.sslmode` asks: the server does not speak
    /// it, its certificate does not verify, or the root file cannot be used.
    #[error("tls: {0}")]
    Tls(String),
    /// The server said something out of turn: the connection cannot be trusted further.
    #[error("protocol: {0}")]
    Protocol(String),
    /// A connection through a service address reached a server that is not the
    /// primary (a standby, a read-only server, an old primary, another cluster): it is
    /// closed before any request's statement is sent on it.
    #[error("{0}")]
    NotThePrimary(String),
    /// A row came back whole but a value in it has no form the gateway can hand on (a
    /// timestamp of `infinity`, a NULL where the schema forbids one): the data is at
    /// fault, not the server, and the exchange ended cleanly, so the connection stays
    /// usable. Names the record and column when the row is a record.
    #[error("undecodable row: {0}")]
    Undecodable(String),
}

impl WireError {
    /// Names the record (and column) an undecodable value was read from; other
    /// failures are returned unchanged.
    pub(super) fn in_record(self, (table, key, id): (&str, &str, &str), column: &str) -> Self {
        match self {
            WireError::Undecodable(why) => WireError::Undecodable(format!(
                "record {table}/{id} (shard key {key:?}), column {column}: {why}"
            )),
            other => other,
        }
    }

    /// Names the statement a server's refusal answered (kept from the first naming).
    pub(crate) fn in_statement(self, statement: &'static str) -> Self {
        match self {
            WireError::Server(mut e) => {
                e.statement.get_or_insert(statement);
                WireError::Server(e)
            }
            other => other,
        }
    }
}

impl From<crate::store::AnswerError> for WireError {
    /// An answer row that does not read as one: the data's fault, not the connection's.
    fn from(err: crate::store::AnswerError) -> Self {
        WireError::Undecodable(err.to_string())
    }
}

impl From<ServerError> for WireError {
    fn from(err: ServerError) -> Self {
        WireError::Server(Box::new(err))
    }
}

/// An `ErrorResponse`'s fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerError {
    /// The SQLSTATE.
    pub code: String,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
    pub table: Option<String>,
    pub column: Option<String>,
    pub constraint: Option<String>,
    /// Which of our statements it refused (`upsert`, `find`, `list`, ...), once known.
    pub statement: Option<&'static str>,
}

impl ServerError {
    pub(crate) fn parse(body: &ErrorResponseBody) -> Result<Self, WireError> {
        use fallible_iterator::FallibleIterator;
        let mut err = ServerError::default();
        let mut fields = body.fields();
        while let Some(field) = fields.next()? {
            let value = String::from_utf8_lossy(field.value_bytes()).into_owned();
            match field.type_() {
                b'C' => err.code = value,
                b'M' => err.message = value,
                b'D' => err.detail = Some(value),
                b'H' => err.hint = Some(value),
                b't' => err.table = Some(value),
                b'c' => err.column = Some(value),
                b'n' => err.constraint = Some(value),
                _ => {}
            }
        }
        Ok(err)
    }

    /// The connection's prepared statements are stale: a schema change altered what
    /// one returns (0A000, "cached plan must not change result type"), or they are gone
    /// (26000, after a `DEALLOCATE`/`DISCARD` by something between us and the server).
    /// Preparing them again fixes it. By SQLSTATE, never by message.
    pub(super) fn invalidates_statements(&self) -> bool {
        decide(&self.code) == Decision::StaleStatements
    }
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_statements_are_told_by_sqlstate_alone() {
        let refusal = |code: &str, message: &str| ServerError {
            code: code.into(),
            message: message.into(),
            ..Default::default()
        };
        // Whatever the server's language says.
        assert!(refusal("0A000", "le plan en cache ne doit pas modifier").invalidates_statements());
        assert!(refusal("26000", "").invalidates_statements());
        assert!(!refusal("42P05", "prepared statement already exists").invalidates_statements());
        assert!(
            !refusal("XX000", "cached plan must not change result type").invalidates_statements()
        );
    }

    #[test]
    fn a_refusal_is_named_once_by_the_statement_it_answered() {
        let refused = WireError::from(ServerError {
            code: "22P02".into(),
            ..Default::default()
        })
        .in_statement("upsert")
        .in_statement("later");
        match refused {
            WireError::Server(e) => assert_eq!(e.statement, Some("upsert")),
            other => panic!("{other:?}"),
        }
        let lost = WireError::Io(std::io::ErrorKind::UnexpectedEof.into()).in_statement("find");
        assert!(matches!(lost, WireError::Io(_)));
    }
}
