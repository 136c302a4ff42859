//! Traffic for the dashboard to show: writes, reads (cache hits and misses, replicas),
//! reads of missing records (404) and of an unknown table (422), from a few concurrent
//! clients whose pace changes every second so the charts have a shape. Every key is
//! written once first, so the only failures are the ones asked for.
//!
//! Bounded: it stops when told to, and in any case after [`MAX_DURATION`] or
//! [`MAX_REQUESTS_PER_CLIENT`] requests per client.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use test_app::TestApp;

const CLIENTS: usize = 3;
const KEYS: usize = 40;
pub const MAX_DURATION: Duration = Duration::from_secs(40);
const MAX_REQUESTS_PER_CLIENT: u64 = 20_000;

/// Answers seen, by class.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    pub ok: u64,
    pub client_errors: u64,
    pub server_errors: u64,
}

/// Traffic running in the background until [`Traffic::stop`].
pub struct Traffic {
    stop: Arc<AtomicBool>,
    clients: Vec<tokio::task::JoinHandle<Counts>>,
}

impl Traffic {
    pub async fn start(app: Arc<TestApp>) -> Self {
        for k in 0..KEYS {
            let key = key(k);
            let res = app
                .write(&key, &json!({ "table": "users", "id": key, "data": {} }))
                .await;
            assert!(res.status().is_success(), "prefill {key}: {}", res.status());
        }
        let stop = Arc::new(AtomicBool::new(false));
        let clients = (0..CLIENTS)
            .map(|client| tokio::spawn(run_client(app.clone(), client, stop.clone())))
            .collect();
        Self { stop, clients }
    }

    /// Stops every client and adds up what they saw.
    pub async fn stop(self) -> Counts {
        self.stop.store(true, Ordering::Relaxed);
        let mut total = Counts::default();
        for client in self.clients {
            let c = client.await.expect("traffic client panicked");
            total.ok += c.ok;
            total.client_errors += c.client_errors;
            total.server_errors += c.server_errors;
        }
        total
    }
}

fn key(n: usize) -> String {
    format!("user-{}", n % KEYS)
}

async fn run_client(app: Arc<TestApp>, client: usize, stop: Arc<AtomicBool>) -> Counts {
    let started = Instant::now();
    let mut counts = Counts::default();
    for i in 0..MAX_REQUESTS_PER_CLIENT {
        if stop.load(Ordering::Relaxed) || started.elapsed() > MAX_DURATION {
            break;
        }
        let key = key(i as usize * 7 + client);
        let res = match i % 20 {
            0..=4 => {
                let body =
                    json!({ "table": "users", "id": key, "data": { "client": client, "n": i } });
                app.write(&key, &body).await
            }
            5 => app.read(&key, "users", &format!("missing-{i}")).await,
            6 if client == 0 => app.read(&key, "no_such_table", "1").await,
            // A consumer of the table's change stream: the dashboard's streams table.
            7 if client == 1 => app.get(&key, "/api/changes?table=users&limit=50").await,
            _ => app.read(&key, "users", &key).await,
        };
        match res.status().as_u16() {
            200..=299 => counts.ok += 1,
            400..=499 => counts.client_errors += 1,
            _ => counts.server_errors += 1,
        }
        // 5, 10 or 15 ms between requests, changing every second.
        let pause = 5 + 5 * (started.elapsed().as_secs() % 3);
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
    counts
}
