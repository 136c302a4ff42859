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
mod tests {
    //! Signing in against a scripted peer on a local socket: the protocol's refusals, which
    //! a real PostgreSQL configured for SCRAM never exercises. (Signing in with SCRAM
    //! against real servers is what every API test and `tests/wire_tls.rs` do.)

    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::task::JoinHandle;

    use crate::config::DatabaseSettings;
    use crate::wire::{connect, Target, WireError};

    fn target(addr: &str, allow_insecure_auth: bool) -> Target {
        let db = DatabaseSettings {
            user: "app".into(),
            password: "secret".to_string().into(),
            dbname: "shardgate".into(),
            connect_timeout_ms: 1000,
            statement_timeout_ms: 1000,
            txn_lock_timeout_ms: 2000,
            pool_max_size: 1,
            pool_wait_timeout_ms: 100,
            batch_point_reads: true,
            batch_writes: true,
            pool_threads: 1,
            allow_insecure_auth,
            sslmode: Default::default(),
            ssl_root_cert: None,
        };
        Target::new(&db, addr)
    }

    /// Signs in to `addr`, which must refuse; bounded, so a client that sends a password
    /// and waits for an answer the script never gives fails instead of hanging.
    async fn refused(addr: &str, allow_insecure_auth: bool) -> WireError {
        let target = target(addr, allow_insecure_auth);
        match tokio::time::timeout(Duration::from_secs(5), connect(&target)).await {
            Ok(Ok(_)) => panic!("signed in"),
            Ok(Err(e)) => e,
            Err(_) => panic!("no refusal within 5 s: the client went on signing in"),
        }
    }

    /// One message from the client: its type byte and body.
    async fn message(peer: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
        let kind = peer.read_u8().await.ok()?;
        let len = peer.read_i32().await.ok()?;
        let mut body = vec![0; len as usize - 4];
        peer.read_exact(&mut body).await.ok()?;
        Some((kind, body))
    }

    /// An authentication request with its code and data.
    fn auth(code: i32, data: &[u8]) -> Vec<u8> {
        let mut out = vec![b'R'];
        out.extend((8 + data.len() as i32).to_be_bytes());
        out.extend(code.to_be_bytes());
        out.extend(data);
        out
    }

    /// `AuthenticationOk` then `ReadyForQuery`.
    fn signed_in() -> Vec<u8> {
        let mut out = auth(0, &[]);
        out.extend([b'Z', 0, 0, 0, 5, b'I']);
        out
    }

    /// A peer that reads the startup message, then plays `script` and returns every
    /// message type the client sent after the startup.
    async fn peer<F, Fut>(script: F) -> (String, JoinHandle<Vec<u8>>)
    where
        F: FnOnce(TcpStream) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = TcpStream> + Send,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let task = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let len = stream.read_i32().await.unwrap();
            let mut startup = vec![0; len as usize - 4];
            stream.read_exact(&mut startup).await.unwrap();
            let mut stream = script(stream).await;
            let mut sent = Vec::new();
            while let Some((kind, _)) = message(&mut stream).await {
                sent.push(kind);
            }
            sent
        });
        (addr, task)
    }

    #[tokio::test]
    async fn a_cleartext_password_is_refused_unless_allowed() {
        let (addr, sent) = peer(|mut s| async move {
            s.write_all(&auth(3, &[])).await.unwrap();
            s
        })
        .await;
        let err = refused(&addr, false).await;
        assert!(
            matches!(&err, WireError::Auth(m) if m.contains("cleartext") && m.contains("database.allow_insecure_auth")),
            "{err}"
        );
        // The client said goodbye (Terminate) and never sent the password.
        assert_eq!(sent.await.unwrap(), vec![b'X']);

        let (addr, sent) = peer(|mut s| async move {
            s.write_all(&auth(3, &[])).await.unwrap();
            let (kind, body) = message(&mut s).await.unwrap();
            assert_eq!((kind, body.as_slice()), (b'p', &b"secret\0"[..]));
            s.write_all(&signed_in()).await.unwrap();
            s
        })
        .await;
        let conn = connect(&target(&addr, true)).await.expect("allowed");
        drop(conn);
        assert_eq!(sent.await.unwrap(), vec![b'X']);
    }

    #[tokio::test]
    async fn md5_is_refused_unless_allowed() {
        let (addr, sent) = peer(|mut s| async move {
            s.write_all(&auth(5, b"salt")).await.unwrap();
            s
        })
        .await;
        let err = refused(&addr, false).await;
        assert!(
            matches!(&err, WireError::Auth(m) if m.contains("MD5") && m.contains("database.allow_insecure_auth")),
            "{err}"
        );
        assert_eq!(sent.await.unwrap(), vec![b'X']);
    }

    /// Answers the client's first SCRAM message with a valid server-first message, and
    /// reads the client's proof.
    async fn scram_until_the_proof(s: &mut TcpStream) {
        s.write_all(&auth(10, b"SCRAM-SHA-256\0\0")).await.unwrap();
        let (kind, body) = message(s).await.unwrap();
        assert_eq!(kind, b'p');
        let first = String::from_utf8_lossy(&body).into_owned();
        // The nonce is any printable characters but a comma, so it may itself hold "r=":
        // everything after the first ",r=" is the nonce.
        let nonce = first.split_once(",r=").unwrap().1.to_owned();
        let server_first = format!("r={nonce}server,s=c2FsdHNhbHRzYWx0c2FsdA==,i=4096");
        s.write_all(&auth(11, server_first.as_bytes()))
            .await
            .unwrap();
        let (kind, _proof) = message(s).await.unwrap();
        assert_eq!(kind, b'p');
    }

    #[tokio::test]
    async fn scram_without_the_servers_proof_is_refused() {
        let (addr, sent) = peer(|mut s| async move {
            scram_until_the_proof(&mut s).await;
            // An impostor that does not know the password skips the final message.
            s.write_all(&signed_in()).await.unwrap();
            s
        })
        .await;
        let err = refused(&addr, false).await;
        assert!(
            matches!(&err, WireError::Auth(m) if m.contains("without proving")),
            "{err}"
        );
        assert_eq!(sent.await.unwrap(), vec![b'X']);
    }

    #[tokio::test]
    async fn a_wrong_scram_proof_is_refused() {
        let (addr, _sent) = peer(|mut s| async move {
            scram_until_the_proof(&mut s).await;
            let wrong = "v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
            s.write_all(&auth(12, wrong.as_bytes())).await.unwrap();
            s.write_all(&signed_in()).await.unwrap();
            s
        })
        .await;
        let err = refused(&addr, false).await;
        assert!(
            matches!(&err, WireError::Auth(m) if m.contains("does not verify")),
            "{err}"
        );
    }
}
