//! The invalidation side of the memory tier (`tier`): one Redis connection per gateway,
//! speaking RESP3 with `CLIENT TRACKING ON`, that does every lookup the tier may hold the
//! answer of. Redis remembers the keys this connection read and pushes an invalidation
//! on the same connection when one changes (a write through any gateway, an expiry, an
//! eviction, a flush); the push handler evicts the key at once, in the connection's
//! driver, in the order Redis sent it. So an answer is never newer than the
//! invalidations before it, and the tier's race guard (`tier::Ticket`) covers an
//! invalidation processed while the answer is on its way to be held.
//!
//! When tracking stops, the tier empties and stays off until it is back: the connection
//! dropping or closing (the library's disconnection push), a call on it failing (or
//! timing out past its lease, below), or Redis flushing its keys each flush the tier; a lookup then finds no
//! tracked connection, goes to Redis as without the tier, and starts a new connection
//! (at most one at a time, one try per [`RETRY`]), which turns tracking on before it is
//! used. The push handler is a plain function the driver calls, not a channel, so there
//! is no queue to lag or to fill.
//!
//! A connection that stops answering without closing (a network cut) delivers no
//! invalidations either. Every reply on the connection proves that every invalidation
//! Redis queued before it was processed, so the tier answers only while its last reply
//! was sent less than [`LEASE`] ago; past it, the next lookup goes to Redis on the
//! tracking connection (under `timeout_ms`, which ends the connection if it is silent).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ProtocolVersion, PushInfo, PushKind, Value};

use super::tier::Tier;

/// How long a reply on the tracking connection vouches for the tier (see the module
/// doc): far below the replica lag an eventual read allows (`max_lag_ms`), and a trip
/// to Redis that often costs nothing.
pub(super) const LEASE: Duration = Duration::from_millis(500);

/// The least time between two tries to open the tracking connection.
const RETRY: Duration = Duration::from_millis(200);

/// The least time between two tries after Redis refused one (not an outage: a Redis
/// without RESP3 or tracking).
const REFUSED_RETRY: Duration = Duration::from_secs(60);

/// The tracking connection in use, and which one it is.
#[derive(Clone)]
pub(super) struct Tracked {
    pub(super) conn: MultiplexedConnection,
    pub(super) id: u64,
}

/// The tracking connection's state, shared with its push handler.
struct State {
    tier: Arc<Tier>,
    current: Mutex<Option<Tracked>>,
    /// When the last reply was sent, in microseconds since `base`.
    vouched_at: AtomicU64,
    base: Instant,
    connecting: AtomicBool,
    last_try: Mutex<Option<Instant>>,
    next_id: AtomicU64,
}

impl State {
    /// No connection tracking yet: the tier answers nothing until one is.
    fn new(tier: Arc<Tier>) -> Self {
        Self {
            tier,
            current: Mutex::new(None),
            vouched_at: AtomicU64::new(0),
            base: Instant::now(),
            connecting: AtomicBool::new(false),
            last_try: Mutex::new(None),
            next_id: AtomicU64::new(1),
        }
    }

    /// Connection `id` is no longer tracking: if it is the current one, it goes and the
    /// tier empties.
    fn lost(&self, id: u64, why: &str) {
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if current.as_ref().is_some_and(|t| t.id == id) {
            *current = None;
            self.vouched_at.store(0, Ordering::Release);
            drop(current);
            self.tier.flush();
            tracing::warn!(
                reason = why,
                "redis tracking connection lost: memory tier emptied until it is back"
            );
        }
    }

