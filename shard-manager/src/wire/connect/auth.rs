//! Signing in: answering the server's authentication requests until it says
//! `AuthenticationOk`.
//!
//! SCRAM-SHA-256 is spoken, and its last step checked: the server proves it knows the
//! password (`AuthenticationSASLFinal`), and an `AuthenticationOk` that skips that
//! proof is refused, since a server that does not know the password (an impostor)
//! would send exactly that. A cleartext password and MD5 (which an eavesdropper can
//! replay, or crack offline) are refused unless `database.allow_insecure_auth` is set.

use fallible_iterator::FallibleIterator;
use postgres_protocol::authentication::md5_hash;
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256, SCRAM_SHA_256};
use postgres_protocol::message::backend::Message;
use postgres_protocol::message::frontend;
use secrecy::ExposeSecret;

use super::target::Target;
use crate::wire::conn::WireConn;
use crate::wire::error::{ServerError, WireError};

/// Where a SCRAM exchange stands.
enum Scram {
    NotStarted,
    /// Begun: the server has not proved yet that it knows the password.
    Started(Box<ScramSha256>),
    /// The server's proof checked.
    Verified,
}

/// Answers the server's authentication requests until it says `AuthenticationOk`.
pub(in crate::wire) async fn sign_in(
    conn: &mut WireConn,
    target: &Target,
) -> Result<(), WireError> {
    let password = target.password.expose_secret().as_bytes();
    let mut scram = Scram::NotStarted;
    loop {
        match conn.answer().await? {
            Message::AuthenticationOk => {
                return match scram {
                    Scram::Started(_) => Err(WireError::Auth(format!(
                        "{} said the sign-in succeeded without proving it knows the \
                         password (no SCRAM final message): refused, as an impostor \
                         would do exactly that",
                        target.addr
                    ))),
                    Scram::NotStarted | Scram::Verified => Ok(()),
                };
            }
            Message::AuthenticationCleartextPassword => {
                insecure(target, "a cleartext password")?;
                frontend::password_message(password, &mut conn.out)?;
            }
            Message::AuthenticationMd5Password(body) => {
                insecure(target, "an MD5 password hash")?;
                let hash = md5_hash(target.user.as_bytes(), password, body.salt());
                frontend::password_message(hash.as_bytes(), &mut conn.out)?;
            }
            Message::AuthenticationSasl(body) => {
                let offered: Vec<String> = body.mechanisms().map(|m| Ok(m.to_owned())).collect()?;
                if !offered.iter().any(|m| m == SCRAM_SHA_256) {
                    return Err(WireError::Auth(format!(
                        "{} offers {offered:?}; this client speaks {SCRAM_SHA_256}",
                        target.addr
                    )));
                }
                if !matches!(scram, Scram::NotStarted) {
                    return Err(out_of_turn("a second SASL exchange"));
                }
                // No channel binding is offered (TLS, when configured, protects the link).
                let started = ScramSha256::new(password, ChannelBinding::unsupported());
                frontend::sasl_initial_response(SCRAM_SHA_256, started.message(), &mut conn.out)?;
                scram = Scram::Started(Box::new(started));
            }
            Message::AuthenticationSaslContinue(body) => {
                let Scram::Started(exchange) = &mut scram else {
                    return Err(out_of_turn("SASL continue"));
                };
                exchange
                    .update(body.data())
                    .map_err(|e| WireError::Auth(e.to_string()))?;
                frontend::sasl_response(exchange.message(), &mut conn.out)?;
            }
            Message::AuthenticationSaslFinal(body) => {
                let Scram::Started(exchange) = &mut scram else {
                    return Err(out_of_turn("SASL final"));
                };
                // Proves the server knew the password too.
                exchange.finish(body.data()).map_err(|e| {
                    WireError::Auth(format!(
                        "{}'s SCRAM proof does not verify: {e}",
                        target.addr
                    ))
                })?;
                scram = Scram::Verified;
                continue;
            }
            Message::ErrorResponse(body) => return Err(ServerError::parse(&body)?.into()),
            _ => {
                return Err(WireError::Auth(format!(
                    "{} asked for a way of signing in this client does not speak",
                    target.addr
                )))
            }
        }
        conn.flush().await?;
    }
}

/// Refuses a way of signing in that exposes the password, unless configured.
fn insecure(target: &Target, what: &str) -> Result<(), WireError> {
    if target.allow_insecure_auth {
        return Ok(());
    }
    Err(WireError::Auth(format!(
        "{} asks for {what}, which an eavesdropper can replay or crack: refused; \
         configure the server for scram-sha-256 (pg_hba.conf, password_encryption), \
         or set database.allow_insecure_auth = true to allow it",
        target.addr
    )))
}

fn out_of_turn(what: &str) -> WireError {
    WireError::Protocol(format!("{what} out of turn while signing in"))
}

#[cfg(test)]
#[path = "auth_tests.rs"]
mod tests;
