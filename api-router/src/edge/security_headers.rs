//! Security headers on every answer (errors, 404s and preflights included), as the
//! outermost middleware. A header a handler set deliberately is kept: the dashboard
//! sends its own Content Security Policy and `Cache-Control: no-cache` for its files.
//!
//! - `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY`,
//!   `Referrer-Policy: no-referrer` everywhere.
//! - `Content-Security-Policy`: API answers allow nothing at all (`default-src 'none'`);
//!   Swagger UI gets a policy for what its page loads (below).
//! - `Cache-Control: no-store` on API answers (records, keys' results, metrics), not on
//!   Swagger UI's static files.
//! - `Strict-Transport-Security` only when the gateway serves TLS itself.

use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;

/// For JSON, problem and text answers: they load nothing, and no page may frame them.
pub const API_POLICY: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; \
     form-action 'none'";

/// Swagger UI (`/swagger-ui/`): its page (the vendored `index.html`) loads two scripts,
/// two stylesheets and icons from its own directory, and no inline script; the
/// generated `swagger-initializer.js` is a file too. Its React components set element
/// styles, and the syntax highlighter writes `style` attributes, hence `'unsafe-inline'`
/// for styles (never for scripts). Images are its own or `data:` URIs (icons in its
/// CSS); "Try it out" calls this origin only.
pub const SWAGGER_UI_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
     connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// The headers one gateway adds, fixed at start.
#[derive(Debug, Clone, Default)]
pub struct SecurityHeaders {
    /// `Strict-Transport-Security`, when serving TLS with HSTS on.
    hsts: Option<HeaderValue>,
}

impl SecurityHeaders {
    /// `hsts` is the `Strict-Transport-Security` value; `None` without TLS.
    pub fn new(hsts: Option<&str>) -> Self {
        Self {
            hsts: hsts.and_then(|v| HeaderValue::from_str(v).ok()),
        }
    }

    /// Adds to `headers` every security header they do not already have.
    pub fn apply(&self, path: &str, headers: &mut HeaderMap) {
        let swagger = path.starts_with("/swagger-ui");
        let policy = if swagger {
            SWAGGER_UI_POLICY
        } else {
            API_POLICY
        };
        let fixed = [
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CONTENT_SECURITY_POLICY, policy),
        ];
        for (name, value) in fixed {
            keep_or_add(headers, name, HeaderValue::from_static(value));
        }
        if !swagger {
            keep_or_add(
                headers,
                header::CACHE_CONTROL,
                HeaderValue::from_static("no-store"),
            );
        }
        if let Some(hsts) = &self.hsts {
            keep_or_add(headers, header::STRICT_TRANSPORT_SECURITY, hsts.clone());
        }
    }
}

fn keep_or_add(headers: &mut HeaderMap, name: HeaderName, value: HeaderValue) {
    if !headers.contains_key(&name) {
        headers.insert(name, value);
    }
}

/// `from_fn` middleware for the whole app. Every failure reaches it as a response
/// (handlers' errors are turned into problems at the route, and the inner middlewares
/// answer their refusals), so every answer passes here. The request itself cannot be
/// kept for an `Err` (routing needs it unshared): such an error would go on unchanged.
pub async fn security_headers(
    headers: Arc<SecurityHeaders>,
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let path = req.path().to_owned();
    let mut res = next.call(req).await?;
    headers.apply(&path, res.headers_mut());
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(hsts: Option<&str>, path: &str, preset: &[(HeaderName, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in preset {
            headers.insert(name.clone(), HeaderValue::from_str(value).unwrap());
        }
        SecurityHeaders::new(hsts).apply(path, &mut headers);
        headers
    }

    fn get<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
        headers.get(name).map(|v| v.to_str().unwrap())
    }

    #[test]
    fn api_answers_get_every_header_and_no_hsts_without_tls() {
        let h = applied(None, "/api/read", &[]);
        assert_eq!(get(&h, "x-content-type-options"), Some("nosniff"));
        assert_eq!(get(&h, "x-frame-options"), Some("DENY"));
        assert_eq!(get(&h, "referrer-policy"), Some("no-referrer"));
        assert_eq!(get(&h, "content-security-policy"), Some(API_POLICY));
        assert_eq!(get(&h, "cache-control"), Some("no-store"));
        assert_eq!(get(&h, "strict-transport-security"), None);
        let h = applied(Some("max-age=60"), "/nowhere", &[]);
        assert_eq!(get(&h, "strict-transport-security"), Some("max-age=60"));
    }

    #[test]
    fn a_handlers_own_headers_are_kept() {
        let h = applied(
            None,
            "/dashboard",
            &[
                (header::CONTENT_SECURITY_POLICY, "default-src 'self'"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
        );
        assert_eq!(
            get(&h, "content-security-policy"),
            Some("default-src 'self'")
        );
        assert_eq!(get(&h, "cache-control"), Some("no-cache"));
        assert_eq!(h.get_all("cache-control").count(), 1);
        assert_eq!(get(&h, "x-frame-options"), Some("DENY"));
    }

    #[test]
    fn swagger_ui_gets_its_policy_and_stays_cacheable() {
        let h = applied(None, "/swagger-ui/swagger-ui-bundle.js", &[]);
        assert_eq!(get(&h, "content-security-policy"), Some(SWAGGER_UI_POLICY));
        assert_eq!(get(&h, "cache-control"), None);
        assert_eq!(get(&h, "x-content-type-options"), Some("nosniff"));
    }
}
