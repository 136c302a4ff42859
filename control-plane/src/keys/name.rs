//! A key's name: how people and the audit log call it (the secret is never shown again).

use std::fmt;

/// 1 to 64 characters from `A-Z a-z 0-9 . _ -`: safe in a shell, a log line and a URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyName(String);

impl KeyName {
    pub const MAX_LEN: usize = 64;

    pub fn parse(text: &str) -> Result<Self, String> {
        let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if text.is_empty() || text.len() > Self::MAX_LEN || !text.chars().all(ok) {
            let shown: String = text.chars().take(32).collect();
            return Err(format!(
                "{shown:?} is not a key name: use 1 to {} characters from A-Z a-z 0-9 . _ -",
                Self::MAX_LEN
            ));
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_short_and_plain() {
        assert_eq!(
            KeyName::parse("ci-deploy_2.a").unwrap().as_str(),
            "ci-deploy_2.a"
        );
        let long = "a".repeat(65);
        for bad in ["", "has space", "semi;colon", "ключ", long.as_str()] {
            let err = KeyName::parse(bad).unwrap_err();
            assert!(err.contains("is not a key name"), "{bad:?}: {err}");
        }
        assert!(KeyName::parse(&"a".repeat(64)).is_ok());
    }
}
