//! The two checks, as middleware: [`protect`] (every request: protected mode) and
//! [`require`] (each route that needs a scope: the key, its scope, its rate, the
//! [audit](super::audit) line of admin routes).

use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderValue, AUTHORIZATION};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, ResponseError};
use control_plane::keys::{KeyHash, KeyRing, Scope};

use super::audit;
use super::bearer::{self, BearerError};
use super::caller::Caller;
use super::policy::Need;
use crate::error::ApiError;
use crate::limits::{Limits, Quota, RateCheck};
use crate::server::proxy::Via;

/// The keys a gateway checks against, whether protected mode is on, and the keys'
/// limiters.
pub struct Access {
    pub ring: Arc<KeyRing>,
    /// `[auth] protected_mode`: with no key, serve loopback clients only.
    pub protected_mode: bool,
    pub limits: Arc<Limits>,
}

impl Access {
    /// Protected mode: with no live key, only loopback peers are served. Before the
    /// keys are read nothing is decided here ([`Access::admit`] decides for scoped
    /// routes).
    pub fn peer_allowed(&self, peer: Option<SocketAddr>) -> Result<(), ApiError> {
        if !self.protected_mode || !self.ring.table().as_deref().is_some_and(|t| t.is_empty()) {
            return Ok(());
        }
        match is_loopback(peer) {
            true => Ok(()),
            false => Err(ApiError::ProtectedMode),
        }
    }

    /// The caller of a route that needs `scope`, or why it is refused.
    pub fn admit(
        &self,
        scope: Scope,
        peer: Option<SocketAddr>,
        authorization: Option<&HeaderValue>,
    ) -> Result<Caller, ApiError> {
        let caller = self.identify(peer, authorization)?;
        if let Caller::Key(key) = &caller {
            if !key.scopes.contains(scope) {
                return Err(ApiError::Forbidden(format!(
                    "this API key does not have the `{scope}` scope this endpoint needs"
                )));
            }
        }
        Ok(caller)
    }

    /// Who the caller is, whatever the route: a live key once keys exist; anonymous
    /// where callers need none (no key yet and a peer protected mode lets in; the keys
    /// not read yet and a loopback peer); otherwise why it is refused. [`Access::admit`]
    /// adds the route's scope; the server span trusts a caller's trace context only
    /// when this knows the caller (`crate::server::traces::server_span`).
    pub fn identify(
        &self,
        peer: Option<SocketAddr>,
        authorization: Option<&HeaderValue>,
    ) -> Result<Caller, ApiError> {
        let table = self.ring.table();
        let Some(table) = table.as_deref() else {
            // Started while the metadata database was down: as in protected mode,
            // loopback clients are served (the gateway keeps serving locally, as it
            // keeps routing with the config's map); no one else until the keys are read.
            return match is_loopback(peer) {
                true => Ok(Caller::Anonymous),
                false => Err(ApiError::KeysUnavailable),
            };
        };
        if table.is_empty() {
            self.peer_allowed(peer)?;
            return Ok(Caller::Anonymous);
        }
        let token = bearer::token(authorization).map_err(ApiError::Unauthenticated)?;
        if !KeyHash::well_formed(token) {
            return Err(ApiError::Unauthenticated(BearerError::Invalid));
        }
        let key = table
            .get(&KeyHash::of(token))
            .ok_or(ApiError::Unauthenticated(BearerError::Invalid))?;
        Ok(Caller::Key(key.clone()))
    }
}

impl Access {
    /// Who an admin refusal's audit line names: the key's name when a live key lacked
    /// the scope, otherwise why no key could be named.
    fn refused_who(&self, refusal: &ApiError, authorization: Option<&HeaderValue>) -> String {
        match refusal {
            ApiError::Forbidden(_) => bearer::token(authorization)
                .ok()
                .and_then(|token| {
                    let table = self.ring.table();
                    let key = table.as_deref()?.get(&KeyHash::of(token))?;
                    Some(key.name.clone())
                })
                .map_or("(a key without the admin scope)".into(), |name| {
                    format!("{name} (without the admin scope)")
                }),
            ApiError::Unauthenticated(_) => "(no valid key)".into(),
            ApiError::ProtectedMode => "(remote client, protected mode)".into(),
            ApiError::KeysUnavailable => "(remote client, keys not read yet)".into(),
            _ => "(refused)".into(),
        }
    }
}

fn is_loopback(peer: Option<SocketAddr>) -> bool {
    peer.is_some_and(|p| p.ip().to_canonical().is_loopback())
}

/// The liveness and readiness probes: they carry no data, and an orchestrator (the
/// kubelet, a load balancer) asks them from beyond loopback before any key can exist.
const PROBES: [&str; 2] = ["/api/health/live", "/api/health/ready"];

