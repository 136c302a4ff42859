//! The private server the test speaks to: initdb into a temporary directory, its own
//! port, trust sign-in on loopback, `lc_messages = de_DE.UTF-8` with the locale
//! compiled by `localedef` into the same directory and found through `LOCPATH`. As
//! root, its programs run as the `postgres` system user, as the cluster's do.

use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::{Command, Output};

/// A private PostgreSQL speaking German; stopped and removed when dropped.
pub struct GermanServer {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    /// Run as the `postgres` system user (we are root, whom initdb refuses).
    as_postgres: bool,
}

impl GermanServer {
    pub fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("sg-german-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("locale")).expect("create the test's directory");
        let as_postgres = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
        let server = GermanServer {
            bin: pg_bin(),
            port: free_port(),
            dir,
            as_postgres,
        };
        let locale = server.dir.join("locale/de_DE.UTF-8");
        let out = Command::new("localedef")
            .args(["-i", "de_DE", "-f", "UTF-8"])
            .arg(&locale)
            .output()
            .expect("run localedef (glibc's libc-bin)");
        // localedef exits 1 for warnings while still writing the locale.
        assert!(
            locale.join("LC_MESSAGES").exists(),
            "localedef did not build de_DE.UTF-8 (are glibc's locale sources, package \
             `locales`, installed?): {}",
            text(&out)
        );
        if as_postgres {
            let out = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&server.dir)
                .output()
                .expect("run chown");
            assert!(out.status.success(), "chown: {}", text(&out));
        }
        let data = server.dir.join("data");
        server.pg(
            "initdb",
            &[
                "-D".into(),
                data.clone().into(),
                "-U".into(),
                "postgres".into(),
                "--auth=trust".into(),
                "-E".into(),
                "UTF8".into(),
                "--locale=C".into(),
                "--no-sync".into(),
                "--no-instructions".into(),
            ],
        );
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} \
             -c lc_messages=de_DE.UTF-8 -c fsync=off",
            server.port,
            server.dir.display()
        );
        server.pg(
            "pg_ctl",
            &[
                "start".into(),
                "-D".into(),
                data.into(),
                "-w".into(),
                "-l".into(),
                server.dir.join("server.log").into(),
                "-o".into(),
                options.into(),
            ],
        );
        server
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Runs one of PostgreSQL's programs (as `postgres` when we are root), with the
    /// compiled locale on `LOCPATH`; inherited descriptors 3-9 (a cluster lock held by
    /// whoever started the tests) are closed, so the server never holds one.
    fn pg(&self, program: &str, args: &[OsString]) -> Output {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(r#"exec 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&-; exec "$@""#)
            .arg("sh");
        if self.as_postgres {
            cmd.args(["runuser", "-u", "postgres", "--"]);
        }
        cmd.arg("env")
            .arg(format!("LOCPATH={}", self.dir.join("locale").display()))
            .arg(self.bin.join(program))
            .args(args)
            .current_dir("/");
        let out = cmd.output().expect("run a PostgreSQL program");
        assert!(out.status.success(), "{program}: {}", text(&out));
        out
    }
}

impl Drop for GermanServer {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        if data.join("postmaster.pid").exists() {
            // Not `pg`: a failed stop must not panic while a failed test unwinds.
            let mut cmd = Command::new(if self.as_postgres { "runuser" } else { "env" });
            if self.as_postgres {
                cmd.args(["-u", "postgres", "--"]);
            }
            let _ = cmd
                .arg(self.bin.join("pg_ctl"))
                .arg("stop")
                .arg("-D")
                .arg(&data)
                .args(["-m", "immediate"])
                .output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// PostgreSQL's programs, found as `setup.sh` finds them: the newest
/// /usr/lib/postgresql/*/bin, else the folder of `pg_ctl` on the PATH.
fn pg_bin() -> PathBuf {
    let newest = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse::<u32>().ok()?, e.path())))
        .filter(|(_, p)| p.join("bin/initdb").exists() && p.join("bin/pg_ctl").exists())
        .max_by_key(|(v, _)| *v);
    if let Some((_, dir)) = newest {
        return dir.join("bin");
    }
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .find(|d| d.join("pg_ctl").exists() && d.join("initdb").exists())
        .expect("PostgreSQL's initdb and pg_ctl (installed by ./setup.sh up)")
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("its address").port()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
