//! The verify mode's consumer of its table's change stream, beside the writes.
//!
//! Before the first write it asks for the stream's end (`from=now`: a cursor after every
//! change committed now, whatever the table's history) and takes that cursor: every
//! write of the run comes after it. From there it
//! follows `GET /api/changes` as Server-Sent Events, keeping each event with the moment
//! it arrived; a stream that ends (a gateway restarting, an `error` event) is taken up
//! again after the last event's `id` (`Last-Event-ID`), as any consumer would. When the
//! load is over it stops listening and reads the rest in JSON pages from the same place
//! until a `resolved` mark later than the end of the writes: then every change of the
//! run has arrived. The events go to [`super::stream_verdict`].
//!
//! Changes of other records stay (they count towards the rate and their transactions
//! are judged whole), without their data.

use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::stream_verdict::{Delivered, Event};
use crate::gateway::Gateway;
use crate::http::Call;

/// Changes asked for per JSON page (the gateway's `changes.max_page` is 1,000 unless
/// lowered).
const PAGE: usize = 500;
/// Pause before connecting again, and between pages that found the end too early.
const AGAIN_AFTER: Duration = Duration::from_millis(200);
/// No stream is cut by the client's own request timeout (goose's `--timeout`).
const STREAM_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);

/// What the consumer received, in order, and how the following went.
#[derive(Debug, Default)]
pub struct Followed {
    pub events: Vec<Event>,
    /// How long finding the stream's end took (`from=now`: one cut).
    pub start_secs: f64,
    /// Times the stream was (re)connected.
    pub connects: u64,
    /// Changes read in the closing pages rather than from the stream.
    pub paged: u64,
    /// Why a connection ended or failed (gateway gone, `error` events), in order.
    pub interruptions: Vec<String>,
    /// Why the stream could not be followed to the end of the writes.
    pub incomplete: Option<String>,
    /// The cursor after the last event: where a consumer would resume.
    pub last: String,
}

/// A consumer running beside the load.
pub struct Follower {
    gateway: Gateway,
    table: String,
    run: String,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Followed>,
}

impl Follower {
    /// Finds the end of `table`'s stream and starts following it from there.
    pub async fn start(gateway: &Gateway, table: &str, run: &str) -> anyhow::Result<Self> {
        let mut gateway = gateway.clone();
        let asking = Instant::now();
        let path = format!("/api/changes?table={table}&from=now");
        let reply = gateway.call(Call::get("changes from now", &path)).await?;
        let end = match (reply.status, reply.json()) {
            (200, Some(page)) => page["next"]
                .as_str()
                .ok_or_else(|| anyhow!("a page of changes without `next`"))?
                .to_owned(),
            _ => bail!("GET {path} answered {}", reply.detail()),
        };
        let followed = Followed {
            start_secs: asking.elapsed().as_secs_f64(),
            last: end,
            ..Followed::default()
        };
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(listen(
            gateway.clone(),
            table.to_owned(),
            run.to_owned(),
            followed,
            stopped,
        ));
        Ok(Self {
            gateway,
            table: table.to_owned(),
            run: run.to_owned(),
            stop,
            task,
        })
    }

    /// Stops listening, then reads on in pages until a `resolved` mark later than
    /// `writes_ended`, for at most `wait`.
    pub async fn finish(self, writes_ended: DateTime<Utc>, wait: Duration) -> Followed {
        let Self {
            mut gateway,
            table,
            run,
            stop,
            task,
        } = self;
        let _ = stop.send(());
        let mut followed = match task.await {
            Ok(followed) => followed,
            Err(e) => Followed {
                incomplete: Some(format!("the stream's consumer failed: {e}")),
                ..Followed::default()
            },
        };
        if followed.incomplete.is_some() {
            return followed;
        }
        let deadline = Instant::now() + wait;
        let mut paged = Vec::new();
        let after = followed.last.clone();
        let read = walk(
            &mut gateway,
            &table,
            &after,
            writes_ended,
            Some(deadline),
            |c| {
                paged.extend(delivered(c, None, &run, Utc::now()));
            },
        )
        .await;
        followed.paged = paged.len() as u64;
        followed.events.extend(paged.into_iter().map(Event::Change));
        if let Err(e) = read {
            followed.incomplete = Some(format!("{e:#}"));
        }
        followed
    }
}

