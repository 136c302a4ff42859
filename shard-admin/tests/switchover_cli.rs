//! `shard-admin switchover`'s refusals, run as a user runs them against the topology
//! `./setup.sh up` starts: each is one clear line, exit code 2 and a `refused` audit
//! line, and the stored map is exactly as it was; and one that happens, shard 1 handed to
//! its replica and back on that topology's HA manager. (A switchover under load is proven
//! on a real HA manager in control-plane's tests.)

mod common;

use common::{assert_refused, cli, cli_with, cli_without, text};

/// A monitor address nothing listens on: the refusals below come before it is asked.
const MONITOR: (&str, &str) = (
    "SHARDGATE__FAILOVER__HA_MONITOR",
    "postgres://autoctl_node@127.0.0.1:1/pg_auto_failover",
);

/// The same dead address as the administrator's monitor (`./setup.sh env admin`).
const ADMIN_MONITOR: (&str, &str) = ("SHARDGATE__FAILOVER__HA_MONITOR_ADMIN", MONITOR.1);

/// The two tests must not overlap: one checks the map is unchanged, the other changes it.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn every_refusal_names_why_and_changes_nothing() {
    let _alone = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let before = text(&cli(&["map", "show"]).stdout);
    assert!(before.starts_with("map v"), "{before}");
    let history = text(&cli(&["map", "history"]).stdout);

    // As against a cluster made with HA=0 (`./setup.sh env` names the monitor of one
    // made under pg_auto_failover, the default).
    let out = cli_without(
        &["switchover", "--shard", "1"],
        &[MONITOR.0, ADMIN_MONITOR.0],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("refused: no HA manager runs the shards (`failover.ha_monitor` is not set"),
        "{stderr}"
    );
    assert_refused(&["switchover"], &stderr);

    let cases: [(&[&str], &str); 6] = [
        (&["switchover", "--shard", "9"], "refused: shard-9 is not in the map (its shards: shard-0, shard-1, shard-2"),
        (
            &["switchover", "--shard", "1", "--to", "127.0.0.1:1"],
            "refused: 127.0.0.1:1 is not a server of shard-1 (its primary: 127.0.0.1:25433; its replicas: 127.0.0.1:25533)",
        ),
        (
            &["switchover", "--shard", "1", "--to", "127.0.0.1:25433"],
            "refused: 127.0.0.1:25433 is already shard-1's primary; nothing was changed",
        ),
        (&["switchover", "--shard", "one"], "invalid value 'one' for '--shard <SHARD>'"),
        (
            &["switchover", "--shard", "1", "--lift-drain", "--to", "127.0.0.1:25533"],
            "the argument '--lift-drain' cannot be used with '--to <TO>'",
        ),
        (&["switchover", "--shard", "9", "--lift-drain"], "refused: shard-9 is not in the map (its shards: shard-0, shard-1, shard-2"),
    ];
    for (args, expected) in cases {
        let out = cli_with(args, &[MONITOR, ADMIN_MONITOR]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        // (Arguments clap refuses are refused before any command runs: no audit line.)
        let by_clap = args.get(2) == Some(&"one")
            || (args.contains(&"--lift-drain") && args.contains(&"--to"));
        if !by_clap {
            assert_refused(args, &stderr);
        }
    }

    // The administrator's monitor another than the one read: never asked to promote.
    let other = (
        ADMIN_MONITOR.0,
        "postgres://autoctl_node@127.0.0.1:2/pg_auto_failover",
    );
    let out = cli_with(&["switchover", "--shard", "1"], &[MONITOR, other]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("refused: failover.ha_monitor_admin (127.0.0.1:2) and failover.ha_monitor (127.0.0.1:1) name different monitors; nothing was changed"),
        "{stderr}"
    );
    assert_refused(&["switchover"], &stderr);

    // Past the refusals that need nothing, the monitor is asked: down, it fails the
    // command before anything was changed.
    let out = cli_with(&["switchover", "--shard", "1"], &[MONITOR, ADMIN_MONITOR]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(" outcome=\"failed\""), "{stderr}");
    assert!(
        stderr.contains("the HA manager's monitor (postgres://autoctl_node@127.0.0.1:1/pg_auto_failover) did not answer"),
        "{stderr}"
    );

    assert_eq!(
        text(&cli(&["map", "show"]).stdout),
        before,
        "the map is unchanged"
    );
    assert_eq!(
        text(&cli(&["map", "history"]).stdout),
        history,
        "no history line"
    );
}