/// `from_fn` middleware for the whole app: protected mode (the probes pass).
pub async fn protect(
    access: Arc<Access>,
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let probe = PROBES.contains(&req.path());
    match access
        .peer_allowed(req.peer_addr())
        .or_else(|e| match probe {
            true => Ok(()),
            false => Err(e),
        }) {
        Ok(()) => next.call(req).await.map(|res| res.map_into_left_body()),
        Err(e) => Ok(req.into_response(e.error_response()).map_into_right_body()),
    }
}

/// `from_fn` middleware for one route: what [`need`](super::policy::need) names for it.
/// For a scope, a key with it, put in the request as its [`Caller`], within its rate
/// (429 past it; the `RateLimit` headers on every answer), with its limiter put in as
/// the [`Quota`] handlers take shard permits from; admin routes leave an audit line
/// (target `audit`), refused ones too.
pub async fn require(
    access: Arc<Access>,
    need: Need,
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let Need::Scope(scope) = need else {
        return next.call(req).await.map(|res| res.map_into_left_body());
    };
    // The client: behind a trusted proxy, the one its PROXY header declared
    // (crate::server::proxy).
    let peer = req.peer_addr();
    let from = audit::From {
        peer,
        via: req.conn_data::<Via>().map(|v| v.0),
    };
    let authorization = req.headers().get(AUTHORIZATION).cloned();
    let admitted = access.admit(scope, peer, authorization.as_ref());
    let what = (scope == Scope::Admin).then(|| audit::action(req.method(), req.uri()));
    let caller = match admitted {
        Ok(caller) => caller,
        Err(e) => {
            let res = e.error_response();
            if let Some(what) = what {
                let who = access.refused_who(&e, authorization.as_ref());
                audit::admin_request(&who, from, &what, res.status());
            }
            return Ok(req.into_response(res).map_into_right_body());
        }
    };
    let who = what.as_ref().map(|_| caller.name().to_owned());
    let limiter = match &caller {
        Caller::Key(key) => access.limits.for_key(key),
        Caller::Anonymous => None,
    };
    let headers = match limiter.as_ref().map(|l| l.check_rate()) {
        Some(RateCheck::Refused(limited, headers)) => {
            let mut res = ApiError::from(limited).error_response();
            headers.apply(res.headers_mut());
            if let (Some(who), Some(what)) = (who, what) {
                audit::admin_request(&who, from, &what, res.status());
            }
            return Ok(req.into_response(res).map_into_right_body());
        }
        Some(RateCheck::Allowed(headers)) => Some(headers),
        Some(RateCheck::Unlimited) | None => None,
    };
    req.extensions_mut().insert(caller);
    req.extensions_mut().insert(Quota::new(limiter));
    let mut res = next.call(req).await?;
    if let Some(headers) = headers {
        headers.apply(res.headers_mut());
    }
    if let (Some(who), Some(what)) = (who, what) {
        audit::admin_request(&who, from, &what, res.status());
    }
    Ok(res.map_into_left_body())
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::middleware::from_fn;
    use actix_web::{test, web, App, HttpResponse};
    use control_plane::keys::{ApiKey, KeyTable, Scopes};

    async fn status(ring: KeyRing, protected_mode: bool, peer: &str, auth: Option<&str>) -> u16 {
        status_of("/api/health", ring, protected_mode, peer, auth).await
    }

    /// The status of a GET of `path` through protected mode (every route answers 200).
    async fn status_of(
        path: &str,
        ring: KeyRing,
        protected_mode: bool,
        peer: &str,
        auth: Option<&str>,
    ) -> u16 {
        let access = Arc::new(Access {
            ring: Arc::new(ring),
            protected_mode,
            limits: Arc::new(Limits::new(&Default::default())),
        });
        let app = test::init_service(
            App::new()
                .wrap(from_fn(move |req, next| protect(access.clone(), req, next)))
                .default_service(web::get().to(HttpResponse::Ok)),
        )
        .await;
        let mut req = test::TestRequest::get()
            .uri(path)
            .peer_addr(peer.parse().unwrap());
        if let Some(auth) = auth {
            req = req.insert_header((AUTHORIZATION, auth));
        }
        test::call_service(&app, req.to_request())
            .await
            .status()
            .as_u16()
    }

    fn one_key() -> KeyTable {
        let key = ApiKey {
            name: "k".into(),
            scopes: Scopes::parse("read").unwrap(),
            tables: None,
            limits: Default::default(),
        };
        KeyTable::from([(KeyHash::of("k"), Arc::new(key))])
    }

    #[actix_web::test]
    async fn the_probes_pass_protected_mode_and_nothing_else_does() {
        let empty = || KeyRing::with(KeyTable::new());
        for probe in PROBES {
            assert_eq!(
                status_of(probe, empty(), true, "10.1.2.3:5000", None).await,
                200
            );
        }
        for other in ["/api/health", "/api/health/live/x", "/api/read"] {
            assert_eq!(
                status_of(other, empty(), true, "10.1.2.3:5000", None).await,
                403,
                "{other}"
            );
        }
    }

    #[actix_web::test]
    async fn without_keys_only_loopback_peers_are_served_unless_opted_out() {
        let empty = || KeyRing::with(KeyTable::new());
        assert_eq!(status(empty(), true, "127.0.0.1:5000", None).await, 200);
        assert_eq!(status(empty(), true, "[::1]:5000", None).await, 200);
        assert_eq!(
            status(empty(), true, "[::ffff:127.0.0.1]:5000", None).await,
            200
        );
        for remote in [
            "10.1.2.3:5000",
            "[2001:db8::1]:5000",
            "[::ffff:10.0.0.1]:5000",
        ] {
            assert_eq!(status(empty(), true, remote, None).await, 403, "{remote}");
            assert_eq!(
                status(empty(), true, remote, Some("Bearer k")).await,
                403,
                "{remote}: a key changes nothing while none exists"
            );
        }
        assert_eq!(status(empty(), false, "10.1.2.3:5000", None).await, 200);
        // With a key, or before the keys are read, this check lets everyone through
        // (the route's own check asks for the key).
        assert_eq!(
            status(KeyRing::with(one_key()), true, "10.1.2.3:5000", None).await,
            200
        );
        assert_eq!(
            status(KeyRing::unknown(), true, "10.1.2.3:5000", None).await,
            200
        );
    }

    #[actix_web::test]
    async fn a_caller_is_known_by_a_live_key_whatever_its_scopes_or_where_none_is_needed() {
        let access = |ring: KeyRing, protected_mode: bool| Access {
            ring: Arc::new(ring),
            protected_mode,
            limits: Arc::new(Limits::new(&Default::default())),
        };
        let known = |access: &Access, peer: &str, auth: Option<&str>| {
            let auth = auth.map(|a| HeaderValue::from_str(a).unwrap());
            access.identify(peer.parse().ok(), auth.as_ref()).is_ok()
        };
        let (local, remote) = ("127.0.0.1:5000", "10.1.2.3:5000");
        let secret = format!("sg_{}", "ab".repeat(32));
        let bearer = format!("Bearer {secret}");
        let key = ApiKey {
            name: "reader".into(),
            scopes: Scopes::parse("read").unwrap(),
            tables: None,
            limits: Default::default(),
        };
        let table = KeyTable::from([(KeyHash::of(&secret), Arc::new(key))]);
        // Keys exist: the key decides, wherever the caller is.
        let keyed = access(KeyRing::with(table), true);
        assert!(known(&keyed, remote, Some(&bearer)));
        let wrong = format!("Bearer sg_{}", "cd".repeat(32));
        for auth in [
            None,
            Some(wrong.as_str()),
            Some("Basic k"),
            Some("Bearer k"),
        ] {
            assert!(!known(&keyed, local, auth), "{auth:?}");
        }
        // A live key without the route's scope is still its holder's: refused by the
        // route, not unknown.
        let write = HeaderValue::from_str(&bearer).unwrap();
        assert!(keyed
            .admit(Scope::Write, remote.parse().ok(), Some(&write))
            .is_err());
        // No key yet: whoever protected mode serves.
        let empty = access(KeyRing::with(KeyTable::new()), true);
        assert!(known(&empty, local, None));
        assert!(!known(&empty, remote, Some(&bearer)));
        assert!(known(
            &access(KeyRing::with(KeyTable::new()), false),
            remote,
            None
        ));
        // The keys not read yet: loopback callers only.
        let unknown = access(KeyRing::unknown(), true);
        assert!(known(&unknown, local, None));
        assert!(!known(&unknown, remote, None));
    }

    #[actix_web::test]
    async fn the_protected_mode_problem_says_how_to_create_a_key() {
        let access = Access {
            ring: Arc::new(KeyRing::with(KeyTable::new())),
            protected_mode: true,
            limits: Arc::new(Limits::new(&Default::default())),
        };
        let err = access
            .admit(Scope::Read, "10.0.0.1:1".parse().ok(), None)
            .unwrap_err();
        assert_eq!(err.kind().1, "protected-mode");
        assert!(err.to_string().contains("shard-admin keys create"), "{err}");
        let access = Access {
            ring: Arc::new(KeyRing::unknown()),
            protected_mode: true,
            limits: Arc::new(Limits::new(&Default::default())),
        };
        let err = access
            .admit(Scope::Read, "10.0.0.1:1".parse().ok(), None)
            .unwrap_err();
        assert_eq!(
            err.kind().1,
            "keys-unavailable",
            "closed to remote clients before the keys are read"
        );
        assert!(
            access
                .admit(Scope::Read, "127.0.0.1:1".parse().ok(), None)
                .is_ok(),
            "served locally meanwhile, as in protected mode"
        );
    }
}
