//! TLS from the gateway's own client (`wire`: requests and health probes) and the control
//! plane's tokio-postgres links (slot moves, the metadata connection) to a real
//! PostgreSQL, with a certificate made here: a test CA and a server certificate for
//! 127.0.0.1 are written into one primary's data directory and `ssl` is turned on
//! there (clients that do not ask for TLS are not affected); the guard turns it off
//! again however the test ends.
//!
//! It changes a server's configuration, so it runs under the exclusive cluster lock:
//! `flock /tmp/sg-cluster.lock cargo test -p control-plane --test wire_tls`, with the
//! environment of `eval "$(./setup.sh env)"` (and SHARDGATE_SETUP naming the setup.sh
//! that started the cluster).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use control_plane::map::meta;
use control_plane::moves::shard_conn::ShardConn;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, KeyUsagePurpose};
use shard_manager::config::{self, DatabaseSettings, SslMode};
use shard_manager::live_map::ShardMap;
use shard_manager::servers::Server;
use shard_manager::wire::{connect, Target, WireError};
use shard_manager::{ClusterSettings, MapVersion, Role, ShardId};

/// The server whose configuration the test changes (`shards[0].primary`).
const TLS_SERVER: &str = "shard0-primary";

fn setup_sh() -> PathBuf {
    std::env::var("SHARDGATE_SETUP")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../setup.sh"))
}

