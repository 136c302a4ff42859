//! Opening a wire connection: TCP, the startup message, signing in (SCRAM-SHA-256, MD5
//! or a plain password, as the server asks). Statements are prepared with the first
//! exchange (see `statements`).

use postgres_protocol::authentication::md5_hash;
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256, SCRAM_SHA_256};
use postgres_protocol::message::backend::Message;
use postgres_protocol::message::frontend;
use secrecy::{ExposeSecret, SecretString};
use tokio::net::TcpStream;

use super::conn::WireConn;
use super::error::{ServerError, WireError};
use crate::config::DatabaseSettings;

/// Where and as whom a wire connection signs in; the statement timeout travels with
/// the startup message, as it does in the diesel-async path's URL.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: String,
    user: String,
    password: SecretString,
    database: String,
    options: String,
}

impl Target {
    pub fn new(db: &DatabaseSettings, addr: &str) -> Self {
        Self {
            addr: addr.to_owned(),
            user: db.user.clone(),
            password: db.password.clone(),
            database: db.dbname.clone(),
            options: format!("-c statement_timeout={}", db.statement_timeout_ms),
        }
    }
}

/// Opens a connection to `target` (the caller bounds the time: see the pool's create
/// timeout).
pub async fn connect(target: &Target) -> Result<WireConn, WireError> {
    let stream = TcpStream::connect(&target.addr).await?;
    // Every exchange is one write answered by one flush: never wait to coalesce.
    stream.set_nodelay(true)?;
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

/// Answers the server's authentication requests until it says `AuthenticationOk`.
async fn sign_in(conn: &mut WireConn, target: &Target) -> Result<(), WireError> {
    let password = target.password.expose_secret().as_bytes();
    let mut scram: Option<ScramSha256> = None;
    loop {
        match conn.answer().await? {
            Message::AuthenticationOk => return Ok(()),
            Message::AuthenticationCleartextPassword => {
                frontend::password_message(password, &mut conn.out)?;
            }
            Message::AuthenticationMd5Password(body) => {
                let hash = md5_hash(target.user.as_bytes(), password, body.salt());
                frontend::password_message(hash.as_bytes(), &mut conn.out)?;
            }
            Message::AuthenticationSasl(body) => {
                use fallible_iterator::FallibleIterator;
                let offered: Vec<String> = body.mechanisms().map(|m| Ok(m.to_owned())).collect()?;
                if !offered.iter().any(|m| m == SCRAM_SHA_256) {
                    return Err(WireError::Auth(format!(
                        "the server offers {offered:?}; this client speaks {SCRAM_SHA_256}"
                    )));
                }
                // No TLS on these connections, so no channel binding to offer.
                let started = ScramSha256::new(password, ChannelBinding::unsupported());
                frontend::sasl_initial_response(SCRAM_SHA_256, started.message(), &mut conn.out)?;
                scram = Some(started);
            }
            Message::AuthenticationSaslContinue(body) => {
                let exchange = scram.as_mut().ok_or_else(|| out_of_turn("SASL continue"))?;
                exchange
                    .update(body.data())
                    .map_err(|e| WireError::Auth(e.to_string()))?;
                frontend::sasl_response(exchange.message(), &mut conn.out)?;
            }
            Message::AuthenticationSaslFinal(body) => {
                let exchange = scram.as_mut().ok_or_else(|| out_of_turn("SASL final"))?;
                // Proves the server knew the password too.
                exchange
                    .finish(body.data())
                    .map_err(|e| WireError::Auth(e.to_string()))?;
                continue;
            }
            Message::ErrorResponse(body) => return Err(ServerError::parse(&body)?.into()),
            _ => {
                return Err(WireError::Auth(
                    "the server asked for a way of signing in this client does not speak".into(),
                ))
            }
        }
        conn.flush().await?;
    }
}

fn out_of_turn(what: &str) -> WireError {
    WireError::Protocol(format!("{what} before the exchange began"))
}
