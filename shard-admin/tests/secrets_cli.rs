//! No configured secret shows in any error of the admin CLI: a password typed into an
//! address, or into a Redis URL that does not parse, is refused at start-up in one line
//! that names the setting and hides the password.

mod common;

use common::{cli_with, text};

/// A password no error may show, nor any piece of it.
const SECRET: &str = "Hunter2-never-shown";

fn assert_hidden(what: &str, stderr: &str, names: &str) {
    assert!(
        !stderr.contains("Hunter2"),
        "{what}: shows the password: {stderr}"
    );
    assert!(
        !stderr.contains("never-shown"),
        "{what}: shows a piece: {stderr}"
    );
    assert!(
        stderr.contains(names),
        "{what}: {names:?} missing from: {stderr}"
    );
    assert_eq!(
        stderr.trim().lines().count(),
        1,
        "{what}: one line: {stderr}"
    );
}

#[test]
fn a_password_in_an_address_or_a_bad_redis_url_is_refused_without_being_shown() {
    let address = format!("admin:{SECRET}@127.0.0.1:25430");
    let urls = [
        format!("redis://:{SECRET}@127.0.0.1:notaport"),
        format!("redis://:{SECRET}/x@127.0.0.1:26379"),
    ];
    let mut cases = vec![(
        "metadata address",
        vec![("SHARDGATE__METADATA__ADDRESS", address.as_str())],
        "metadata.address \"admin:***@127.0.0.1:25430\"",
    )];
    for url in &urls {
        cases.push((
            "cache url",
            vec![
                ("SHARDGATE__CACHE__ENABLED", "true"),
                ("SHARDGATE__CACHE__URL", url.as_str()),
            ],
            "cache.url \"redis://:***@",
        ));
    }
    for (what, env, names) in cases {
        let out = cli_with(&["map", "show"], &env);
        assert_eq!(out.status.code(), Some(2), "{what}: {}", text(&out.stdout));
        assert_hidden(what, &text(&out.stderr), names);
    }

    // A shard's address, from a file layered over the defaults.
    let file = std::env::temp_dir().join(format!("sg-secrets-{}.toml", std::process::id()));
    std::fs::write(
        &file,
        format!(
            "[[shards]]\nprimary = \"admin:{SECRET}@127.0.0.1:25432\"\n\
             [[shards]]\nprimary = \"127.0.0.1:25433\"\n"
        ),
    )
    .unwrap();
    let out = cli_with(
        &["--config", file.to_str().unwrap(), "moves", "status"],
        &[],
    );
    std::fs::remove_file(&file).unwrap();
    assert_eq!(out.status.code(), Some(2), "shard: {}", text(&out.stdout));
    assert_hidden(
        "shard address",
        &text(&out.stderr),
        "shard 0 primary \"admin:***@127.0.0.1:25432\": an address is host:port only",
    );
}