/// A switchover as a user runs it on `./setup.sh up`'s topology, whose shards
/// pg_auto_failover runs by default: shard 1's primary handed to its replica and back.
/// Each time the command says so, the map names the new primary, and the history has a
/// `switchover` line. (Skipped, saying so, on a cluster made with HA=0.)
#[test]
fn a_switchover_hands_shard_1_to_its_replica_and_back() {
    if std::env::var_os(MONITOR.0).is_none() {
        eprintln!("skipped: no HA manager runs this cluster (made with HA=0)");
        return;
    }
    require_admin();
    let _alone = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let line = |map: &str| -> String {
        map.lines()
            .find(|l| l.starts_with("shard-1:"))
            .unwrap_or_else(|| panic!("no shard-1 in {map}"))
            .to_owned()
    };
    let before = line(&text(&cli(&["map", "show"]).stdout));
    let (primary, replica) = ("127.0.0.1:25433", "127.0.0.1:25533");
    assert!(
        before.starts_with(&format!("shard-1: primary {primary}, replicas [{replica}]")),
        "{before}"
    );
    // A drain a killed switchover left: the next one lifts it before it starts.
    let _lift = LiftOnDrop;
    let (code, said) = MidDrain::start().signal("-KILL");
    assert_eq!(code, None, "killed: {said}");
    for (i, (from, to)) in [(primary, replica), (replica, primary)]
        .into_iter()
        .enumerate()
    {
        let out = cli(&["switchover", "--shard", "1"]);
        // What it says, wherever it says it (the audit line goes to standard error).
        let stdout = text(&out.stdout) + &text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{stdout}");
        let lifted = format!(
            "{primary} was read-only by default (a drain an earlier switchover left): lifted"
        );
        assert_eq!(stdout.contains(&lifted), i == 0, "{stdout}");
        assert!(
            stdout.contains(&format!("shard-1 switched over from {from} to {to}: term ")),
            "{stdout}"
        );
        assert!(
            stdout.contains(&format!("{from} is a standby again and takes reads")),
            "{stdout}"
        );
        let now = line(&text(&cli(&["map", "show"]).stdout));
        assert!(
            now.starts_with(&format!("shard-1: primary {to}, replicas [{from}]")),
            "{now}"
        );
        let history = text(&cli(&["map", "history"]).stdout);
        let newest = history.lines().nth(1).unwrap_or_default();
        assert!(
            newest.contains(" switchover ")
                && newest.contains(&format!("shard-1 switched over from {from} to {to}")),
            "{history}"
        );
    }
}

/// shard-1's primary and replica on `./setup.sh up`'s topology.
const PRIMARY: &str = "127.0.0.1:25433";

