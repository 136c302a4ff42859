//! The state every handler shares, passed explicitly as `web::Data<AppState>`.

use std::sync::Arc;

use analytics::Analytics;
use shard_manager::Cluster;

use crate::settings::ServerSettings;

pub struct AppState {
    pub cluster: Arc<Cluster>,
    pub analytics: Arc<Analytics>,
    pub server: ServerSettings,
}
