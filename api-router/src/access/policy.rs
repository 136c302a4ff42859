//! Which scope each route needs: the one table both the routes and the OpenAPI
//! document read, so they cannot disagree.

use control_plane::keys::Scope;

/// What a route asks of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Anyone the gateway serves (protected mode still applies).
    Open,
    /// A key with this scope, once any key exists.
    Scope(Scope),
}

/// The need of a route, by its path pattern. Open routes are listed one by one; a
/// path this table does not know needs `admin`, so a route added without a line here
/// is closed rather than open.
pub fn need(path: &str) -> Need {
    match path {
        // Liveness and readiness (load balancers), and the dashboard's page and files,
        // which hold no data: the data it shows comes from the endpoints below.
        "/api/health" | "/api/health/live" | "/api/health/ready" | "/dashboard"
        | "/dashboard/{file}" => Need::Open,
        "/api/read" | "/api/read-many" | "/api/query" | "/api/export" | "/api/changes" => {
            Need::Scope(Scope::Read)
        }
        "/api/write" | "/api/bulk-write" | "/api/transaction" | "/api/delete" => {
            Need::Scope(Scope::Write)
        }
        "/metrics"
        | "/api/analytics/metrics"
        | "/api/analytics/errors"
        | "/api/analytics/slowest" => Need::Scope(Scope::Metrics),
        _ => Need::Scope(Scope::Admin),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_has_the_scope_the_readme_gives_it() {
        let table = [
            ("/api/read", Need::Scope(Scope::Read)),
            ("/api/export", Need::Scope(Scope::Read)),
            ("/api/changes", Need::Scope(Scope::Read)),
            ("/api/read-many", Need::Scope(Scope::Read)),
            ("/api/query", Need::Scope(Scope::Read)),
            ("/api/write", Need::Scope(Scope::Write)),
            ("/api/bulk-write", Need::Scope(Scope::Write)),
            ("/api/delete", Need::Scope(Scope::Write)),
            ("/api/shards", Need::Scope(Scope::Admin)),
            ("/api/shards/locate", Need::Scope(Scope::Admin)),
            ("/metrics", Need::Scope(Scope::Metrics)),
            ("/api/analytics/metrics", Need::Scope(Scope::Metrics)),
            ("/api/analytics/errors", Need::Scope(Scope::Metrics)),
            ("/api/analytics/slowest", Need::Scope(Scope::Metrics)),
            ("/api/health", Need::Open),
            ("/api/health/live", Need::Open),
            ("/api/health/ready", Need::Open),
            ("/dashboard", Need::Open),
            ("/api/some-new-route", Need::Scope(Scope::Admin)),
        ];
        for (path, expected) in table {
            assert_eq!(need(path), expected, "{path}");
        }
    }
}
