//! pg_autoctl for a formation of the test's own (`autoctl`): its commands and its
//! keepers (`pg_autoctl run`), run as `postgres` in the network namespace of the
//! process they are for, with pg_autoctl's configuration, state and pid files (XDG
//! folders) and the keepers' logs in the test's directory, never in the `postgres`
//! user's home.
//!
//! Each keeper runs in a process group of its own, with its PostgreSQL under it, so
//! [`Keepers::kill`] is the loss of a whole machine: `kill -9` of the group.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::private::programs::{path, run, Programs};

/// The formation's processes: 0 the monitor, 1 and 2 the nodes.
pub struct Keepers {
    dir: PathBuf,
    programs: Programs,
    autoctl: PathBuf,
    /// Each process's network namespace; None: this one.
    netns: [Option<String>; 3],
    /// Each process's keeper, while it runs.
    running: Mutex<[Option<Child>; 3]>,
}

impl Keepers {
    pub fn new(
        dir: PathBuf,
        programs: Programs,
        autoctl: PathBuf,
        netns: [Option<String>; 3],
    ) -> Self {
        Keepers {
            dir,
            programs,
            autoctl,
            netns,
            running: Mutex::new([None, None, None]),
        }
    }

    /// `pg_autoctl run` for process `i` on `data`, in a process group of its own,
    /// logging to `<dir>/<data's name>.log`.
    pub fn spawn(&self, i: usize, data: &Path) {
        use std::os::unix::process::CommandExt;
        let name = data.file_name().unwrap().to_string_lossy().into_owned();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{name}.log")))
            .expect("the keeper's log");
        let mut cmd = self.env_command(i);
        cmd.arg(&self.autoctl)
            .args(["run", "--pgdata", path(data)])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("a log handle"))
            .stderr(log)
            .process_group(0);
        let child = cmd.spawn().expect("start pg_autoctl run");
        self.running.lock().unwrap()[i] = Some(child);
    }

    /// `kill -9` of process `i`'s keeper's group: the keeper, its PostgreSQL and
    /// every backend.
    pub fn kill(&self, i: usize) {
        let mut running = self.running.lock().unwrap();
        let mut child = running[i].take().expect("the keeper runs");
        run(Command::new("kill").args(["-9", "--", &format!("-{}", child.id())]));
        let _ = child.wait();
    }

    /// The last `lines` lines of process `i`'s keeper log (0 the monitor, 1 and 2 the
    /// nodes), or why there are none.
    pub fn log_tail(&self, i: usize, lines: usize) -> String {
        let name = ["monitor", "node0", "node1"][i];
        let file = self.dir.join(format!("{name}.log"));
        match std::fs::read_to_string(&file) {
            Ok(text) => {
                let all: Vec<&str> = text.lines().collect();
                all[all.len().saturating_sub(lines)..].join("\n")
            }
            Err(e) => format!("(no log at {}: {e})", file.display()),
        }
    }

    /// pg_autoctl `args` for process `i`.
    pub fn autoctl(&self, i: usize, args: &[&str]) -> Output {
        let mut cmd = self.env_command(i);
        cmd.arg(&self.autoctl).args(args);
        cmd.output().expect("run pg_autoctl")
    }

    /// [`autoctl`](Self::autoctl), which must succeed.
    pub fn autoctl_ok(&self, i: usize, args: &[&str]) {
        let out = self.autoctl(i, args);
        assert!(
            out.status.success(),
            "pg_autoctl {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Every keeper stopped, the nodes first (SIGTERM: each keeper stops its
    /// PostgreSQL; -9 of the group past 10 s), the monitor last.
    pub fn stop_all(&self) {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        for i in [2, 1, 0] {
            if let Some(mut child) = running[i].take() {
                let _ = Command::new("kill")
                    .args(["-TERM", "--", &format!("-{}", child.id())])
                    .status();
                let deadline = Instant::now() + Duration::from_secs(10);
                while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                    std::thread::sleep(Duration::from_millis(50));
                }
                let _ = Command::new("kill")
                    .args(["-9", "--", &format!("-{}", child.id())])
                    .status();
                let _ = child.wait();
            }
        }
    }

    /// pg_autoctl's environment, as `postgres` in process `i`'s network namespace.
    fn env_command(&self, i: usize) -> Command {
        let mut cmd = self
            .programs
            .command_in(self.netns[i].as_deref(), Path::new("env"));
        for (var, sub) in [
            ("XDG_CONFIG_HOME", "config"),
            ("XDG_DATA_HOME", "data"),
            ("XDG_RUNTIME_DIR", "run"),
        ] {
            cmd.arg(format!("{var}={}", self.dir.join(sub).display()));
        }
        cmd.arg(format!(
            "PATH={}:/usr/bin:/bin",
            self.programs.bin.display()
        ));
        cmd
    }
}

impl Drop for Keepers {
    fn drop(&mut self) {
        self.stop_all();
    }
}