    /// A push from connection `id`.
    fn push(&self, id: u64, push: PushInfo) {
        match push.kind {
            PushKind::Invalidate => match push.data.first() {
                Some(Value::Array(keys)) => {
                    for key in keys {
                        match key {
                            Value::BulkString(bytes) => {
                                // Every key of ours is UTF-8; another is none of ours.
                                if let Ok(key) = std::str::from_utf8(bytes) {
                                    self.tier.invalidate(key);
                                }
                            }
                            Value::SimpleString(key) => self.tier.invalidate(key),
                            _ => self.tier.flush(),
                        }
                    }
                }
                // Redis flushed its keys (FLUSHALL, FLUSHDB): everything goes.
                _ => self.tier.flush(),
            },
            PushKind::Disconnection => self.lost(id, "disconnected"),
            _ => {}
        }
    }
}

/// The tracking connection and its lease.
pub(super) struct Tracking {
    client: redis::Client,
    config: AsyncConnectionConfig,
    /// The connection's name in Redis (`CLIENT LIST`): `{prefix}-tier`.
    name: String,
    state: Arc<State>,
}

impl Tracking {
    /// Tracking for `tier`, through `client`'s Redis (spoken in RESP3 here).
    pub(super) fn new(
        client: &redis::Client,
        prefix: &str,
        connect_timeout: Duration,
        timeout: Duration,
        tier: Arc<Tier>,
    ) -> Result<Self, redis::RedisError> {
        let info = client.get_connection_info().clone();
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let client = redis::Client::open(info.set_redis_settings(settings))?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(connect_timeout))
            .set_response_timeout(Some(timeout));
        Ok(Self {
            client,
            config,
            name: format!("{prefix}-tier"),
            state: Arc::new(State::new(tier)),
        })
    }

    /// The tracking connection, if one is tracking now. If none is, one is started in
    /// the background (the caller goes on without it).
    pub(super) fn conn(&self) -> Option<Tracked> {
        let current = self
            .state
            .current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if current.is_none() {
            self.start();
        }
        current
    }

    /// Whether the tier may answer: a connection is tracking and its last reply was
    /// sent within [`LEASE`].
    pub(super) fn vouches(&self) -> bool {
        let at = self.state.vouched_at.load(Ordering::Acquire);
        at != 0 && self.state.base.elapsed().as_micros() as u64 <= at + LEASE.as_micros() as u64
    }

    /// A call sent at `sent` on connection `id` was answered. Returns whether `id` is
    /// still the tracking connection (else nothing it read may be held: no one may
    /// track it any more).
    pub(super) fn replied(&self, id: u64, sent: Instant) -> bool {
        let current = self.state.current.lock().unwrap_or_else(|p| p.into_inner());
        let tracking = current.as_ref().is_some_and(|t| t.id == id);
        if tracking {
            let at = sent.duration_since(self.state.base).as_micros() as u64;
            self.state.vouched_at.fetch_max(at.max(1), Ordering::AcqRel);
        }
        tracking
    }

    /// A call on connection `id` failed: tracking is no longer trusted.
    pub(super) fn failed(&self, id: u64) {
        self.state.lost(id, "a call failed");
    }

    /// A call on connection `id` timed out. A slow reply still comes after every
    /// invalidation before it, so one timeout changes nothing; a connection that has not
    /// answered for [`LEASE`] is replaced (its lease is over: the tier is not answering).
    pub(super) fn timed_out(&self, id: u64) {
        if !self.vouches() {
            self.state.lost(id, "silent past its lease");
        }
    }

    /// Starts opening a connection, unless one is opening or the last try was within
    /// [`RETRY`].
    fn start(&self) {
        {
            let mut last = self
                .state
                .last_try
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            // (A try in the future, after a refusal, has elapsed nothing yet.)
            if last.is_some_and(|t| t.elapsed() < RETRY) {
                return;
            }
            if self.state.connecting.swap(true, Ordering::AcqRel) {
                return;
            }
            *last = Some(Instant::now());
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.state.connecting.store(false, Ordering::Release);
            return;
        };
        let (client, config, name, state) = (
            self.client.clone(),
            self.config.clone(),
            self.name.clone(),
            self.state.clone(),
        );
        runtime.spawn(async move {
            let id = state.next_id.fetch_add(1, Ordering::Relaxed);
            match open(&client, config, &name, id, &state).await {
                Ok(conn) => {
                    let mut current = state.current.lock().unwrap_or_else(|p| p.into_inner());
                    // Nothing held was read through another connection.
                    state.tier.flush();
                    *current = Some(Tracked { conn, id });
                    tracing::info!(name = %name, "redis tracking connection open: memory tier on");
                }
                // Redis unreachable: the cache's other calls say so. Anything else (a
                // Redis before 6, without RESP3 or tracking) keeps the tier off, and is
                // tried again (and said again) once a minute.
                Err(e) if e.is_io_error() || e.is_connection_refusal() || e.is_timeout() => {
                    tracing::debug!(error = %e, "redis tracking connection not opened");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "redis refused a tracking connection (RESP3 and CLIENT TRACKING need Redis 6 or later): memory tier off");
                    let mut last = state.last_try.lock().unwrap_or_else(|p| p.into_inner());
                    *last = Some(Instant::now() + REFUSED_RETRY);
                }
            }
            state.connecting.store(false, Ordering::Release);
        });
    }
}

