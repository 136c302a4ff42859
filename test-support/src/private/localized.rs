//! A plain PostgreSQL server of a test's own whose messages are in another language:
//! `initdb` into a directory of its own, a free port in 26650-26699, trust sign-in on
//! loopback, `lc_messages` set to the locale asked for, that locale compiled by glibc's
//! `localedef` into the same directory and found through `LOCPATH`, so nothing is
//! installed system-wide. Stopped and removed when dropped.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::private::programs::{free_port, path, run, scratch_dir, Programs};

/// A private PostgreSQL speaking the language of one locale.
pub struct LocalizedServer {
    dir: PathBuf,
    programs: Programs,
    port: u16,
}

impl LocalizedServer {
    /// Compiles `locale` (glibc's name without its encoding, e.g. `de_DE`) in UTF-8,
    /// then makes and starts the server with `lc_messages` in it.
    pub fn start(locale: &str) -> Self {
        let dir = scratch_dir("localized");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("locale")).expect("create the test's directory");
        let server = LocalizedServer {
            programs: Programs::find(),
            port: free_port(26650..26700),
            dir,
        };
        let compiled = server.dir.join(format!("locale/{locale}.UTF-8"));
        let out = Command::new("localedef")
            .args(["-i", locale, "-f", "UTF-8"])
            .arg(&compiled)
            .output()
            .expect("run localedef (glibc's libc-bin)");
        // localedef exits 1 for warnings while still writing the locale.
        assert!(
            compiled.join("LC_MESSAGES").exists(),
            "localedef did not build {locale}.UTF-8 (are glibc's locale sources, package \
             `locales`, installed?): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        server.programs.own(&server.dir);
        let data = server.dir.join("data");
        server.programs.initdb(&data);
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} \
             -c lc_messages={locale}.UTF-8 -c fsync=off",
            server.port,
            server.dir.display()
        );
        let log = server.dir.join("server.log");
        run(server
            .with_locale(&server.programs.bin.join("pg_ctl"))
            .args([
                "start",
                "-D",
                path(&data),
                "-w",
                "-l",
                path(&log),
                "-o",
                &options,
            ]));
        server
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `program` run as the servers' user with the compiled locale on `LOCPATH`.
    fn with_locale(&self, program: &Path) -> Command {
        let mut cmd = self.programs.command(Path::new("env"));
        cmd.arg(format!("LOCPATH={}", self.dir.join("locale").display()))
            .arg(program);
        cmd
    }
}

impl Drop for LocalizedServer {
    fn drop(&mut self) {
        self.programs.stop_at_once(&self.dir.join("data"));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
