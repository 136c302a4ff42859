//! Opening a wire connection: TCP, the startup message, signing in (see `auth`).
//! Statements are prepared with the first exchange (see `statements`).

use postgres_protocol::message::frontend;
use secrecy::SecretString;
use tokio::net::TcpStream;

use super::auth::sign_in;
use super::conn::WireConn;
use super::error::WireError;
use super::tls::Link;
use crate::config::DatabaseSettings;

/// Where and as whom a wire connection signs in; the statement timeout travels with
/// the startup message, as it does in the diesel-async path's URL.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: String,
    pub(super) user: String,
    pub(super) password: SecretString,
    database: String,
    options: String,
    /// Whether a cleartext password or MD5 may be sent (`database.allow_insecure_auth`).
    pub(super) allow_insecure_auth: bool,
    /// Plain TCP or TLS (`database.sslmode`).
    link: Link,
}

impl Target {
    /// The TLS configuration `database.sslmode` asks for (None: plain TCP), or why it
    /// cannot be built; the server's diesel-async connections use it too.
    pub(crate) fn tls_config(
        &self,
    ) -> Option<Result<std::sync::Arc<rustls::ClientConfig>, String>> {
        self.link.config()
    }

    pub fn new(db: &DatabaseSettings, addr: &str) -> Self {
        Self {
            addr: addr.to_owned(),
            user: db.user.clone(),
            password: db.password.clone(),
            database: db.dbname.clone(),
            options: format!("-c statement_timeout={}", db.statement_timeout_ms),
            allow_insecure_auth: db.allow_insecure_auth,
            link: Link::new(db),
        }
    }
}

/// Opens a connection to `target` (the caller bounds the time: see the pool's create
/// timeout).
pub async fn connect(target: &Target) -> Result<WireConn, WireError> {
    let stream = TcpStream::connect(&target.addr).await?;
    // Every exchange is one write answered by one flush: never wait to coalesce.
    stream.set_nodelay(true)?;
    let stream = target.link.secure(stream, &target.addr).await?;
    let mut conn = WireConn::new(stream);
    conn.start();
    frontend::startup_message(
        [
            ("user", target.user.as_str()),
            ("database", target.database.as_str()),
            ("application_name", "shardgate"),
            ("client_encoding", "UTF8"),
            ("options", target.options.as_str()),
        ],
        &mut conn.out,
    )?;
    conn.flush().await?;
    sign_in(&mut conn, target).await?;
    let ended = conn.until_ready(None, &mut |_| {}).await?;
    if let Some(error) = ended.error {
        return Err(error.into());
    }
    conn.done();
    Ok(conn)
}
