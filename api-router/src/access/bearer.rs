//! The `Authorization: Bearer <key>` header, read strictly: one scheme, one token, ASCII.

use actix_web::http::header::HeaderValue;

/// Why a request carries no usable key. The texts never say whether a key exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BearerError {
    Missing,
    Malformed,
    /// Well formed, but not a live key (unknown, revoked, or not a key's shape).
    Invalid,
}

impl BearerError {
    pub fn detail(self) -> &'static str {
        match self {
            Self::Missing => {
                "this endpoint needs an API key: send `Authorization: Bearer <key>` (see `shard-admin keys create`)"
            }
            Self::Malformed => "the Authorization header must be `Bearer <key>`",
            Self::Invalid => "the API key is not valid",
        }
    }
}

/// The token of `Bearer <token>` (scheme in any case, RFC 9110), refusing anything
/// else: no header, another scheme, no token, spaces inside it, bytes outside
/// visible ASCII.
pub fn token(value: Option<&HeaderValue>) -> Result<&str, BearerError> {
    let value = value.ok_or(BearerError::Missing)?;
    let text = value.to_str().map_err(|_| BearerError::Malformed)?;
    let (scheme, token) = text.split_once(' ').ok_or(BearerError::Malformed)?;
    let token = token.trim_matches(' ');
    if !scheme.eq_ignore_ascii_case("bearer")
        || token.is_empty()
        || !token.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(BearerError::Malformed);
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &[u8]) -> Result<String, BearerError> {
        let value = HeaderValue::from_bytes(raw).unwrap();
        token(Some(&value)).map(str::to_owned)
    }

    #[test]
    fn only_bearer_with_one_visible_ascii_token_is_read() {
        assert_eq!(parse(b"Bearer sg_abc").unwrap(), "sg_abc");
        assert_eq!(parse(b"bearer  sg_abc ").unwrap(), "sg_abc");
        assert_eq!(token(None), Err(BearerError::Missing));
        for bad in [
            &b""[..],
            b"Bearer",
            b"Bearer ",
            b"Basic dXNlcjpwYXNz",
            b"sg_abc",
            b"Bearer sg_a bc",
            b"Bearer sg_\xc3\xa9",
            b"Bearer\tsg_abc",
        ] {
            assert_eq!(parse(bad), Err(BearerError::Malformed), "{bad:?}");
        }
    }
}
