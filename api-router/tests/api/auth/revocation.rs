//! Key changes reach a running gateway without a restart: a revoked (or rotated) key is
//! refused within a second of the change committing, measured from a client that keeps
//! using it; a first key closes the gateway to keyless clients, and revoking the last
//! one opens it again to loopback clients (protected mode).

use std::time::{Duration, Instant};

use test_app::spawn_app;

use super::{await_key, create_key, revoke_key, rotate_key, status_with};

/// Keeps calling `path` with `key` until it answers 401; returns how long after `since`
/// that answer arrived, and the statuses seen (panics after 3 s).
async fn until_refused(
    app: &test_app::TestApp,
    path: &str,
    key: Option<&str>,
    since: Instant,
) -> Duration {
    loop {
        let status = status_with(app, path, key).await;
        if status == 401 {
            return since.elapsed();
        }
        assert_eq!(status, 200, "while the change propagates");
        assert!(since.elapsed() < Duration::from_secs(3), "never refused");
    }
}

#[tokio::test]
async fn a_key_revoked_while_in_use_is_refused_within_a_second_without_restart() {
    let app = spawn_app().await;
    let key = create_key(&app, "busy", "read,metrics", None).await;
    let other = create_key(&app, "other", "metrics", None).await;
    await_key(&app, &key).await;
    await_key(&app, &other).await;
    // A client using the key, as it will be the moment it is revoked.
    let user = {
        let (app_url, client, key) = (
            app.url("/api/analytics/errors"),
            app.client.clone(),
            key.clone(),
        );
        tokio::spawn(async move {
            let mut log = Vec::new();
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(3) {
                let sent = Instant::now();
                let res = client.get(&app_url).bearer_auth(&key).send().await.unwrap();
                log.push((sent, Instant::now(), res.status().as_u16()));
            }
            log
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    revoke_key(&app, "busy").await;
    let committed = Instant::now();
    let log = user.await.unwrap();

    let before: Vec<_> = log
        .iter()
        .filter(|(_, done, _)| *done < committed)
        .collect();
    assert!(
        before.iter().all(|(_, _, s)| *s == 200) && before.len() > 5,
        "served before: {before:?}"
    );
    let first_refusal = log
        .iter()
        .find(|(_, _, s)| *s == 401)
        .expect("refused at last");
    let waited = first_refusal.1.saturating_duration_since(committed);
    eprintln!(
        "revoked key refused {} ms after the revoke committed ({} requests in all)",
        waited.as_millis(),
        log.len()
    );
    assert!(waited < Duration::from_secs(1), "refused after {waited:?}");
    // Once refused, refused for good: no request sent afterwards got in.
    let after = log.iter().filter(|(sent, _, _)| *sent >= first_refusal.0);
    assert!(
        after.clone().all(|(_, _, s)| *s == 401),
        "{:?}",
        after.collect::<Vec<_>>()
    );
    // The other key goes on working.
    assert_eq!(
        status_with(&app, "/api/analytics/errors", Some(&other)).await,
        200
    );
}

#[tokio::test]
async fn a_rotated_key_is_refused_within_a_second_and_its_successor_accepted() {
    let app = spawn_app().await;
    let old = create_key(&app, "rotating", "metrics", None).await;
    await_key(&app, &old).await;
    assert_eq!(status_with(&app, "/metrics", Some(&old)).await, 200);
    let new = rotate_key(&app, "rotating").await;
    let committed = Instant::now();
    let waited = until_refused(&app, "/metrics", Some(&old), committed).await;
    eprintln!(
        "rotated key refused {} ms after the rotation committed",
        waited.as_millis()
    );
    assert!(waited < Duration::from_secs(1), "refused after {waited:?}");
    assert_ne!(old, new);
    assert_eq!(status_with(&app, "/metrics", Some(&new)).await, 200);
}

#[tokio::test]
async fn the_first_key_closes_the_gateway_to_keyless_clients_and_the_last_revoke_reopens_it() {
    let app = spawn_app().await;
    // No key: loopback clients are served without one (protected mode).
    assert_eq!(status_with(&app, "/api/shards", None).await, 200);
    let key = create_key(&app, "first", "admin", None).await;
    let committed = Instant::now();
    let waited = until_refused(&app, "/api/shards", None, committed).await;
    eprintln!(
        "keyless loopback client refused {} ms after the first key",
        waited.as_millis()
    );
    assert!(waited < Duration::from_secs(1), "refused after {waited:?}");
    assert_eq!(status_with(&app, "/api/shards", Some(&key)).await, 200);

    revoke_key(&app, "first").await;
    let committed = Instant::now();
    while status_with(&app, "/api/shards", None).await != 200 {
        assert!(committed.elapsed() < Duration::from_secs(1), "still closed");
    }
    eprintln!(
        "open to loopback again {} ms after the last key was revoked",
        committed.elapsed().as_millis()
    );
}
