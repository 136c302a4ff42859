//! The recorder the gateway holds in an `Arc`: record on every request, report on demand.

use std::fmt;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use parking_lot::Mutex;
use prometheus::proto::MetricFamily;

use crate::cluster::figures::{offset_secs, Figures};
use crate::exposition::batches::BatchSizes;
use crate::exposition::encoding::encode;
use crate::exposition::format::Format;
use crate::exposition::gateway::GatewayFigures;
use crate::exposition::held::HeldRequests;
use crate::exposition::limited::LimitedCount;
use crate::exposition::map::MapGauges;
use crate::exposition::moves::MoveProgress;
use crate::exposition::openmetrics;
use crate::exposition::requests::{self, Cumulative, Names};
use crate::exposition::transactions::TransactionStats;
use crate::recording::config::AnalyticsConfig;
use crate::recording::error_log::{sanitize, ErrorEvent, ErrorLog};
use crate::recording::exemplars::{Exemplar, TraceId};
use crate::recording::labels::{
    method_index, method_name, outcome_index, role_index, shard_name, shard_slot, Interner, METHODS,
};
use crate::recording::latency::{micros, Buckets};
use crate::recording::replicas::{ReplicaBoard, ReplicaLag};
use crate::recording::sample::{CacheEvent, OpKind, RequestSample};
use crate::recording::series::SeriesMap;
use crate::recording::slot::{Counts, Point, Slot};
use crate::recording::slowest::{Offered, SlowRequest, Slowest};
use crate::recording::stripe::{Stripe, Stripes};
use crate::recording::timeline::{detail_slot_secs, Timeline};
use crate::reports::metrics::{MetricsReport, Throughput};
use crate::reports::reporting::{self, Parts};
use crate::reports::window::{
    parse_time_range_ms, parse_window_within, window_from_query, WindowError,
};

/// Request metrics of one gateway: bounded memory, striped recording, merged reads.
///
/// All state lives in the value, none in globals, so several gateways in one test
/// process each see only their own traffic. Times are taken from the caller through
/// the `*_at` methods, which the plain methods call with `Instant::now()`; tests use
/// them to place requests in chosen seconds without sleeping.
pub struct Analytics {
    config: AnalyticsConfig,
    started: Instant,
    started_wall: DateTime<Utc>,
    endpoints: Interner,
    stripes: Stripes,
    timeline: Mutex<Timeline>,
    errors: ErrorLog,
    slowest: Slowest,
    replicas: ReplicaBoard,
}

impl Analytics {
    /// A recorder starting now. Out-of-range limits are clamped, never refused.
    pub fn new(config: AnalyticsConfig) -> Self {
        Self::started_at(config, Instant::now(), Utc::now())
    }

    /// A recorder whose second 0 begins at `started`, which is wall-clock time
    /// `started_wall`; the clock seam for tests.
    pub fn started_at(
        config: AnalyticsConfig,
        started: Instant,
        started_wall: DateTime<Utc>,
    ) -> Self {
        let config = config.normalized();
        let endpoints = Interner::new(config.max_endpoints);
        let endpoint_cells = endpoints.capacity();
        let shard_cells = config.max_shards as usize;
        let other = (endpoint_cells, METHODS.len(), shard_cells);
        let max_series = config.max_series;
        let stripes = Stripes::new(config.stripes.unwrap_or(1), || Stripe {
            second: 0,
            current: Slot::new(endpoint_cells, shard_cells),
            totals: Counts::default(),
            series: SeriesMap::new(max_series, other),
            redis: Buckets::default(),
        });
        Self {
            timeline: Mutex::new(Timeline::new(
                config.max_window_secs,
                endpoint_cells,
                shard_cells,
            )),
            errors: ErrorLog::new(config.error_capacity),
            slowest: Slowest::new(),
            replicas: ReplicaBoard::new(config.max_replicas),
            config,
            started,
            started_wall,
            endpoints,
            stripes,
        }
    }

    /// The limits in force, after clamping.
    pub fn config(&self) -> &AnalyticsConfig {
        &self.config
    }

    /// The longest window [`Analytics::report`] covers.
    pub fn max_window(&self) -> Duration {
        self.config.max_window()
    }

    /// Parses `?window=` bounded by this recorder's maximum window.
    pub fn parse_window(&self, input: &str) -> Result<Duration, WindowError> {
        parse_window_within(input, self.max_window())
    }

