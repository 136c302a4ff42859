//! `GET /dashboard`: the live operations page, and `GET /dashboard/{file}`: its assets.
//!
//! Every file is compiled into the binary (`assets/dashboard/`), so the page works on a
//! machine with no network and loads nothing from another origin; its Content Security
//! Policy holds it to that. Its script polls `/api/analytics/metrics` (the cluster's by
//! default), `/api/shards/load` and `/api/shards`.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};

use crate::error::ApiError;

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
    /// Strong validator: a hash of the body, computed at compile time.
    etag: u64,
}

impl Asset {
    const fn new(name: &'static str, content_type: &'static str, body: &'static [u8]) -> Self {
        Self {
            name,
            content_type,
            body,
            etag: fnv1a(body),
        }
    }
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

macro_rules! asset {
    ($name:literal, $content_type:expr) => {
        Asset::new(
            $name,
            $content_type,
            include_bytes!(concat!("../../assets/dashboard/", $name)),
        )
    };
}

/// The page and what it references (the modules `dashboard.js` imports included);
/// anything else under `/dashboard/` is a 404.
static ASSETS: [Asset; 13] = [
    asset!("index.html", HTML),
    asset!("dashboard.js", JS),
    asset!("charts.js", JS),
    asset!("format.js", JS),
    asset!("tables.js", JS),
    asset!("events.js", JS),
    asset!("requests.js", JS),
    asset!("heatmap.js", JS),
    asset!("streams.js", JS),
    asset!("dashboard.css", CSS),
    asset!("uPlot.iife.min.js", JS),
    asset!("uPlot.min.css", CSS),
    asset!("uPlot.LICENSE", TEXT),
];

/// Same origin only, and no inline script or style: uPlot sets element styles through
/// the CSSOM, which the policy allows.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The dashboard page.
pub async fn page(req: HttpRequest) -> HttpResponse {
    let mut res = serve(&req, &ASSETS[0]);
    res.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    res
}

/// One of the page's scripts or stylesheets.
pub async fn asset(req: HttpRequest, file: web::Path<String>) -> Result<HttpResponse, ApiError> {
    match ASSETS.iter().find(|a| a.name == file.as_str()) {
        Some(asset) => Ok(serve(&req, asset)),
        None => Err(ApiError::RouteNotFound {
            method: req.method().to_string(),
            path: req.path().chars().take(200).collect(),
        }),
    }
}

/// The file, or 304 when the browser already holds this version. `no-cache` makes the
/// browser revalidate on every load, so a new gateway build is picked up at once while
/// an unchanged file costs a tiny 304.
fn serve(req: &HttpRequest, asset: &Asset) -> HttpResponse {
    let etag = format!("\"{:016x}\"", asset.etag);
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag));
    let mut res = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    res.insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"));
    if fresh {
        res.finish()
    } else {
        res.content_type(asset.content_type).body(asset.body)
    }
}

/// 64-bit FNV-1a: a cheap, stable content hash for ETags (not for security).
const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_reference_vectors() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn asset_names_are_unique_and_the_page_comes_first() {
        assert_eq!(ASSETS[0].name, "index.html");
        for (i, a) in ASSETS.iter().enumerate() {
            assert!(
                ASSETS[i + 1..].iter().all(|b| b.name != a.name),
                "{}",
                a.name
            );
            assert!(!a.body.is_empty(), "{} is empty", a.name);
        }
    }
}
