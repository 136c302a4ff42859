//! No decision is made on an error's message text anywhere in the cluster's crates: a
//! server's messages change with its version and its `lc_messages`, its SQLSTATEs do
//! not (`shard_manager::error::sqlstate` is the one table). This reads every source file
//! of the request path, the control plane, the admin CLI and the gateway, outside their
//! unit tests, for the ways a decision on text is written; `german_messages` shows a
//! real server speaking German classified like one speaking English.

use std::path::{Path, PathBuf};

/// How a decision on an error's text is written.
const ON_TEXT: [&str; 9] = [
    "info.message()",
    "message().contains(",
    ".message.contains(",
    "message() ==",
    ".message ==",
    "to_string().contains(",
    "to_string().starts_with(",
    ".message.starts_with(",
    "message().starts_with(",
];

/// Text read for people, never decided on: the slots a shard's SG001 refusal names
/// are shown in the 503's detail (SG001 itself is what decided).
const SHOWN_ONLY: [(&str, &str); 1] = [(
    "shard-manager/src/servers/failure.rs",
    ".strip_prefix(NOT_OWNER)",
)];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read a source folder") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The file's code before its unit tests (`#[cfg(test)]` modules come last here); none
/// for a file of unit tests (`*_tests.rs`, included under `#[cfg(test)]` by its module).
fn code_of<'a>(name: &str, text: &'a str) -> &'a str {
    if name.ends_with("_tests.rs") {
        return "";
    }
    text.split("#[cfg(test)]").next().unwrap_or(text)
}

#[test]
fn no_decision_reads_an_error_message() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for krate in [
        "shard-manager",
        "control-plane",
        "shard-admin",
        "api-router",
    ] {
        sources(&root.join(krate).join("src"), &mut files);
    }
    assert!(files.len() > 200, "found only {} source files", files.len());
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read a source file");
        let name = file
            .strip_prefix(&root)
            .unwrap_or(file)
            .display()
            .to_string();
        for (n, line) in code_of(&name, &text).lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if ON_TEXT.iter().any(|p| code.contains(p)) {
                found.push(format!("{name}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "decisions on message text:\n{}",
        found.join("\n")
    );
    // The one place text is read is for display, and it is still there to check.
    for (file, what) in SHOWN_ONLY {
        let text = std::fs::read_to_string(root.join(file)).expect("read it");
        assert!(
            text.contains(what),
            "{file} no longer has {what}: update SHOWN_ONLY"
        );
    }
}

#[test]
fn the_scan_sees_a_decision_on_text() {
    // A line the scan must catch, as it would be written.
    let line = r#"if e.message.contains("terminating connection") { down() }"#;
    assert!(ON_TEXT.iter().any(|p| line.contains(p)));
    assert_eq!(
        code_of("a.rs", "fn a() {}\n#[cfg(test)]\nmod tests {}"),
        "fn a() {}\n"
    );
    assert_eq!(code_of("src/a_tests.rs", "fn a() {}"), "");
}
