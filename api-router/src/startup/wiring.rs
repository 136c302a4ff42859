//! What one gateway's parts share, made once from its settings and what the metadata
//! database held: the HTTP side ([`Shared`], with the handlers' [`AppState`]) and the
//! background tasks ([`Inputs`]) hold the same cluster, key ring, figures, slot load
//! and move watch, so a map a follower adopts is the map every handler routes with.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ::analytics::load::SlotLoad;
use ::analytics::Analytics;
use actix_web::web;
use control_plane::map::figures::FigureBoard;
use control_plane::map::Identity;
use control_plane::moves::MoveWatch;

use super::background::Inputs;
use super::from_metadata::Loaded;
use super::http::Shared;
use crate::access::Access;
use crate::limits::{ExportSlots, Limits};
use crate::server::drain::Draining;
use crate::server::settings::Settings;
use crate::server::traces::Traced;
use crate::state::AppState;

/// How often a gateway looks for index work left undone (a build a restart stopped).
const INDEX_RECONCILE_EVERY: Duration = Duration::from_secs(5);

/// A gateway's parts, wired to one another and not yet running.
pub struct Wiring {
    pub shared: Shared,
    pub inputs: Inputs,
    /// Set while the gateway drains (health answers 503 so balancers move on).
    pub draining: Arc<Draining>,
}

impl Wiring {
    /// `local`: the address the listener was bound to (its port names this gateway).
    /// `traces`: the export's ledger and sampler, when spans are exported.
    pub fn new(
        settings: &Settings,
        Loaded {
            cluster,
            ring,
            id_secret,
        }: Loaded,
        local: SocketAddr,
        traces: Option<Traced>,
    ) -> Self {
        let limits = Arc::new(Limits::new(&settings.limits));
        let analytics = Arc::new(Analytics::new(settings.analytics.clone()));
        let load = Arc::new(
            SlotLoad::new(cluster.router().slot_count()).counting(settings.analytics.load_per_slot),
        );
        let figures = Arc::new(FigureBoard::default());
        let host = settings
            .server
            .listen
            .rsplit_once(':')
            .map_or("127.0.0.1", |(h, _)| h);
        let identity =
            Identity::new(format!("{host}:{}", local.port())).with_cache(&settings.cluster.cache);
        let moves = Arc::new(MoveWatch::new(settings.cluster.clone()));
        let draining = Arc::new(Draining::default());
        let state = web::Data::new(AppState {
            cluster: cluster.clone(),
            analytics: analytics.clone(),
            moves: moves.clone(),
            server: settings.server.clone(),
            draining: draining.clone(),
            limits: limits.clone(),
            exports: Arc::new(ExportSlots::new(settings.server.max_exports)),
            load: load.clone(),
            figures: figures.clone(),
            gateway_id: identity.id.to_string(),
            id_secret: id_secret.clone(),
            spans: traces.as_ref().map(|t| t.ledger.clone()),
            indexes: Arc::new(control_plane::indexes::Reconciler::start(
                settings.cluster.clone(),
                INDEX_RECONCILE_EVERY,
            )),
        });
        let access = Arc::new(Access {
            ring: ring.clone(),
            protected_mode: settings.auth.protected_mode,
            limits,
        });
        let shared = Shared {
            state,
            analytics: analytics.clone(),
            load: load.clone(),
            access,
            traced: traces.map(|t| t.sampler),
        };
        let inputs = Inputs {
            cluster,
            identity,
            ring,
            moves,
            id_secret,
            figures,
            analytics,
            load,
        };
        Self {
            shared,
            inputs,
            draining,
        }
    }
}