/// Reads `table`'s changes in JSON pages after `after` (from the oldest kept when
/// empty), handing each to `each`, and returns the cursor after them: at the first
/// `resolved` mark later than `past` (every change committed before it has been read).
/// Without a `deadline`, also at the first page with nothing new (the end, as far as
/// a consumer starting now needs); with one, it fails past it.
async fn walk(
    gateway: &mut Gateway,
    table: &str,
    after: &str,
    past: DateTime<Utc>,
    deadline: Option<Instant>,
    mut each: impl FnMut(&Value),
) -> anyhow::Result<String> {
    let mut cursor = after.to_owned();
    loop {
        let mut path = format!("/api/changes?table={table}&limit={PAGE}&wait=0");
        if !cursor.is_empty() {
            path.push_str(&format!("&after={cursor}"));
        }
        let reply = gateway.call(Call::get("changes page", &path)).await?;
        let page = match (reply.status, reply.json()) {
            (200, Some(page)) => page,
            _ => bail!("GET /api/changes?table={table} answered {}", reply.detail()),
        };
        let changes = page["changes"].as_array().cloned().unwrap_or_default();
        changes.iter().for_each(&mut each);
        cursor = page["next"]
            .as_str()
            .ok_or_else(|| anyhow!("a page of changes without `next`"))?
            .to_owned();
        let resolved = page["resolved"].as_str().and_then(time);
        if resolved.is_some_and(|at| at > past) {
            return Ok(cursor);
        }
        match deadline {
            None if changes.is_empty() => return Ok(cursor),
            None => {}
            Some(deadline) if Instant::now() >= deadline => bail!(
                "no resolved mark later than the end of the writes ({}) came in time",
                past.to_rfc3339()
            ),
            Some(_) if changes.is_empty() => tokio::time::sleep(AGAIN_AFTER).await,
            Some(_) => {}
        }
    }
}

/// Follows the stream as Server-Sent Events until `stopped`, reconnecting after the
/// last event's `id` whenever a connection ends.
async fn listen(
    gateway: Gateway,
    table: String,
    run: String,
    mut followed: Followed,
    mut stopped: oneshot::Receiver<()>,
) -> Followed {
    let url = format!("{}/api/changes?table={table}", gateway.host());
    loop {
        let request = gateway
            .user()
            .client
            .get(&url)
            .header("accept", "text/event-stream")
            .header("last-event-id", &followed.last)
            .timeout(STREAM_TIMEOUT)
            .send();
        let sent = tokio::select! {
            _ = &mut stopped => return followed,
            sent = request => sent,
        };
        let why = match sent {
            Err(e) => format!("connecting: {e}"),
            Ok(response) if !response.status().is_success() => {
                let status = response.status();
                let body = response.text().await.unwrap_or_default();
                // A client error will not go away by asking again.
                if status.is_client_error() {
                    followed.incomplete = Some(format!("the stream answered {status}: {body}"));
                    return followed;
                }
                format!("{status}: {body}")
            }
            Ok(mut response) => {
                followed.connects += 1;
                let mut text: Vec<u8> = Vec::new();
                loop {
                    let chunk = tokio::select! {
                        _ = &mut stopped => return followed,
                        chunk = response.chunk() => chunk,
                    };
                    match chunk {
                        Ok(Some(bytes)) => text.extend_from_slice(&bytes),
                        Ok(None) => break "the stream ended".to_owned(),
                        Err(e) => break format!("the stream was cut: {e}"),
                    }
                    while let Some(end) = text.windows(2).position(|w| w == b"\n\n") {
                        let block: Vec<u8> = text.drain(..end + 2).collect();
                        let block = String::from_utf8_lossy(&block);
                        if let Some(why) = followed.take(&block, &run) {
                            followed.interruptions.push(why);
                        }
                    }
                }
            }
        };
        followed.interruptions.push(why);
        tokio::select! {
            _ = &mut stopped => return followed,
            _ = tokio::time::sleep(AGAIN_AFTER) => {}
        }
    }
}

