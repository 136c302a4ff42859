//! The cluster view (`?scope=cluster`): every live gateway's figures merged into one
//! report, as if one gateway had served every request.
//!
//! ## Layout
//! - `figures`: one gateway's [`Figures`], as it publishes them and the others read them.
//! - `view`: the cluster view's own fields and shape ([`ClusterMetricsReport`],
//!   [`Scope`], [`Coverage`]).
//! - `load_report`: the shape of `/api/shards/load` ([`LoadReport`]), built from every
//!   gateway's load figures merged and the map's slot owners.

pub(crate) mod figures;
pub(crate) mod load_report;
pub(crate) mod view;

pub use figures::Figures;
pub use load_report::{HotKey, HotSlot, LoadFigure, LoadReport, SlotLoadView};
pub use view::{ClusterMetricsReport, Coverage, GatewayAnswer, MissingGateway, Scope};
