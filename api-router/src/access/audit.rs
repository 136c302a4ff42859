//! The audit line of an admin request (every route that needs the `admin` scope,
//! refusals included): one `tracing` event, target `audit`, with who (the key's name,
//! or why there is none), from where (the client's address: behind a trusted proxy,
//! the one its PROXY header declared, with the proxy's as `via`), what (method and URI), when
//! (`at`, UTC, besides the line's own timestamp), and the outcome (`done`, `refused` or
//! `failed`, and the status). `RUST_LOG=warn,audit=info` keeps only these lines.

use std::net::SocketAddr;

use actix_web::http::StatusCode;
use chrono::{SecondsFormat, Utc};

/// What became of a request, from its status: 2xx/3xx done, 4xx refused (the client's
/// mistake or a missing right), 5xx failed.
pub fn outcome(status: StatusCode) -> &'static str {
    match status.as_u16() {
        0..=399 => "done",
        400..=499 => "refused",
        _ => "failed",
    }
}

/// The time for an audit line: RFC 3339, UTC, milliseconds.
pub fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Where an admin request came from: the client, and the trusted proxy it came through.
#[derive(Debug, Clone, Copy)]
pub struct From {
    pub peer: Option<SocketAddr>,
    pub via: Option<SocketAddr>,
}

/// Writes the line for one admin request.
pub fn admin_request(who: &str, from: From, what: &str, status: StatusCode) {
    let ip = |a: Option<SocketAddr>| a.map(|p| p.ip().to_canonical().to_string());
    let (peer, via) = (ip(from.peer), ip(from.via));
    tracing::info!(
        target: "audit",
        at = %now(),
        who,
        peer = peer.as_deref().unwrap_or("unknown"),
        via = via.as_deref().unwrap_or("-"),
        action = what,
        status = status.as_u16(),
        outcome = outcome(status),
        "admin request"
    );
}

/// What an admin request asks for, as the audit line shows it (200 characters at most).
pub fn action(method: &actix_web::http::Method, uri: &actix_web::http::Uri) -> String {
    let uri = uri.to_string();
    format!("{method} {}", uri.chars().take(200).collect::<String>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_follow_the_status_class() {
        assert_eq!(outcome(StatusCode::OK), "done");
        assert_eq!(outcome(StatusCode::NOT_MODIFIED), "done");
        assert_eq!(outcome(StatusCode::UNAUTHORIZED), "refused");
        assert_eq!(outcome(StatusCode::FORBIDDEN), "refused");
        assert_eq!(outcome(StatusCode::SERVICE_UNAVAILABLE), "failed");
    }

    #[test]
    fn actions_are_cut_at_200_characters() {
        let long = format!("/api/shards/locate?key={}", "k".repeat(500));
        let what = action(&actix_web::http::Method::GET, &long.parse().unwrap());
        assert!(what.starts_with("GET /api/shards/locate?key=kkk"));
        assert_eq!(what.chars().count(), 4 + 200);
        assert!(now().ends_with('Z') && now().len() == "2026-01-01T00:00:00.000Z".len());
    }
}