/// A switchover of shard 1 stopped mid-drain (the test-only pause point `drained`: its
/// primary read-only, its writes waiting) by Ctrl-C, then by SIGTERM: the command lifts the drain before
/// it exits, says so, and fails; writes go to the primary again at once, and the map is
/// as it was. (Skipped, saying so, on a cluster made with HA=0.)
#[test]
fn a_switchover_stopped_by_ctrl_c_mid_drain_lifts_its_drain() {
    if std::env::var_os(MONITOR.0).is_none() {
        eprintln!("skipped: no HA manager runs this cluster (made with HA=0)");
        return;
    }
    require_admin();
    let _alone = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let _lift = LiftOnDrop;
    let before = text(&cli(&["map", "show"]).stdout);

    // Ctrl-C, and SIGTERM (what a service manager sends) alike.
    for (signal, name) in [("-INT", "SIGINT"), ("-TERM", "SIGTERM")] {
        let mut run = MidDrain::start();
        assert_eq!(
            ask(PRIMARY, "SHOW default_transaction_read_only"),
            Ok("on".into())
        );
        let refused = ask(PRIMARY, "CREATE TEMP TABLE drain_probe (a int)").unwrap_err();
        assert!(refused.contains("read-only transaction"), "{refused}");

        let (code, stderr) = run.signal(signal);
        assert_eq!(code, Some(1), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "error: interrupted by {name}; the drain on {PRIMARY} was lifted"
            )),
            "{stderr}"
        );
        assert!(stderr.contains(" outcome=\"failed\""), "{stderr}");
        assert_eq!(
            ask(PRIMARY, "SHOW default_transaction_read_only"),
            Ok("off".into())
        );
        assert!(
            ask(PRIMARY, "CREATE TEMP TABLE drain_probe (a int)").is_ok(),
            "writes resume"
        );
    }
    assert_eq!(
        text(&cli(&["map", "show"]).stdout),
        before,
        "the map is unchanged"
    );
}

/// A switchover of shard 1 told to stop by Ctrl-C once the HA manager was asked to
/// promote (the test-only pause point `promoting`): that cannot be undone, so it says so
/// and finishes: the promotion recorded in the map, the old primary a standby with its
/// drain lifted. Then the shard is handed back.
#[test]
fn a_switchover_stopped_after_the_promotion_was_asked_finishes() {
    if std::env::var_os(MONITOR.0).is_none() {
        eprintln!("skipped: no HA manager runs this cluster (made with HA=0)");
        return;
    }
    require_admin();
    let _alone = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let _lift = LiftOnDrop;
    let (primary, replica) = (PRIMARY, "127.0.0.1:25533");

    let mut run = MidDrain::paused_at("promoting");
    let (code, said) = run.signal("-INT");
    assert_eq!(code, Some(0), "{said}");
    assert!(
        said.contains("SIGINT: the HA manager is already promoting, which cannot be undone; the switchover finishes first"),
        "{said}"
    );
    assert!(
        said.contains(&format!(
            "shard-1 switched over from {primary} to {replica}: term "
        )),
        "{said}"
    );
    assert!(
        said.contains(&format!("{primary} is a standby again and takes reads")),
        "{said}"
    );
    assert_eq!(
        ask(primary, "SHOW default_transaction_read_only"),
        Ok("off".into())
    );
    let map = text(&cli(&["map", "show"]).stdout);
    assert!(
        map.contains(&format!("shard-1: primary {replica}, replicas [{primary}]")),
        "{map}"
    );

    let out = cli(&["switchover", "--shard", "1"]);
    let back = text(&out.stdout) + &text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{back}");
    assert!(
        back.contains(&format!(
            "shard-1 switched over from {replica} to {primary}"
        )),
        "{back}"
    );
}

