//! Secrets out of text shown to people (an error, a log line, the audit line of an
//! admin command): a password in a URL or a connection string, an API key's secret.
//! Pure text work. Both binaries print every error through a [`Redactor`] that knows
//! the configured secrets ([`crate::config::ClusterSettings::redactor`]).

/// What stands for a hidden secret.
pub const HIDDEN: &str = "***";
/// Shorter known secrets are not hidden by their text alone (they would hide words).
const MIN_KNOWN: usize = 4;

/// `text` with its secrets hidden: the password of a URL's (or a `user:password@host`)
/// user part, the value of a `password=` pair, and an API key's secret (`sg_` and 16 or
/// more hex digits: a key cut short still hides).
pub fn redact(text: &str) -> String {
    hide_patterns(text, &mut Vec::new())
}

/// Hides secrets in several texts at once: a secret found in one (a password typed
/// into an address) is hidden in all the others too (an error quoting it in pieces),
/// as are the secrets it was told (the configured passwords).
#[derive(Debug, Default)]
pub struct Redactor {
    known: Vec<String>,
}

impl Redactor {
    /// A redactor that hides these secrets wherever they show.
    pub fn knowing(secrets: impl IntoIterator<Item = String>) -> Self {
        let mut redactor = Self::default();
        redactor.known.extend(secrets);
        redactor
    }

    /// Remembers the secrets `text` holds, to hide them from every text.
    pub fn learn(&mut self, text: &str) {
        hide_patterns(text, &mut self.known);
    }

    /// `text` without the secrets of its own nor those known.
    pub fn hide(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for secret in self.known.iter().filter(|s| s.len() >= MIN_KNOWN) {
            text = text.replace(secret.as_str(), HIDDEN);
        }
        hide_patterns(&text, &mut Vec::new())
    }
}

/// The password of a URL in the configuration (`redis://:secret@host`), if any.
pub fn url_password(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let userinfo = rest.split(['/', '?']).next()?.rsplit_once('@')?.0;
    Some(userinfo.split_once(':')?.1.to_owned())
}

/// `text` with the patterns below hidden; what they hid is pushed on `found`.
fn hide_patterns(text: &str, found: &mut Vec<String>) -> String {
    hide_keys(
        &hide_password_pairs(&hide_userinfo(text, found), found),
        found,
    )
}

/// `scheme://user:secret@host` and `user:secret@host` -> `...user:***@host`. The
/// secret runs to the token's last `@` (a URL that does not parse may hold a password
/// with `@` or `/` in it), so a token's tail after its first `@` is never shown early.
fn hide_userinfo(text: &str, found: &mut Vec<String>) -> String {
    let delimiter = |c: char| c.is_whitespace() || "\"'`()<>{},;".contains(c);
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(first_at) = rest.find('@') {
        let before = &rest[..first_at];
        let start = before.rfind(delimiter).map_or(0, |i| i + 1);
        let end = rest[first_at..]
            .find(delimiter)
            .map_or(rest.len(), |i| first_at + i);
        let token = &rest[start..end];
        let at = start + token.rfind('@').unwrap_or(first_at - start);
        let user = token[..at - start].find("://").map_or(0, |i| i + 3);
        match rest[start + user..at].find(':') {
            Some(colon) => {
                let secret = start + user + colon + 1;
                found.push(rest[secret..at].to_owned());
                out += &rest[..secret];
                out += HIDDEN;
            }
            None => out += &rest[..at],
        }
        out.push('@');
        rest = &rest[at + 1..];
    }
    out + rest
}

/// `password=secret` (any case, in a connection string or a query) -> `password=***`.
fn hide_password_pairs(text: &str, found: &mut Vec<String>) -> String {
    const KEY: &str = "password=";
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut from = 0;
    while let Some(at) = lower[from..].find(KEY) {
        let value = from + at + KEY.len();
        let end = text[value..]
            .find(|c: char| c.is_whitespace() || "&\"';,".contains(c))
            .map_or(text.len(), |i| value + i);
        found.push(text[value..end].to_owned());
        out += &text[from..value];
        out += HIDDEN;
        from = end;
    }
    out + &text[from..]
}

