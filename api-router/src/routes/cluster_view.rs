//! The cluster views' gathering: the figures every other live gateway published, and
//! which gateways they cover (see `control_plane::map::figures` for why the metadata
//! database carries them). A gateway that did not publish in time is named, never an
//! error: the view is then partial. So is one that published within the view's window
//! but is no longer live in the map (killed, or cut off longer than the gateways' TTL):
//! the window lacks its requests, whether or not the map still lists it.

use std::time::Duration;

use analytics::cluster::{Coverage, Figures, GatewayAnswer, MissingGateway};

use crate::state::AppState;

/// The other live gateways' figures, and the coverage of a view over `window` that
/// merges them with this gateway's own (read live, not from the database).
pub async fn gather(state: &AppState, window: Duration) -> (Vec<Figures>, Coverage) {
    let listed = state.cluster.map().gateways();
    let me = &state.gateway_id;
    let address = |id: &str| {
        listed
            .iter()
            .find(|g| g.id == id)
            .map(|g| g.address.clone())
            .unwrap_or_default()
    };
    let mut coverage = Coverage {
        scope: "cluster".into(),
        gateways: vec![GatewayAnswer {
            id: me.clone(),
            address: address(me),
            age_ms: 0,
            this_gateway: true,
        }],
        missing_gateways: Vec::new(),
        partial: false,
    };
    let others: Vec<String> = listed
        .iter()
        .filter(|g| g.id != *me)
        .map(|g| g.id.clone())
        .collect();
    let stale_ms = state.analytics.config().stale_ms;
    let mut figures = Vec::with_capacity(others.len());
    let within_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
    match state.figures.read(&others, within_ms).await {
        Ok(published) => {
            // Published within the window by a gateway the map does not list as live:
            // fresh figures are a gateway that has just joined (merged, as it answered);
            // older ones, one that stopped, whose requests the window lacks.
            for p in published
                .iter()
                .filter(|p| p.gateway_id != *me && !others.contains(&p.gateway_id))
            {
                let address = p.address.clone().unwrap_or_default();
                let read = (p.age_ms <= stale_ms)
                    .then(|| Figures::from_bytes(&p.figures))
                    .flatten();
                match read {
                    Some(read) => {
                        figures.push(read);
                        coverage.gateways.push(GatewayAnswer {
                            id: p.gateway_id.clone(),
                            address,
                            age_ms: p.age_ms,
                            this_gateway: false,
                        });
                    }
                    None => coverage.missing_gateways.push(MissingGateway {
                        id: p.gateway_id.clone(),
                        address,
                        reason: format!(
                            "no longer live in the map (stopped?): figures {} ms old, its requests in the window are not counted",
                            p.age_ms
                        ),
                    }),
                }
            }
            for id in &others {
                let found = published.iter().find(|p| p.gateway_id == *id);
                let reason = match found {
                    None => Some("no figures published yet".to_owned()),
                    Some(p) if p.age_ms > stale_ms => Some(format!(
                        "figures {} ms old (analytics.stale_ms is {stale_ms})",
                        p.age_ms
                    )),
                    Some(p) => match Figures::from_bytes(&p.figures) {
                        Some(read) => {
                            figures.push(read);
                            coverage.gateways.push(GatewayAnswer {
                                id: id.clone(),
                                address: address(id),
                                age_ms: p.age_ms,
                                this_gateway: false,
                            });
                            None
                        }
                        None => Some("figures unreadable (another version?)".to_owned()),
                    },
                };
                if let Some(reason) = reason {
                    coverage.missing_gateways.push(MissingGateway {
                        id: id.clone(),
                        address: address(id),
                        reason,
                    });
                }
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "cluster view: the other gateways' figures were not read");
            coverage.missing_gateways = others
                .iter()
                .map(|id| MissingGateway {
                    id: id.clone(),
                    address: address(id),
                    reason: format!("figures not read: {e}"),
                })
                .collect();
        }
    }
    coverage.partial = !coverage.missing_gateways.is_empty();
    (figures, coverage)
}

/// The coverage of a view of this gateway alone.
pub fn local(state: &AppState) -> Coverage {
    let address = state
        .cluster
        .map()
        .gateways()
        .into_iter()
        .find(|g| g.id == state.gateway_id)
        .map(|g| g.address)
        .unwrap_or_default();
    Coverage {
        scope: "local".into(),
        gateways: vec![GatewayAnswer {
            id: state.gateway_id.clone(),
            address,
            age_ms: 0,
            this_gateway: true,
        }],
        missing_gateways: Vec::new(),
        partial: false,
    }
}
