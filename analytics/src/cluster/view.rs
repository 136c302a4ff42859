//! The cluster view's own fields: which gateways' figures a report merges, which
//! listed gateways it lacks, and the JSON shape of `?scope=cluster`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::reports::metrics::MetricsReport;

/// Whose figures a report covers: this gateway's, or every live gateway's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// The gateway that answers.
    Local,
    /// Every gateway the map lists as live.
    Cluster,
}

impl Scope {
    /// `local` or `cluster` (exactly, lower case); anything else is refused by name.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "local" => Ok(Self::Local),
            "cluster" => Ok(Self::Cluster),
            other => Err(format!(
                "scope is {:?}; use \"local\" (this gateway) or \"cluster\" (every live gateway)",
                other.chars().take(32).collect::<String>()
            )),
        }
    }
}

/// A gateway whose figures are in the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GatewayAnswer {
    /// Its id in the map's list of live gateways.
    pub id: String,
    /// Where it listens.
    pub address: String,
    /// How old its figures are, in milliseconds (0 for the gateway that answers,
    /// whose figures are read live).
    pub age_ms: u64,
    /// True for the gateway that built this report.
    pub this_gateway: bool,
}

/// A live gateway whose figures are not in the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MissingGateway {
    /// Its id in the map's list of live gateways.
    pub id: String,
    /// Where it listens.
    pub address: String,
    /// Why: its figures are too old, were never published, or could not be read.
    pub reason: String,
}

/// Which gateways a cluster report covers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Coverage {
    /// `cluster` or `local`.
    pub scope: String,
    /// The gateways whose figures are merged (this one first).
    pub gateways: Vec<GatewayAnswer>,
    /// Live gateways whose figures are missing.
    pub missing_gateways: Vec<MissingGateway>,
    /// True when `missing_gateways` is not empty: the figures cover part of the
    /// cluster's traffic.
    pub partial: bool,
}

/// `GET /api/analytics/metrics?scope=cluster`: the same report as one gateway's, over
/// every live gateway's traffic, with the gateways it covers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ClusterMetricsReport {
    /// The merged report, field for field as a single gateway's.
    #[serde(flatten)]
    pub report: MetricsReport,
    /// The gateways merged and those missing.
    #[serde(flatten)]
    pub coverage: Coverage,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_is_local_or_cluster_and_nothing_else() {
        assert_eq!(Scope::parse("local"), Ok(Scope::Local));
        assert_eq!(Scope::parse("cluster"), Ok(Scope::Cluster));
        let refused = Scope::parse("Cluster").unwrap_err();
        assert!(refused.contains("scope is \"Cluster\""), "{refused}");
        assert!(Scope::parse("").is_err());
    }
}