/// Runs SQL as the superuser on `server` (through `setup.sh pg psql`, which holds its
/// credentials); each statement on its own (ALTER SYSTEM refuses a transaction).
fn superuser(server: &str, statements: &[&str]) -> String {
    let mut cmd = Command::new(setup_sh());
    cmd.args(["pg", "psql", server, "-At", "-v", "ON_ERROR_STOP=1"]);
    for sql in statements {
        cmd.args(["-c", sql]);
    }
    let out = cmd.output().expect("run setup.sh pg psql");
    assert!(
        out.status.success(),
        "{statements:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A test certificate authority.
fn authority(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// Turns `ssl` on on [`TLS_SERVER`] with a certificate for 127.0.0.1 signed by `ca`;
/// turns it off and removes the files when dropped.
struct SslOn {
    files: Vec<PathBuf>,
}

impl SslOn {
    fn enable(ca: &CertifiedIssuer<'static, KeyPair>) -> Self {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&key, ca)
            .unwrap();
        let data = PathBuf::from(superuser(TLS_SERVER, &["SHOW data_directory"]));
        let (cert_path, key_path) = (data.join("sg-test-tls.crt"), data.join("sg-test-tls.key"));
        let guard = SslOn {
            files: vec![cert_path.clone(), key_path.clone()],
        };
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        for file in &guard.files {
            let owned = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(file)
                .status()
                .unwrap();
            assert!(owned.success());
        }
        let private = Command::new("chmod")
            .arg("600")
            .arg(&key_path)
            .status()
            .unwrap();
        assert!(private.success());
        superuser(
            TLS_SERVER,
            &[
                &format!("ALTER SYSTEM SET ssl_cert_file = '{}'", cert_path.display()),
                &format!("ALTER SYSTEM SET ssl_key_file = '{}'", key_path.display()),
                "ALTER SYSTEM SET ssl = on",
                "SELECT pg_reload_conf()",
            ],
        );
        // The reload is asynchronous: new sessions see it once the postmaster has.
        let deadline = Instant::now() + Duration::from_secs(10);
        while superuser(TLS_SERVER, &["SHOW ssl"]) != "on" {
            assert!(Instant::now() < deadline, "ssl never came on");
            std::thread::sleep(Duration::from_millis(50));
        }
        guard
    }
}

impl Drop for SslOn {
    fn drop(&mut self) {
        let _ = Command::new(setup_sh())
            .args(["pg", "psql", TLS_SERVER, "-At"])
            .args(["-c", "ALTER SYSTEM RESET ssl"])
            .args(["-c", "ALTER SYSTEM RESET ssl_cert_file"])
            .args(["-c", "ALTER SYSTEM RESET ssl_key_file"])
            .args(["-c", "SELECT pg_reload_conf()"])
            .status();
        for file in &self.files {
            let _ = std::fs::remove_file(file);
        }
    }
}

fn settings() -> ClusterSettings {
    config::load(None).expect("settings: run with the environment of ./setup.sh env")
}

fn database(mode: SslMode, root: Option<&Path>) -> DatabaseSettings {
    let mut db = settings().database;
    db.sslmode = mode;
    db.ssl_root_cert = root.map(Path::to_path_buf);
    db
}

/// Signs in (SCRAM-SHA-256 on these servers) and runs a statement.
async fn sign_in(db: &DatabaseSettings, addr: &str) -> Result<(), WireError> {
    let mut conn = connect(&Target::new(db, addr)).await?;
    conn.simple("SELECT 1").await
}

/// A health probe through the server's wire pool (what the monitor runs).
async fn probe(db: &DatabaseSettings, addr: &str) -> Result<(), String> {
    let server = Server::new(ShardId(0), Role::Primary, addr, db, Duration::from_secs(1))
        .map_err(|e| e.to_string())?;
    let probed = server
        .probe(async |conn| shard_manager::wire::upkeep::wal_position(conn).await)
        .await;
    probed.map(drop).map_err(|e| e.to_string())
}

/// A slot mover's connection to `shard`'s primary (tokio-postgres), and a statement on it.
async fn mover_link(db: &DatabaseSettings, shard: u32) -> Result<(), String> {
    let mut cluster = settings();
    cluster.database = db.clone();
    let map = ShardMap::from_settings(&cluster, MapVersion(0)).unwrap();
    let conn = ShardConn::open(&cluster, &map, ShardId(shard))
        .await
        .map_err(|e| e.to_string())?;
    let row = conn.client.query_one("SELECT 1", &[]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 1);
    Ok(())
}

/// The metadata connection (tokio-postgres, LISTEN/NOTIFY), made to `addr`.
async fn metadata_link(db: &DatabaseSettings, addr: &str) -> Result<(), String> {
    let mut cluster = settings();
    cluster.database = db.clone();
    cluster.metadata.address = addr.to_owned();
    cluster.metadata.dbname = db.dbname.clone();
    let conn = meta::connect(&cluster).await.map_err(|e| e.to_string())?;
    conn.client.simple_query("SELECT 1").await.unwrap();
    Ok(())
}

fn port_of(addr: &str) -> &str {
    addr.rsplit_once(':').unwrap().1
}

#[tokio::test]
async fn verify_full_checks_the_chain_and_the_host_name_against_a_real_server() {
    let cluster = settings();
    let tls_addr = cluster.shards[0].primary.clone();
    let plain_addr = cluster.shards[1].primary.clone();
    let dir = std::env::temp_dir().join(format!("sg-wire-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (ca, other_ca) = (
        authority("shardgate test CA"),
        authority("someone else's CA"),
    );
    let (ca_file, other_file) = (dir.join("ca.pem"), dir.join("other-ca.pem"));
    std::fs::write(&ca_file, ca.pem()).unwrap();
    std::fs::write(&other_file, other_ca.pem()).unwrap();

    // Plain, as setup.sh runs it: SCRAM-SHA-256 signs in, its proof checked.
    sign_in(&database(SslMode::Disable, None), &tls_addr)
        .await
        .expect("plain SCRAM sign-in");

    let _ssl = SslOn::enable(&ca);
    let verified = database(SslMode::VerifyFull, Some(&ca_file));
    sign_in(&verified, &tls_addr)
        .await
        .expect("verify-full with the right CA and host");

    // A certificate from another authority: refused.
    let err = sign_in(&database(SslMode::VerifyFull, Some(&other_file)), &tls_addr)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, WireError::Tls(m) if m.contains("UnknownIssuer")),
        "{err}"
    );
    // The right authority, but the server reached under a name the certificate does
    // not carry (it names 127.0.0.1 only): refused.
    let by_name = format!("localhost:{}", port_of(&tls_addr));
    let err = sign_in(&verified, &by_name).await.unwrap_err();
    assert!(
        matches!(&err, WireError::Tls(m) if m.contains("not valid for name \"localhost\"")),
        "{err}"
    );
    // `require` encrypts without checking who answers.
    sign_in(&database(SslMode::Require, None), &by_name)
        .await
        .expect("require takes any certificate");

    // A server that does not speak TLS is refused, never used in plain text.
    let err = sign_in(&verified, &plain_addr).await.unwrap_err();
    assert!(
        matches!(&err, WireError::Tls(m) if m.contains("does not speak TLS")),
        "{err}"
    );

    // Health checks (on the same wire pool) follow the same settings.
    probe(&verified, &tls_addr)
        .await
        .expect("a health probe through verify-full");
    let err = probe(&database(SslMode::VerifyFull, Some(&other_file)), &tls_addr)
        .await
        .unwrap_err();
    assert!(err.contains("UnknownIssuer"), "{err}");
    let err = probe(&verified, &plain_addr).await.unwrap_err();
    assert!(err.contains("TLS"), "{err}");

    // So do the control plane's links: a slot mover's connection to a primary...
    mover_link(&verified, 0)
        .await
        .expect("a mover connection through verify-full");
    let err = mover_link(&database(SslMode::VerifyFull, Some(&other_file)), 0)
        .await
        .unwrap_err();
    assert!(
        err.contains("shard-0") && err.contains("UnknownIssuer"),
        "{err}"
    );
    let err = mover_link(&verified, 1).await.unwrap_err();
    assert!(err.contains("server does not support TLS"), "{err}");
    // ... and the metadata connection.
    metadata_link(&verified, &tls_addr)
        .await
        .expect("a metadata connection through verify-full");
    let err = metadata_link(&database(SslMode::VerifyFull, Some(&other_file)), &tls_addr)
        .await
        .unwrap_err();
    assert!(err.contains("UnknownIssuer"), "{err}");
    let err = metadata_link(&verified, &plain_addr).await.unwrap_err();
    assert!(err.contains("server does not support TLS"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
