//! No configured secret shows in any error: the real gateway binary, started with a
//! Redis URL that does not parse, refuses to start naming `cache.url`, and neither its
//! error nor its log shows the URL's password or any piece of it.

use std::process::Stdio;
use std::time::Duration;

use test_support::repo_root;
use tokio::process::Command;

const SECRET: &str = "Hunter2-never-shown";

#[tokio::test]
async fn a_redis_url_that_does_not_parse_keeps_its_password_out_of_the_start_up_error() {
    for url in [
        format!("redis://:{SECRET}@127.0.0.1:notaport"),
        format!("redis://:{SECRET}/x@127.0.0.1:26379"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_api-router"))
            .args(["--listen", "127.0.0.1:0"])
            .current_dir(repo_root())
            .env("SHARDGATE__CACHE__ENABLED", "true")
            .env("SHARDGATE__CACHE__URL", &url)
            .env("SHARDGATE__SERVER__WORKERS", "1")
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(Duration::from_secs(30), out)
            .await
            .expect("exits within 30 s")
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "{url}: it started: {text}");
        assert!(
            text.contains("cache.url \"redis://:***@"),
            "{url}: names the setting: {text}"
        );
        for piece in ["Hunter2", "never-shown"] {
            assert!(!text.contains(piece), "{url}: shows {piece:?}: {text}");
        }
    }
}
