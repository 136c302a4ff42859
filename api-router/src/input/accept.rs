//! The `Accept` header, as the endpoints that answer in more than one format read it:
//! whether a media type is among those the client named (parameters and quality
//! ignored; any of several `Accept` headers counts).

use actix_web::http::header::{self, HeaderMap};

/// Whether the client's `Accept` names `media` (case-insensitively).
pub fn accepts(headers: &HeaderMap, media: &str) -> bool {
    headers
        .get_all(header::ACCEPT)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|range| {
            let named = range.split(';').next().unwrap_or("").trim();
            named.eq_ignore_ascii_case(media)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;

    #[test]
    fn a_media_type_counts_in_any_accept_header_whatever_its_parameters() {
        let mut headers = HeaderMap::new();
        assert!(!accepts(&headers, "text/csv"));
        headers.append(header::ACCEPT, HeaderValue::from_static("application/json"));
        headers.append(
            header::ACCEPT,
            HeaderValue::from_static("text/html, Text/CSV;q=0.5"),
        );
        assert!(accepts(&headers, "text/csv"));
        assert!(!accepts(&headers, "text/event-stream"));
    }
}