    /// Parses the ancestor's `?timeRange=<ms>` bounded by this recorder's maximum window.
    pub fn parse_time_range_ms(&self, input: &str) -> Result<Duration, WindowError> {
        parse_time_range_ms(input, self.max_window())
    }

    /// The window of a metrics request from its `?window=` and `?timeRange=`
    /// parameters; see [`crate::reports::window_from_query`].
    pub fn window_from_query(
        &self,
        window: Option<&str>,
        time_range_ms: Option<&str>,
    ) -> Result<Duration, WindowError> {
        window_from_query(window, time_range_ms, self.max_window())
    }

    /// Records one finished request. Called once per HTTP request; takes one mostly
    /// uncontended stripe lock, allocates nothing unless the request failed.
    pub fn record(&self, sample: &RequestSample<'_>) {
        self.record_at(sample, Instant::now());
    }

    /// [`Analytics::record`] for a request that finished at `at`.
    pub fn record_at(&self, sample: &RequestSample<'_>, at: Instant) {
        let second = self.second_of(at);
        let class = sample.error_class();
        let point = Point {
            endpoint: self.endpoints.index(sample.endpoint),
            method: method_index(sample.method),
            shard: sample.shard.map(|s| shard_slot(s, self.config.max_shards)),
            role: role_index(sample.served_by),
            outcome: outcome_index(class),
            kind: OpKind::from_method(sample.method),
            micros: micros(sample.latency),
            rows_written: sample.rows_written,
            rows_read: sample.rows_read,
        };
        // Only a sampled request has a trace to show: the others skip the clock.
        let exemplar = sample
            .trace_id
            .and_then(TraceId::parse)
            .map(|trace| Exemplar {
                trace,
                micros: point.micros,
                at_ms: self.wall_clock(at).timestamp_millis(),
            });
        {
            let mut stripe = self.stripes.lock();
            stripe.advance(second, &self.timeline);
            stripe.record(&point, exemplar);
        }
        if let Some(class) = class {
            let message = match sample.error {
                Some(info) => sanitize(info.message),
                None => format!("HTTP {}", sample.status),
            };
            self.errors.push(ErrorEvent {
                at: self.wall_clock(at),
                endpoint: self.endpoints.name(point.endpoint).to_owned(),
                method: method_name(point.method).to_owned(),
                shard: sample.shard,
                status: sample.status,
                class,
                message,
                trace_id: sample.trace_id.map(str::to_owned),
            });
        }
        let entry = || SlowRequest {
            at: self.wall_clock(at),
            endpoint: self.endpoints.name(point.endpoint).to_owned(),
            method: method_name(point.method).to_owned(),
            status: sample.status,
            latency_ms: sample.latency.as_secs_f64() * 1000.0,
            shard: sample.shard,
            trace_id: sample.trace_id.map(str::to_owned),
        };
        self.slowest.offer(&Offered {
            second,
            micros: point.micros,
            entry: &entry,
        });
    }

    /// Records one cache interaction and, when Redis was asked, how long it took.
    pub fn record_cache(&self, event: CacheEvent, redis_latency: Option<Duration>) {
        self.record_cache_at(event, redis_latency, Instant::now());
    }

    /// [`Analytics::record_cache`] for an interaction that finished at `at`.
    pub fn record_cache_at(&self, event: CacheEvent, redis_latency: Option<Duration>, at: Instant) {
        let second = self.second_of(at);
        let mut stripe = self.stripes.lock();
        stripe.advance(second, &self.timeline);
        stripe.record_cache(event, redis_latency.map(micros));
    }

    /// Stores the latest lag of one replica; a gauge, so the last call wins.
    pub fn set_replica_lag(
        &self,
        shard: u32,
        server: &str,
        lag_bytes: Option<u64>,
        lag_ms: Option<u64>,
        healthy: bool,
    ) {
        self.replicas.set(ReplicaLag {
            shard,
            server: server.to_owned(),
            lag_bytes,
            lag_ms,
            healthy,
            updated_at: self.wall_clock(Instant::now()),
        });
    }

    /// The dashboard report for the `window` ending now (clamped to 1 s..max window).
    pub fn report(&self, window: Duration) -> MetricsReport {
        self.report_at(window, Instant::now())
    }

    /// [`Analytics::report`] as seen at `at`. Windows cover completed seconds only:
    /// the second `at` falls in is still being recorded.
    pub fn report_at(&self, window: Duration, at: Instant) -> MetricsReport {
        self.cluster_report_at(window, at, &[])
    }

