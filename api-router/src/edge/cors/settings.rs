//! `[server.cors]`: which origins may call the gateway from a browser, with which
//! methods and headers. Checked once at start: a value a browser would never match (an
//! origin with a path, a trailing slash, capitals or a default port) is refused with a
//! message saying how to write it, rather than silently never matching.

use actix_cors::Cors;
use actix_web::http::header::HeaderName;
use actix_web::http::Method;
use serde::Deserialize;

use crate::server::headers;

/// Where to find these settings, in every message about them.
const SECTION: &str = "server.cors";

/// The CORS policy. No origin (the default) means CORS is off.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CorsSettings {
    /// Exact origins (`https://app.example.com`, `http://localhost:3000`) allowed to
    /// read the gateway's answers from a browser; `["*"]` allows any (only without
    /// credentials). Empty: CORS off.
    pub allowed_origins: Vec<String>,
    /// Methods a cross-origin request may use.
    pub allowed_methods: Vec<String>,
    /// Request headers a cross-origin request may send (beyond the CORS-safelisted).
    pub allowed_headers: Vec<String>,
    /// Response headers a page may read (beyond the CORS-safelisted).
    pub exposed_headers: Vec<String>,
    /// `Access-Control-Allow-Credentials: true`: cookies and TLS client certificates.
    /// Bearer keys do not need it (they travel in `Authorization`, an allowed header).
    pub allow_credentials: bool,
    /// How long a browser may keep a preflight's answer, seconds.
    pub max_age_secs: u32,
}

impl Default for CorsSettings {
    fn default() -> Self {
        let strings = |list: &[&str]| list.iter().map(|s| s.to_string()).collect();
        Self {
            allowed_origins: Vec::new(),
            allowed_methods: strings(&["GET", "POST", "DELETE"]),
            allowed_headers: strings(&[
                "authorization",
                "content-type",
                headers::SHARD_KEY,
                headers::CONSISTENCY,
                headers::MIN_LSN,
                headers::DURABILITY,
                headers::REQUIRE_ALL_SHARDS,
                "idempotency-key",
                headers::REQUEST_ID,
            ]),
            exposed_headers: strings(&[
                headers::SHARD_LSN,
                headers::REQUEST_ID,
                headers::X_CACHE,
                headers::PARTIAL_RESULTS,
                "retry-after",
                "ratelimit",
                "ratelimit-policy",
                "idempotency-replayed",
            ]),
            allow_credentials: false,
            max_age_secs: 600,
        }
    }
}

