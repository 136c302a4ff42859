//! `shard-manager`, the admin CLI's former name, still runs it for one release: the same
//! command line, standard output and exit code as `shard-admin`, after one notice on
//! standard error that names `shard-admin`. Needs no topology (clap answers before any
//! configuration is read).

use std::process::{Command, Output};

const NOTICE: &str = "note: the admin CLI is now called `shard-admin`; `shard-manager` still runs it for this release only\n";

fn run(binary: &str, args: &[&str]) -> Output {
    Command::new(binary)
        .args(args)
        .env_remove("NO_COLOR")
        .output()
        .expect("run the admin CLI")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn the_former_name_gives_its_notice_then_answers_as_shard_admin() {
    for args in [
        &["--help"][..],
        &["no-such-command"][..],
        &["keys", "--bogus"][..],
    ] {
        let new = run(env!("CARGO_BIN_EXE_shard-admin"), args);
        let old = run(env!("CARGO_BIN_EXE_shard-manager"), args);
        assert_eq!(old.status.code(), new.status.code(), "{args:?}");
        assert_eq!(text(&old.stdout), text(&new.stdout), "{args:?}");
        assert_eq!(
            text(&old.stderr),
            format!("{NOTICE}{}", text(&new.stderr)),
            "{args:?}"
        );
    }
}

#[test]
fn the_command_line_has_one_name() {
    let help = run(env!("CARGO_BIN_EXE_shard-admin"), &["--help"]);
    assert!(help.status.success(), "{help:?}");
    let help = text(&help.stdout);
    assert!(
        help.contains("Usage: shard-admin [OPTIONS] <COMMAND>"),
        "{help}"
    );
    assert!(!help.contains("shard-manager"), "{help}");

    let refused = run(env!("CARGO_BIN_EXE_shard-admin"), &["no-such-command"]);
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    let stderr = text(&refused.stderr);
    assert!(stderr.contains("Usage: shard-admin"), "{stderr}");
    assert!(!stderr.contains("shard-manager"), "{stderr}");
}