    /// [`Analytics::report`] of several gateways: this one's figures merged with the
    /// [`Figures`] others published (see [`crate::cluster`]). Counters are summed and
    /// histograms merged bucket by bucket, so percentiles are exact as for one gateway.
    pub fn cluster_report(&self, window: Duration, others: &[Figures]) -> MetricsReport {
        self.cluster_report_at(window, Instant::now(), others)
    }

    /// [`Analytics::cluster_report`] as seen at `at`.
    pub fn cluster_report_at(
        &self,
        window: Duration,
        at: Instant,
        others: &[Figures],
    ) -> MetricsReport {
        let now = self.second_of(at);
        let window_secs = whole_seconds(window).clamp(1, self.config.max_window_secs);
        let mut totals = Counts::default();
        for mut stripe in self.stripes.each() {
            stripe.advance(now, &self.timeline);
            totals.merge(&stripe.totals);
        }
        let mut detail = Slot::new(self.endpoints.capacity(), self.config.max_shards as usize);
        let (throughput, detail_window_secs) = {
            let timeline = self.timeline.lock();
            let mine = self.started_wall.timestamp_millis();
            // Their seconds on our clock, and the requests they counted in `first..now`.
            let theirs = |secs: u64| -> u64 {
                let first = now as i64 - secs as i64;
                others
                    .iter()
                    .map(|f| {
                        let offset = offset_secs(mine, f.started_ms);
                        f.seconds
                            .iter()
                            .filter(|[s, _]| (first..now as i64).contains(&(*s as i64 + offset)))
                            .map(|[_, n]| n)
                            .sum::<u64>()
                    })
                    .sum()
            };
            let rate = |secs| {
                let (requests, span) = timeline.requests(now, secs);
                crate::reports::metrics::ratio(requests + theirs(secs), span)
            };
            let throughput = Throughput {
                last_1s: rate(1),
                last_10s: rate(10),
                last_60s: rate(60),
                window: rate(window_secs),
            };
            (throughput, timeline.detail(now, window_secs, &mut detail))
        };
        let width = detail_slot_secs(window_secs) as i64;
        let first = now as i64 - window_secs as i64;
        let mine = self.started_wall.timestamp_millis();
        for figures in others {
            totals.merge(&figures.totals);
            let offset = offset_secs(mine, figures.started_ms);
            let ring = if width == 5 {
                &figures.fine
            } else {
                &figures.coarse
            };
            for slot in ring {
                let start = slot.start as i64 + offset;
                if start < now as i64 && start + width > first {
                    slot.merge_into(&mut detail, &self.endpoints, self.config.max_shards);
                }
            }
        }
        reporting::build(Parts {
            generated_at: self.wall_clock(at),
            uptime_secs: now,
            window_secs,
            detail_window_secs,
            totals,
            throughput,
            detail,
            endpoint_names: (0..=self.endpoints.capacity())
                .map(|i| self.endpoints.name(i).to_owned())
                .collect(),
            shard_names: (0..=self.config.max_shards as usize)
                .map(|slot| shard_name(slot, self.config.max_shards))
                .collect(),
            replicas: self.replicas.all(),
        })
    }

    /// This gateway's figures now, for the other gateways' cluster view.
    pub fn figures(&self) -> Figures {
        self.figures_at(Instant::now())
    }

    /// [`Analytics::figures`] as seen at `at`: the completed seconds only.
    pub fn figures_at(&self, at: Instant) -> Figures {
        let now = self.second_of(at);
        let mut totals = Counts::default();
        for mut stripe in self.stripes.each() {
            stripe.advance(now, &self.timeline);
            totals.merge(&stripe.totals);
        }
        let timeline = self.timeline.lock();
        Figures::of(
            self.started_wall.timestamp_millis(),
            now,
            totals,
            timeline.held(),
            &self.endpoints,
            self.config.max_shards,
        )
    }

    /// Up to `limit` of the slowest requests that finished in the `window` ending now,
    /// slowest first (each minute keeps its 20 slowest, for an hour).
    pub fn slowest(&self, window: Duration, limit: usize) -> Vec<SlowRequest> {
        self.slowest_at(window, limit, Instant::now())
    }

    /// [`Analytics::slowest`] as seen at `at`.
    pub fn slowest_at(&self, window: Duration, limit: usize, at: Instant) -> Vec<SlowRequest> {
        let now = self.second_of(at);
        let from = now.saturating_sub(whole_seconds(window).max(1) - 1);
        self.slowest.since(from, limit)
    }

