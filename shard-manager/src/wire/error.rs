//! What can go wrong on a wire connection, and how it reaches the rest of the crate: as
//! the same `diesel::result::Error` diesel-async gives for the same failure, so that one
//! classification (`crate::error::classify`) decides for both paths.

use std::fmt;

use diesel::result::{DatabaseErrorInformation, DatabaseErrorKind, Error as DieselError};
use postgres_protocol::message::backend::ErrorResponseBody;

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
        matches!(self.code.as_str(), "0A000" | "26000")
    }

    /// The kind diesel-async gives the same SQLSTATE.
    fn kind(&self) -> DatabaseErrorKind {
        use DatabaseErrorKind as K;
        match self.code.as_str() {
            "23505" => K::UniqueViolation,
            "23503" => K::ForeignKeyViolation,
            "23001" => K::RestrictViolation,
            "23P01" => K::ExclusionViolation,
            "40001" => K::SerializationFailure,
            "25006" => K::ReadOnlyTransaction,
            "23502" => K::NotNullViolation,
            "23514" => K::CheckViolation,
            _ => K::Unknown,
        }
    }
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl DatabaseErrorInformation for ServerError {
    fn message(&self) -> &str {
        &self.message
    }
    fn details(&self) -> Option<&str> {
        self.detail.as_deref()
    }
    fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }
    fn table_name(&self) -> Option<&str> {
        self.table.as_deref()
    }
    fn column_name(&self) -> Option<&str> {
        self.column.as_deref()
    }
    fn constraint_name(&self) -> Option<&str> {
        self.constraint.as_deref()
    }
    fn statement_position(&self) -> Option<i32> {
        None
    }
}

impl From<WireError> for DieselError {
    /// As diesel-async maps tokio-postgres's errors: a server's refusal keeps its kind
    /// and fields, a value that does not decode is diesel's deserialization error;
    /// anything else means the connection can no longer be used.
    fn from(err: WireError) -> Self {
        match err {
            WireError::Server(e) => DieselError::DatabaseError(e.kind(), e),
            // As diesel reports a row it cannot read: the connection is fine.
            undecodable @ WireError::Undecodable(_) => {
                DieselError::DeserializationError(Box::new(undecodable))
            }
            other => DieselError::DatabaseError(
                DatabaseErrorKind::UnableToSendCommand,
                Box::new(other.to_string()),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{classify, Failure};

    fn server(code: &str, message: &str) -> DieselError {
        WireError::from(ServerError {
            code: code.into(),
            message: message.into(),
            ..Default::default()
        })
        .into()
    }

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
    fn failures_classify_as_on_the_diesel_path() {
        let lost: DieselError = WireError::Io(std::io::ErrorKind::UnexpectedEof.into()).into();
        assert!(matches!(classify(&lost), Failure::Down(m) if m.contains("connection lost")));
        assert!(matches!(
            classify(&server(
                "25006",
                "cannot execute INSERT in a read-only transaction"
            )),
            Failure::Down(_)
        ));
        assert!(matches!(
            classify(&server(
                "57014",
                "canceling statement due to statement timeout"
            )),
            Failure::TimedOut
        ));
        assert!(matches!(
            classify(&server(
                "57P01",
                "terminating connection due to administrator command"
            )),
            Failure::Down(_)
        ));
        assert!(matches!(
            classify(&server("22P02", "invalid input syntax")),
            Failure::Other
        ));
        let undecodable: DieselError = WireError::Undecodable("infinity".into())
            .in_record(("events", "k", "bad"), "updated_at")
            .into();
        assert!(matches!(
            classify(&undecodable),
            Failure::Undecodable(m) if m.contains("events/bad") && m.contains("updated_at")
        ));
    }
}