impl Followed {
    /// Keeps one event's block; an `error` event's problem is returned.
    fn take(&mut self, block: &str, run: &str) -> Option<String> {
        let field = |name: &str| block.lines().find_map(|l| l.strip_prefix(name));
        let id = field("id: ");
        let data = field("data: ").and_then(|d| serde_json::from_str::<Value>(d).ok());
        if let Some(id) = id {
            self.last = id.to_owned();
        }
        match (field("event: "), data) {
            (Some("change"), Some(change)) => {
                let cursor = id.map(fingerprint);
                let change = delivered(&change, cursor, run, Utc::now());
                self.events.extend(change.map(Event::Change));
                None
            }
            (Some("resolved"), Some(data)) => {
                let at = data["resolved"].as_str().and_then(time);
                self.events.extend(at.map(Event::Resolved));
                None
            }
            (Some("error"), data) => Some(format!(
                "error event: {}",
                data.map(|d| d.to_string()).unwrap_or_default()
            )),
            _ => None,
        }
    }
}

/// A change as the verdict needs it: `seq` only when its data names a write of `run`.
fn delivered(
    change: &Value,
    cursor: Option<u64>,
    run: &str,
    received: DateTime<Utc>,
) -> Option<Delivered> {
    let tag = &change["data"]["verify"];
    let seq = (tag["run"].as_str() == Some(run))
        .then(|| tag["seq"].as_u64())
        .flatten();
    Some(Delivered {
        cursor,
        shard_key: change["shard_key"].as_str()?.to_owned(),
        id: change["id"].as_str()?.to_owned(),
        version: change["version"].as_i64()?,
        operation: change["operation"].as_str()?.to_owned(),
        seq,
        time: change["time"].as_str().and_then(time),
        transaction: change["transaction"].as_str().map(str::to_owned),
        received,
    })
}

/// A cursor held as a 64-bit fingerprint: what telling events apart needs, in a
/// fraction of a cursor's size (a cursor names a snapshot per shard).
fn fingerprint(cursor: &str) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    cursor.hash(&mut hasher);
    hasher.finish()
}

fn time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn events_are_read_from_their_blocks() {
        let mut followed = Followed::default();
        let change = json!({
            "table": "users", "shard_key": "verify-r1-0-0", "id": "verify-r1-0-0",
            "version": 12, "operation": "upsert", "shard": 1,
            "data": {"verify": {"run": "r1", "user": 0, "seq": 3}},
            "time": "2026-11-29T04:01:03.407234+00:00", "transaction": "t9"
        });
        let block = format!("event: change\nid: chg-1\ndata: {change}\n\n");
        assert_eq!(followed.take(&block, "r1"), None);
        let resolved = "event: resolved\nid: chg-2\ndata: {\"table\":\"users\",\
                        \"resolved\":\"2026-11-29T04:01:04+00:00\"}\n\n";
        assert_eq!(followed.take(resolved, "r1"), None);
        assert_eq!(followed.take(": waiting\n\n", "r1"), None);
        let error = "event: error\ndata: {\"title\":\"Service Unavailable\"}\n\n";
        assert!(followed
            .take(error, "r1")
            .unwrap()
            .contains("Service Unavailable"));
        assert_eq!(followed.last, "chg-2");
        let [Event::Change(c), Event::Resolved(at)] = &followed.events[..] else {
            panic!("{:?}", followed.events);
        };
        assert_eq!(
            (c.version, c.seq, c.operation.as_str()),
            (12, Some(3), "upsert")
        );
        assert_eq!(c.cursor, Some(fingerprint("chg-1")));
        assert_eq!(c.transaction.as_deref(), Some("t9"));
        assert_eq!(c.time, time("2026-11-29T04:01:03.407234Z"));
        assert_eq!(at.to_rfc3339(), "2026-11-29T04:01:04+00:00");
    }

    #[test]
    fn only_this_runs_tag_names_a_write() {
        let change = json!({
            "shard_key": "k", "id": "k", "version": 1, "operation": "upsert",
            "data": {"verify": {"run": "r2", "seq": 3}}
        });
        let now = Utc::now();
        assert_eq!(delivered(&change, None, "r1", now).unwrap().seq, None);
        assert_eq!(delivered(&change, None, "r2", now).unwrap().seq, Some(3));
        assert_eq!(delivered(&json!({"id": "k"}), None, "r1", now), None);
    }
}