    /// Up to `limit` most recent failed requests, newest first.
    pub fn recent_errors(&self, limit: usize) -> Vec<ErrorEvent> {
        self.errors.recent(limit)
    }

    /// `GET /metrics` body: Prometheus text exposition format 0.0.4 (serve it with
    /// `prometheus::TEXT_FORMAT` as the content type).
    pub fn prometheus_text(&self) -> String {
        encode(&self.metric_families())
    }

    /// [`Analytics::prometheus_text`] with the slot moves in progress: their count,
    /// and each one's slots, rows and ETA.
    pub fn prometheus_text_with_moves(&self, moves: &[MoveProgress]) -> String {
        self.prometheus_text_with(moves, &[])
    }

    /// [`Analytics::prometheus_text_with_moves`] with the requests API keys' limits
    /// refused, by key and limit.
    pub fn prometheus_text_with(&self, moves: &[MoveProgress], limited: &[LimitedCount]) -> String {
        let mut families = self.metric_families();
        families.extend(crate::exposition::moves::families(moves));
        families.extend(crate::exposition::limited::families(limited));
        encode(&families)
    }

    /// [`Analytics::prometheus_text_with`] with what a gateway knows besides: the shard
    /// map it routes with (its version, the live gateways, each shard's term and
    /// failovers) and its transactions (counts by protocol and outcome, parts in doubt).
    pub fn prometheus_text_of_gateway(
        &self,
        moves: &[MoveProgress],
        limited: &[LimitedCount],
        map: &MapGauges,
        transactions: &TransactionStats,
        batches: &[BatchSizes],
    ) -> String {
        let gateway = GatewayFigures {
            moves,
            limited,
            map,
            transactions,
            batches,
            held: &HeldRequests::default(),
            changes: &crate::exposition::ChangeStreams::default(),
            memory_tier: None,
            spans: None,
            process: None,
        };
        self.exposition_of_gateway(Format::Prometheus, &gateway)
    }

    /// `GET /metrics` of a gateway in `format`: the recorder's families, then the
    /// gateway's. In OpenMetrics, each bucket of the request latency histograms carries
    /// the trace of the latest sampled request that fell in it, as an exemplar.
    pub fn exposition_of_gateway(&self, format: Format, gateway: &GatewayFigures<'_>) -> String {
        let data = self.cumulative();
        let mut families = self.families_of(&data);
        families.extend(gateway.families());
        match format {
            Format::Prometheus => encode(&families),
            Format::OpenMetrics => {
                openmetrics::encode(&families, &requests::duration_exemplars(&data))
            }
        }
    }

    /// The metric families behind [`Analytics::prometheus_text`], for a gateway that
    /// wants to add its own families before encoding.
    pub fn metric_families(&self) -> Vec<MetricFamily> {
        self.families_of(&self.cumulative())
    }

    /// Every stripe's cumulative series and counts, merged.
    fn cumulative(&self) -> Cumulative {
        let mut data = Cumulative::default();
        for stripe in self.stripes.each() {
            for (key, stats) in stripe.series.iter() {
                data.series.entry(*key).or_default().merge(stats);
            }
            data.totals.merge(&stripe.totals);
            data.redis.merge(&stripe.redis);
        }
        data
    }

    fn families_of(&self, data: &Cumulative) -> Vec<MetricFamily> {
        let names = Names {
            endpoints: &self.endpoints,
            shard_cap: self.config.max_shards,
        };
        let uptime = self.started.elapsed().as_secs_f64();
        requests::families(data, &names, &self.replicas.all(), uptime)
    }

    fn second_of(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.started).as_secs()
    }

    fn wall_clock(&self, at: Instant) -> DateTime<Utc> {
        TimeDelta::from_std(at.saturating_duration_since(self.started))
            .ok()
            .and_then(|elapsed| self.started_wall.checked_add_signed(elapsed))
            .unwrap_or(self.started_wall)
    }
}

impl Default for Analytics {
    /// A recorder with the default limits, starting now.
    fn default() -> Self {
        Self::new(AnalyticsConfig::default())
    }
}

impl fmt::Debug for Analytics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Analytics")
            .field("config", &self.config)
            .field("started_wall", &self.started_wall)
            .finish_non_exhaustive()
    }
}

/// `window` in seconds, rounded up so `500ms` still covers one second.
fn whole_seconds(window: Duration) -> u64 {
    window.as_secs() + u64::from(window.subsec_nanos() > 0)
}
