//! The route table: every path the gateway answers, the one method it answers there,
//! and the access check [`policy::need`] names for it; any other method gets a 405
//! problem with `Allow`. [`crate::startup`] mounts it.

use std::sync::Arc;

use actix_web::dev::HttpServiceFactory;
use actix_web::middleware::from_fn;
use actix_web::{web, Route};

use super::{
    analytics, bulk, changes, dashboard, delete, export, fallback, health, indexes, load, query,
    read, read_many, shards, transaction, write,
};
use crate::access::gate::require;
use crate::access::{policy, Access};

/// A path that answers one method, behind the access check its [`policy::need`] names;
/// any other method gets a 405 problem with `Allow`.
fn only(
    path: &str,
    method: &'static str,
    route: Route,
    access: &Arc<Access>,
) -> impl HttpServiceFactory {
    several(path, method, vec![route], access)
}

/// A path that answers the methods `allowed` names (`"GET, POST"`), one route each.
fn several(
    path: &str,
    allowed: &'static str,
    routes: Vec<Route>,
    access: &Arc<Access>,
) -> impl HttpServiceFactory {
    let access = access.clone();
    let need = policy::need(path);
    routes
        .into_iter()
        .fold(web::resource(path), |resource, route| resource.route(route))
        .default_service(web::to(fallback::method_not_allowed(allowed)))
        .wrap(from_fn(move |req, next| {
            require(access.clone(), need, req, next)
        }))
}

pub fn api_routes(cfg: &mut web::ServiceConfig, access: &Arc<Access>) {
    let only = |path, method, route| only(path, method, route, access);
    cfg.service(only("/api/write", "POST", web::post().to(write::write)))
        .service(only("/api/read", "GET", web::get().to(read::read)))
        .service(only("/api/export", "GET", web::get().to(export::export)))
        .service(only("/api/changes", "GET", web::get().to(changes::changes)))
        .service(only(
            "/api/read-many",
            "POST",
            web::post().to(read_many::read_many),
        ))
        .service(only("/api/query", "POST", web::post().to(query::query)))
        .service(only(
            "/api/bulk-write",
            "POST",
            web::post().to(bulk::bulk_write),
        ))
        .service(only(
            "/api/transaction",
            "POST",
            web::post().to(transaction::transaction),
        ))
        .service(only(
            "/api/delete",
            "DELETE",
            web::delete().to(delete::delete),
        ))
        .service(only("/api/health", "GET", web::get().to(health::health)))
        .service(only("/api/health/live", "GET", web::get().to(health::live)))
        .service(only(
            "/api/health/ready",
            "GET",
            web::get().to(health::ready),
        ))
        .service(only(
            "/api/analytics/metrics",
            "GET",
            web::get().to(analytics::metrics),
        ))
        .service(only(
            "/api/analytics/errors",
            "GET",
            web::get().to(analytics::errors),
        ))
        .service(only(
            "/api/analytics/slowest",
            "GET",
            web::get().to(analytics::slowest),
        ))
        .service(only(
            "/metrics",
            "GET",
            web::get().to(analytics::prometheus),
        ))
        .service(only("/dashboard", "GET", web::get().to(dashboard::page)))
        .service(only(
            "/dashboard/{file}",
            "GET",
            web::get().to(dashboard::asset),
        ))
        .service(only("/api/shards", "GET", web::get().to(shards::shards)))
        .service(only(
            "/api/shards/locate",
            "GET",
            web::get().to(shards::locate),
        ))
        .service(only("/api/shards/load", "GET", web::get().to(load::load)))
        .service(several(
            "/api/indexes",
            "GET, POST",
            vec![
                web::get().to(indexes::list),
                web::post().to(indexes::create),
            ],
            access,
        ))
        .service(several(
            "/api/indexes/{name}",
            "GET, DELETE",
            vec![web::get().to(indexes::one), web::delete().to(indexes::drop)],
            access,
        ));
}