/// A switchover of shard 1 killed mid-drain (SIGKILL: nothing can undo it): the drain
/// stays, and the gateway's health names it (shard-1 `primary_read_only`, the cluster
/// unhealthy, the command that lifts it), as `./setup.sh status` does; that one
/// command, `switchover --shard 1 --lift-drain`, lifts it and writes go through again.
#[test]
fn a_drain_a_killed_switchover_left_shows_in_health_and_one_command_lifts_it() {
    if std::env::var_os(MONITOR.0).is_none() {
        eprintln!("skipped: no HA manager runs this cluster (made with HA=0)");
        return;
    }
    require_admin();
    let _alone = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let _lift = LiftOnDrop;

    let mut run = MidDrain::start();
    let (code, stderr) = run.signal("-KILL");
    assert_eq!(code, None, "killed: {stderr}");
    assert_eq!(
        ask(PRIMARY, "SHOW default_transaction_read_only"),
        Ok("on".into())
    );

    let health = gateway_health();
    let shard = &health["shards"][1];
    assert_eq!(health["healthy"], false, "{health:#}");
    assert_eq!(shard["state"], "primary_read_only", "{shard:#}");
    assert_eq!(shard["primary"]["server"], PRIMARY);
    assert_eq!(shard["primary"]["read_only_by_setting"], true);
    assert_eq!(
        shard["fix"], "shard-admin switchover --shard 1 --lift-drain",
        "{shard:#}"
    );
    let warnings = health["warnings"].to_string();
    assert!(
        warnings.contains(&format!(
            "shard-1's primary {PRIMARY} is read-only by setting"
        )),
        "{warnings}"
    );
    if let Some(setup) = std::env::var_os("SHARDGATE_SETUP") {
        let status = std::process::Command::new(setup)
            .arg("status")
            .output()
            .expect("./setup.sh status");
        let status = text(&status.stdout);
        let line = status
            .lines()
            .find(|l| l.starts_with("shard1-primary "))
            .unwrap_or_else(|| panic!("no shard1-primary in {status}"));
        assert!(
            line.contains("READ-ONLY (default_transaction_read_only = on; a drain left behind: shard-admin switchover --shard 1 --lift-drain)"),
            "{line}"
        );
    }

    let out = cli(&["switchover", "--shard", "1", "--lift-drain"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains(&format!(
            "shard-1 {PRIMARY} (primary): drain lifted, takes writes again"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("shard-1 127.0.0.1:25533 (replica): not drained"),
        "{stdout}"
    );
    assert_eq!(
        ask(PRIMARY, "SHOW default_transaction_read_only"),
        Ok("off".into())
    );
    assert!(
        ask(PRIMARY, "CREATE TEMP TABLE drain_probe (a int)").is_ok(),
        "writes resume"
    );
    let health = gateway_health();
    assert_eq!(health["shards"][1]["state"], "ok", "{health:#}");
}

/// `shard-admin switchover --shard 1`, started with the test-only pause point at the
/// drain, once it has paused there (its primary read-only).
struct MidDrain {
    child: std::process::Child,
    stderr: std::sync::mpsc::Receiver<String>,
    said: String,
}

impl MidDrain {
    fn start() -> Self {
        Self::paused_at("drained")
    }

    /// Paused at `step` instead (`promoting`: the HA manager asked to promote).
    fn paused_at(step: &str) -> Self {
        use std::io::BufRead;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_shard-admin"))
            .args(["switchover", "--shard", "1"])
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .env("NO_COLOR", "1")
            .env("SHARDGATE_FAULT_PAUSE_SWITCHOVER", format!("{step}:30000"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run shard-admin");
        // Both its outputs, as lines.
        let (tx, stderr) = std::sync::mpsc::channel();
        let out = child.stdout.take().expect("its standard output");
        let err = child.stderr.take().expect("its standard error");
        let tx2 = tx.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx2.send(line);
            }
        });
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut run = Self {
            child,
            stderr,
            said: String::new(),
        };
        let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !run.said.contains(&format!("fault point {step}: pausing")) {
            let left = until.saturating_duration_since(std::time::Instant::now());
            match run.stderr.recv_timeout(left) {
                Ok(line) => run.said += &(line + "\n"),
                Err(_) => {
                    let _ = run.child.kill();
                    panic!("the switchover did not reach its drain: {}", run.said);
                }
            }
        }
        run
    }

    /// Sends `signal` (`-INT`, `-KILL`) and waits for the command's end: its exit code
    /// (None: killed) and all it said on standard error.
    fn signal(&mut self, signal: &str) -> (Option<i32>, String) {
        let sent = std::process::Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(sent.success());
        let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            assert!(
                std::time::Instant::now() < until,
                "it did not end: {}",
                self.said
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        // The pipe closes with the process: every line is in.
        while let Ok(line) = self.stderr.recv_timeout(std::time::Duration::from_secs(5)) {
            self.said += &(line + "\n");
        }
        (status.code(), self.said.clone())
    }
}

impl Drop for MidDrain {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Lifts any drain on shard 1 at the end of a test, passed or failed: the shared
/// topology's shard must take writes for the other tests.
struct LiftOnDrop;

impl Drop for LiftOnDrop {
    fn drop(&mut self) {
        let out = cli(&["switchover", "--shard", "1", "--lift-drain"]);
        if !out.status.success() {
            eprintln!("could not lift shard 1's drain: {}", text(&out.stderr));
        }
    }
}

/// One value `sql` answers on `server` (its `postgres` database), in a session of its
/// own, as the application role; the server's message when it refuses.
fn ask(server: &str, sql: &str) -> Result<String, String> {
    let settings: shard_manager::ClusterSettings =
        shard_manager::config::load(None).expect("configuration");
    let mut db = settings.database.clone();
    db.dbname = "postgres".into();
    let url = shard_manager::servers::connection_url(&db, server);
    runtime().block_on(async {
        let (client, conn) = control_plane::postgres::connect(&url, &db)
            .await
            .expect("connect");
        tokio::spawn(conn);
        let rows = client.simple_query(sql).await.map_err(|e| {
            e.as_db_error()
                .map_or_else(|| e.to_string(), |d| d.message().to_owned())
        })?;
        Ok(rows
            .iter()
            .find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
                _ => None,
            })
            .unwrap_or_default())
    })
}

/// What the gateway's `/api/health` answers now (`control_plane::health::cluster_health`
/// on the stored map), as JSON.
fn gateway_health() -> serde_json::Value {
    let mut settings: shard_manager::ClusterSettings =
        shard_manager::config::load(None).expect("configuration");
    settings.cache.enabled = false;
    runtime().block_on(async {
        let map = control_plane::map::change::current(&settings)
            .await
            .expect("the stored map");
        let cluster = shard_manager::Cluster::with_map(&settings, &map).expect("the cluster");
        serde_json::to_value(control_plane::health::cluster_health(&cluster).await)
            .expect("health as JSON")
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

/// The administrator's settings (`./setup.sh env admin`; `./setup.sh test` exports
/// them): a switchover drains as `failover.admin_user` and promotes through
/// `failover.ha_monitor_admin`, which a gateway's settings never have.
fn require_admin() {
    for var in [
        "SHARDGATE__FAILOVER__ADMIN_USER",
        "SHARDGATE__FAILOVER__HA_MONITOR_ADMIN",
    ] {
        assert!(
            std::env::var_os(var).is_some(),
            "{var} is not set: a switchover needs the administrator's settings: eval \"$(./setup.sh env admin)\""
        );
    }
}

/// A gateway's credentials, as `./setup.sh env` gives them (the application role, and
/// the monitor as a role that reads its state), can neither drain a primary nor change
/// its settings, nor promote or fail over through the HA manager's monitor; they can
/// read the formations' state. (Each promotion asked runs in a transaction rolled
/// back, so a privilege found would change nothing.) The admin CLI's switchover, with
/// the administrator's settings, works: `a_switchover_hands_shard_1_to_its_replica_and_back`.
#[test]
fn a_gateways_credentials_cannot_drain_change_settings_or_promote() {
    if std::env::var_os(MONITOR.0).is_none() {
        eprintln!("skipped: no HA manager runs this cluster (made with HA=0)");
        return;
    }
    let env = gateway_env();
    let get = |name: &str| {
        env.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {name} in the gateway's environment"))
    };
    for name in env.iter().map(|(k, _)| k.as_str()) {
        assert!(
            !name.contains("ADMIN"),
            "a gateway is given {name}: the administrator's alone"
        );
    }
    let (user, password, monitor) = (
        get("SHARDGATE__DATABASE__USER"),
        get("SHARDGATE__DATABASE__PASSWORD"),
        get(MONITOR.0),
    );

    // The shard's primary, as the application role.
    let url = format!("postgres://{user}:{password}@{PRIMARY}/postgres?sslmode=disable");
    for sql in [
        "ALTER SYSTEM SET default_transaction_read_only = on",
        "SELECT pg_reload_conf()",
        "ALTER SYSTEM SET work_mem = '8MB'",
        "ALTER SYSTEM RESET ALL",
    ] {
        let refused = ask_as(&url, sql).expect_err(sql);
        assert!(refused.contains("permission denied"), "{sql}: {refused}");
    }
    assert_eq!(
        ask(PRIMARY, "SHOW default_transaction_read_only"),
        Ok("off".into())
    );

    // The monitor, as the gateway's URL names it.
    assert_eq!(
        ask_as(
            &monitor,
            "SELECT count(*) FROM pgautofailover.node WHERE formationid = 'shard1'"
        ),
        Ok("2".into()),
        "it reads the formation's state"
    );
    for sql in [
        "SELECT pgautofailover.perform_failover('shard1')",
        "SELECT pgautofailover.perform_promotion('shard1', 'shard1-replica0')",
        "SELECT pgautofailover.set_node_candidate_priority('shard1', 'shard1-replica0', 0)",
        "SELECT pgautofailover.disable_secondary('shard1')",
        "SELECT pgautofailover.start_maintenance(nodeid) FROM pgautofailover.node WHERE nodename = 'shard1-replica0'",
        "UPDATE pgautofailover.node SET candidatepriority = 0 WHERE formationid = 'shard1'",
    ] {
        let refused = ask_as(&monitor, &format!("BEGIN; {sql}; ROLLBACK")).expect_err(sql);
        assert!(refused.contains("permission denied"), "{sql}: {refused}");
    }
    let refused = ask_as(&monitor, "ALTER SYSTEM SET work_mem = '8MB'").unwrap_err();
    assert!(refused.contains("permission denied"), "{refused}");
    assert!(
        monitor.starts_with("postgres://shardgate_monitor_reader:"),
        "the gateway's monitor role: {}",
        shard_manager::redact::redact(&monitor)
    );
}

/// The variables `./setup.sh env` exports for a gateway (when the test runs from
/// `./setup.sh`); else the ones this test runs with, less the administrator's.
fn gateway_env() -> Vec<(String, String)> {
    if let Some(setup) = std::env::var_os("SHARDGATE_SETUP") {
        let out = std::process::Command::new(setup)
            .arg("env")
            .output()
            .expect("./setup.sh env");
        assert!(out.status.success(), "{}", text(&out.stderr));
        // `export NAME=VALUE`, VALUE quoted by printf %q: a backslash before each
        // character the shell would read (`?` of a URL), no quotes in our values.
        let unquote = |v: &str| {
            let mut out = String::new();
            let mut chars = v.chars();
            while let Some(c) = chars.next() {
                out.extend(if c == '\\' { chars.next() } else { Some(c) });
            }
            out
        };
        return text(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
            .map(|(k, v)| (k.to_owned(), unquote(v)))
            .collect();
    }
    std::env::vars()
        .filter(|(k, _)| k.starts_with("SHARDGATE__") && !k.contains("ADMIN"))
        .collect()
}

/// One value `sql` answers at `url`, in a session of its own; the server's message when
/// it refuses.
fn ask_as(url: &str, sql: &str) -> Result<String, String> {
    runtime().block_on(async {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        tokio::spawn(conn);
        let rows = client.simple_query(sql).await.map_err(|e| {
            e.as_db_error()
                .map_or_else(|| e.to_string(), |d| d.message().to_owned())
        })?;
        Ok(rows
            .iter()
            .find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
                _ => None,
            })
            .unwrap_or_default())
    })
}
