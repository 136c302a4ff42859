//! The gateway's own view of the run: `GET /api/analytics/metrics?window=<N>s`.
//!
//! Only the fields the summary prints are modelled, each with a default, so a report
//! that grows fields (or lacks some) still reads. The endpoint may not exist on the
//! gateway under test: a 404 is [`Fetched::NotServed`], not an error.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::gateway::Gateway;
use crate::http::Call;

/// What asking for the report gave.
#[derive(Debug)]
pub enum Fetched {
    Report(Box<ServerReport>),
    /// 404: this gateway has no analytics endpoint.
    NotServed,
    /// Anything else, described.
    Failed(String),
}

/// The subset of the gateway's `MetricsReport` the summary shows.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ServerReport {
    pub window_secs: u64,
    /// Seconds the latency and per-shard figures actually cover.
    pub detail_window_secs: u64,
    pub throughput: Throughput,
    pub latency: Latency,
    pub errors: Errors,
    /// Per shard id (`"0"`, `"1"`, ...).
    pub shards: BTreeMap<String, ShardTraffic>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Throughput {
    /// Requests per second over the window.
    pub window: f64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Latency {
    pub overall: Percentiles,
    pub by_endpoint: BTreeMap<String, Percentiles>,
    pub by_shard: BTreeMap<String, Percentiles>,
    pub by_role: BTreeMap<String, Percentiles>,
}

/// Milliseconds.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default)]
pub struct Percentiles {
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Errors {
    pub count: u64,
    pub rate: f64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ShardTraffic {
    pub requests: u64,
    pub errors: u64,
    pub by_role: RoleCounts,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default)]
pub struct RoleCounts {
    pub primary: u64,
    pub replica: u64,
    pub cache: u64,
}

/// The path asked for.
pub fn path(window_secs: u64) -> String {
    format!("/api/analytics/metrics?window={window_secs}s")
}

/// Asks the gateway for the last `window_secs` seconds.
pub async fn fetch(gateway: &mut Gateway, window_secs: u64) -> Fetched {
    let path = path(window_secs);
    let reply = match gateway.call(Call::get("analytics", &path)).await {
        Ok(reply) => reply,
        Err(e) => return Fetched::Failed(format!("{e:#}")),
    };
    match reply.status {
        200 => match serde_json::from_slice::<ServerReport>(&reply.body) {
            Ok(report) => Fetched::Report(Box::new(report)),
            Err(e) => Fetched::Failed(format!("the report did not parse: {e}")),
        },
        404 => Fetched::NotServed,
        _ => Fetched::Failed(reply.detail()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_reads_with_fields_missing_or_extra() {
        let report: ServerReport = serde_json::from_str(
            r#"{"window_secs": 10, "surprise": true,
                "latency": {"overall": {"count": 5, "p50": 1.5, "p99": 9.0},
                            "by_shard": {"0": {"count": 3, "p50": 1.0}},
                            "by_role": {"replica": {"count": 2, "p99": 4.0}}},
                "shards": {"0": {"requests": 3, "by_role": {"primary": 3}}}}"#,
        )
        .unwrap();
        assert_eq!(report.window_secs, 10);
        assert_eq!(report.latency.overall.count, 5);
        assert_eq!(report.latency.by_shard["0"].p50, 1.0);
        assert_eq!(report.latency.by_role["replica"].p99, 4.0);
        assert_eq!(report.shards["0"].by_role.primary, 3);
        assert_eq!(report.errors.count, 0);
    }
}