/// Why `[server.cors]` cannot be used; the gateway does not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CorsConfigError {
    #[error("{SECTION}.allowed_origins: {origin:?} is not an origin: {why}; write it as a browser sends it, e.g. \"https://app.example.com\" or \"http://localhost:3000\"")]
    BadOrigin { origin: String, why: &'static str },
    #[error("{SECTION}.allowed_origins: \"*\" must be the only entry (it allows every origin)")]
    WildcardAmongOrigins,
    #[error("{SECTION}: allowed_origins = [\"*\"] cannot go with allow_credentials = true (browsers refuse that answer); list the origins instead")]
    WildcardWithCredentials,
    #[error("{SECTION}.allowed_methods: {0:?} is not an HTTP method in capitals (GET, POST, DELETE, ...)")]
    BadMethod(String),
    #[error("{SECTION}.{field}: {name:?} is not a header name")]
    BadHeader { field: &'static str, name: String },
}

impl CorsSettings {
    /// Whether cross-origin requests are answered at all.
    pub fn enabled(&self) -> bool {
        !self.allowed_origins.is_empty()
    }

    fn any_origin(&self) -> bool {
        self.allowed_origins.iter().any(|o| o == "*")
    }

    /// The `[server.cors]` keys and their values, for the configuration reference
    /// (docs/src/configuration.md): a test compares them with the fields.
    pub fn describe(&self) -> serde_json::Value {
        serde_json::json!({
            "allowed_origins": self.allowed_origins,
            "allowed_methods": self.allowed_methods,
            "allowed_headers": self.allowed_headers,
            "exposed_headers": self.exposed_headers,
            "allow_credentials": self.allow_credentials,
            "max_age_secs": self.max_age_secs,
        })
    }

    /// Every value as a browser will compare it; the first problem found.
    pub fn validate(&self) -> Result<(), CorsConfigError> {
        if self.any_origin() {
            if self.allowed_origins.len() > 1 {
                return Err(CorsConfigError::WildcardAmongOrigins);
            }
            if self.allow_credentials {
                return Err(CorsConfigError::WildcardWithCredentials);
            }
        } else {
            for origin in &self.allowed_origins {
                check_origin(origin).map_err(|why| CorsConfigError::BadOrigin {
                    origin: origin.chars().take(100).collect(),
                    why,
                })?;
            }
        }
        for method in &self.allowed_methods {
            let upper = !method.is_empty() && method.bytes().all(|b| b.is_ascii_uppercase());
            if !upper || Method::from_bytes(method.as_bytes()).is_err() {
                return Err(CorsConfigError::BadMethod(method.clone()));
            }
        }
        for (field, names) in [
            ("allowed_headers", &self.allowed_headers),
            ("exposed_headers", &self.exposed_headers),
        ] {
            if let Some(name) = names
                .iter()
                .find(|n| HeaderName::from_bytes(n.as_bytes()).is_err())
            {
                return Err(CorsConfigError::BadHeader {
                    field,
                    name: name.clone(),
                });
            }
        }
        Ok(())
    }

    /// The `actix-cors` middleware for a [validated](Self::validate) policy. Requests
    /// from other origins are served as before, without CORS headers.
    pub fn middleware(&self) -> Cors {
        let mut cors = Cors::default()
            .allowed_methods(self.allowed_methods.iter().map(String::as_str))
            .allowed_headers(self.allowed_headers.iter().map(String::as_str))
            .expose_headers(self.exposed_headers.iter().map(String::as_str))
            .max_age(self.max_age_secs as usize)
            .block_on_origin_mismatch(false);
        if self.any_origin() {
            cors = cors.allow_any_origin().send_wildcard();
        } else {
            for origin in &self.allowed_origins {
                cors = cors.allowed_origin(origin);
            }
        }
        if self.allow_credentials {
            cors = cors.supports_credentials();
        }
        cors
    }
}

/// An origin as browsers serialize it (RFC 6454): `http` or `https`, `://`, a lower-case
/// host, a port only when not the scheme's default; nothing after.
fn check_origin(origin: &str) -> Result<(), &'static str> {
    let (scheme, rest) = origin
        .split_once("://")
        .ok_or("it has no scheme (http:// or https://)")?;
    let default_port = match scheme {
        "http" => "80",
        "https" => "443",
        _ => return Err("the scheme must be http or https, in lower case"),
    };
    if rest.is_empty() {
        return Err("it has no host");
    }
    if rest.contains(['/', '?', '#']) {
        return Err("an origin has no path, not even a trailing slash");
    }
    if rest.contains('@') {
        return Err("an origin has no user name");
    }
    if rest.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err("browsers send the host in lower case");
    }
    if !rest
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
    {
        return Err("the host has a character browsers would have encoded");
    }
    let port = match rest.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(':') && !port.contains(']') => Some(port),
        _ => None,
    };
    if let Some(port) = port {
        if port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err("the port must be 1 to 65535");
        }
        if port == default_port {
            return Err("browsers leave out the scheme's default port");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_origins(origins: &[&str]) -> CorsSettings {
        CorsSettings {
            allowed_origins: origins.iter().map(|o| o.to_string()).collect(),
            ..CorsSettings::default()
        }
    }

    #[test]
    fn off_by_default_with_the_gateways_headers_ready() {
        let d = CorsSettings::default();
        assert!(!d.enabled());
        assert_eq!(d.validate(), Ok(()));
        for h in [
            "authorization",
            "content-type",
            "x-shard-key",
            "x-consistency",
            "x-min-lsn",
            "x-durability",
            "x-require-all-shards",
            "idempotency-key",
            "x-request-id",
        ] {
            assert!(d.allowed_headers.iter().any(|a| a == h), "{h}");
        }
        assert_eq!(
            d.exposed_headers.join(","),
            "x-shard-lsn,x-request-id,x-cache,x-partial-results,retry-after,ratelimit,ratelimit-policy,idempotency-replayed"
        );
    }

    #[test]
    fn origins_as_browsers_send_them_are_accepted() {
        for ok in [
            "https://app.example.com",
            "http://localhost:3000",
            "http://127.0.0.1:8080",
            "https://[::1]:8443",
            "https://xn--bcher-kva.example",
        ] {
            assert_eq!(with_origins(&[ok]).validate(), Ok(()), "{ok}");
        }
        assert_eq!(with_origins(&["*"]).validate(), Ok(()));
    }

    #[test]
    fn origins_a_browser_would_never_send_are_refused_saying_why() {
        let cases = [
            ("app.example.com", "it has no scheme"),
            ("ftp://app.example.com", "the scheme must be http or https"),
            (
                "HTTPS://app.example.com",
                "the scheme must be http or https",
            ),
            ("https://", "it has no host"),
            ("https://app.example.com/", "not even a trailing slash"),
            ("https://app.example.com/x", "not even a trailing slash"),
            ("https://App.Example.com", "lower case"),
            ("https://app.example.com:443", "default port"),
            ("http://app.example.com:80", "default port"),
            ("http://localhost:99999", "1 to 65535"),
            ("https://user@app.example.com", "no user name"),
            ("https://bücher.example", "would have encoded"),
            ("null", "it has no scheme"),
        ];
        for (origin, why) in cases {
            let err = with_origins(&[origin]).validate().unwrap_err();
            let text = err.to_string();
            assert!(
                text.starts_with(&format!("server.cors.allowed_origins: {origin:?}")),
                "{text}"
            );
            assert!(text.contains(why), "{origin}: {text}");
        }
    }

    #[test]
    fn the_wildcard_is_alone_and_without_credentials() {
        assert_eq!(
            with_origins(&["*", "https://a.example"]).validate(),
            Err(CorsConfigError::WildcardAmongOrigins)
        );
        let mut s = with_origins(&["*"]);
        s.allow_credentials = true;
        assert_eq!(s.validate(), Err(CorsConfigError::WildcardWithCredentials));
        let mut s = with_origins(&["https://a.example"]);
        s.allow_credentials = true;
        assert_eq!(s.validate(), Ok(()), "credentials with listed origins");
    }

    #[test]
    fn methods_and_header_names_are_checked() {
        let mut s = with_origins(&["https://a.example"]);
        s.allowed_methods = vec!["get".into()];
        assert_eq!(s.validate(), Err(CorsConfigError::BadMethod("get".into())));
        s.allowed_methods = vec!["GET".into()];
        s.exposed_headers = vec!["x shard".into()];
        assert_eq!(
            s.validate().unwrap_err().to_string(),
            "server.cors.exposed_headers: \"x shard\" is not a header name"
        );
    }
}