/// Opens a RESP3 connection whose pushes go to `state` as connection `id`, turns
/// tracking on and names it.
async fn open(
    client: &redis::Client,
    config: AsyncConnectionConfig,
    name: &str,
    id: u64,
    state: &Arc<State>,
) -> redis::RedisResult<MultiplexedConnection> {
    let pushes = state.clone();
    let config = config.set_push_sender(move |push: PushInfo| {
        pushes.push(id, push);
        Ok::<(), std::convert::Infallible>(())
    });
    let mut conn = client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    let mut setup = redis::pipe();
    setup
        .cmd("CLIENT")
        .arg("TRACKING")
        .arg("ON")
        .ignore()
        .cmd("CLIENT")
        .arg("SETNAME")
        .arg(name)
        .ignore();
    setup.query_async::<()>(&mut conn).await?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::tier::Held;

    fn state(tier: &Arc<Tier>) -> State {
        State::new(tier.clone())
    }

    fn hold(tier: &Tier, key: &str) {
        let ticket = tier.ticket(key);
        assert!(tier.hold(key, Held::Marker(None), ticket));
    }

    fn invalidate(data: Vec<Value>) -> PushInfo {
        PushInfo {
            kind: PushKind::Invalidate,
            data,
        }
    }

    #[test]
    fn an_invalidation_evicts_the_keys_it_names_and_a_flush_of_redis_everything() {
        let tier = Arc::new(Tier::new(100));
        let state = state(&tier);
        for key in ["a", "b", "c"] {
            hold(&tier, key);
        }
        let named = vec![
            Value::BulkString(b"a".to_vec()),
            Value::BulkString(b"b".to_vec()),
        ];
        state.push(1, invalidate(vec![Value::Array(named)]));
        assert_eq!((tier.get("a"), tier.get("b")), (None, None));
        assert_eq!(tier.get("c"), Some(Held::Marker(None)));
        assert_eq!(tier.stats().invalidations, 2);

        // FLUSHALL / FLUSHDB: Redis names no key.
        state.push(1, invalidate(vec![Value::Nil]));
        assert_eq!(tier.get("c"), None);
        assert_eq!(tier.stats().flushes, 1);
    }

    #[test]
    fn a_disconnection_of_a_connection_no_longer_in_use_changes_nothing() {
        let tier = Arc::new(Tier::new(100));
        let state = state(&tier);
        hold(&tier, "a");
        state.push(
            7,
            PushInfo {
                kind: PushKind::Disconnection,
                data: Vec::new(),
            },
        );
        assert_eq!(
            tier.get("a"),
            Some(Held::Marker(None)),
            "not the current one"
        );
        assert_eq!(tier.stats().flushes, 0);
    }
}