/// How every API key begins (`control_plane::keys` issues them).
pub const API_KEY_PREFIX: &str = "sg_";

/// `sg_` and 16 or more lowercase hex digits -> `sg_***`.
fn hide_keys(text: &str, found: &mut Vec<String>) -> String {
    let prefix = API_KEY_PREFIX;
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(prefix) {
        let after = &rest[at + prefix.len()..];
        let hex = after
            .find(|c: char| !matches!(c, '0'..='9' | 'a'..='f'))
            .unwrap_or(after.len());
        out += &rest[..at + prefix.len()];
        if hex >= 16 {
            found.push(after[..hex].to_owned());
            out += HIDDEN;
        } else {
            out += &after[..hex];
        }
        rest = &after[hex..];
    }
    out + rest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_urls_and_pairs_are_hidden() {
        assert_eq!(
            redact("cannot connect to postgres://shardgate:s3cret@127.0.0.1:25432/db?x=1"),
            "cannot connect to postgres://shardgate:***@127.0.0.1:25432/db?x=1"
        );
        assert_eq!(
            redact("cache redis://:p4ss@127.0.0.1:26379 down"),
            "cache redis://:***@127.0.0.1:26379 down"
        );
        assert_eq!(
            redact("\"admin:hunter22@10.0.0.5:5432\" is not host:port"),
            "\"admin:***@10.0.0.5:5432\" is not host:port"
        );
        assert_eq!(
            redact("host=h user=u PASSWORD=abc&x dbname=d"),
            "host=h user=u PASSWORD=***&x dbname=d"
        );
        // A plain address or an e-mail-like name keeps its text.
        assert_eq!(
            redact("shard-1 (127.0.0.1:25433) failed"),
            "shard-1 (127.0.0.1:25433) failed"
        );
        assert_eq!(redact("ops@db1 ran it"), "ops@db1 ran it");
    }

    #[test]
    fn a_url_that_does_not_parse_hides_all_of_its_password() {
        assert_eq!(
            redact("cache.url redis://:p@ss/w0rd@127.0.0.1:x: did not parse"),
            "cache.url redis://:***@127.0.0.1:x: did not parse"
        );
        assert_eq!(
            redact("\"u:a@b@h:1\" and ops@db1"),
            "\"u:***@h:1\" and ops@db1"
        );
        assert_eq!(redact("a:b@http://x"), "a:***@http://x");
    }

    #[test]
    fn api_key_secrets_are_hidden_even_cut_short() {
        let key = format!("sg_{}", "ab12".repeat(16));
        assert_eq!(redact(&format!("revoke {key} now")), "revoke sg_*** now");
        assert_eq!(
            redact(&format!("\"{}\" is not a key name", &key[..32])),
            "\"sg_***\" is not a key name"
        );
        assert_eq!(
            redact("key sg_batch and sg_12ab"),
            "key sg_batch and sg_12ab"
        );
    }

    #[test]
    fn a_secret_found_in_one_text_is_hidden_in_the_others() {
        let mut redactor = Redactor::knowing(["c0nfigured".to_owned(), "ab".to_owned()]);
        redactor.learn("primary admin:hunter2-not-real@127.0.0.1:1");
        assert_eq!(
            redactor.hide("invalid integer value \"hunter2-not-real@127.0.0.1:1\" for port"),
            "invalid integer value \"***@127.0.0.1:1\" for port"
        );
        assert_eq!(
            redactor.hide("password c0nfigured refused; about ab"),
            "password *** refused; about ab",
            "a known secret is hidden, a short one is not"
        );
        assert_eq!(redactor.hide("postgres://u:other@h"), "postgres://u:***@h");
    }

    #[test]
    fn the_configured_passwords_are_found() {
        assert_eq!(
            url_password("redis://:wdK9@127.0.0.1:26379").as_deref(),
            Some("wdK9")
        );
        assert_eq!(url_password("redis://u:p@h:1/0?x=@").as_deref(), Some("p"));
        assert_eq!(url_password("redis://127.0.0.1:6379"), None);
    }
}
