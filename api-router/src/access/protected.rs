//! Protected mode at start-up, as Redis does it: a gateway listening beyond loopback
//! with no API key would serve anyone who can reach its port, so it refuses to start
//! unless told explicitly that this is wanted.

use std::net::SocketAddr;

use control_plane::keys::KeyTable;
use shard_manager::config::MetadataSettings;

/// Why the gateway must not start, if it must not. `keys` is `None` when the metadata
/// database did not answer: the gateway then starts, serving loopback clients only
/// until it has read the keys, so no remote client is served unchecked either way.
pub fn refusal(
    listen: SocketAddr,
    keys: Option<&KeyTable>,
    protected_mode: bool,
    metadata: &MetadataSettings,
) -> Option<String> {
    if !protected_mode || listen.ip().to_canonical().is_loopback() || !keys?.is_empty() {
        return None;
    }
    Some(format!(
        "refusing to start (protected mode): {listen} is not a loopback address and the \
         metadata database ({}/{}) holds no API key, so anyone who can reach this port \
         could read and write every record. Create a key first: `shard-admin keys \
         create --name NAME --scopes read,write`; or listen on 127.0.0.1; or opt out \
         explicitly with `[auth] protected_mode = false` \
         (SHARDGATE__AUTH__PROTECTED_MODE=false)",
        metadata.address, metadata.dbname
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use control_plane::keys::{ApiKey, KeyHash, Scopes};
    use std::sync::Arc;

    #[test]
    fn only_a_non_loopback_listener_without_keys_is_refused() {
        let meta = MetadataSettings::default();
        let none = KeyTable::new();
        let mut some = KeyTable::new();
        some.insert(
            KeyHash::of("k"),
            Arc::new(ApiKey {
                name: "k".into(),
                scopes: Scopes::parse("read").unwrap(),
                tables: None,
                limits: Default::default(),
            }),
        );
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let why = refusal(any, Some(&none), true, &meta).expect("refused");
        assert!(why.contains("shard-admin keys create"), "{why}");
        assert!(why.contains("protected_mode = false"), "{why}");
        assert!(
            refusal(any, Some(&some), true, &meta).is_none(),
            "keys exist"
        );
        assert!(
            refusal(any, Some(&none), false, &meta).is_none(),
            "opted out"
        );
        assert!(
            refusal(any, None, true, &meta).is_none(),
            "unknown: loopback only until read"
        );
        for local in ["127.0.0.1:0", "[::1]:80", "[::ffff:127.0.0.1]:80"] {
            let local: SocketAddr = local.parse().unwrap();
            assert!(
                refusal(local, Some(&none), true, &meta).is_none(),
                "{local}"
            );
        }
    }
}
