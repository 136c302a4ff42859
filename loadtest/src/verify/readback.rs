//! The read-back: every record of the ledger read from its primary
//! (`consistency=strong`), after the load has stopped.
//!
//! A read without a usable answer (5xx, no response: a failover still settling) is
//! tried again every 200 ms until `wait` has passed since the read-back started; past
//! that, each record gets one try, and a record still unanswered is unreadable. A
//! client error (a table the gateway does not know) is unreadable at once.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::ledger::{Ledger, Seen};
use super::reply;
use super::verdict::Final;
use crate::gateway::Gateway;
use crate::http::Call;

/// Pause between tries of one record.
const AGAIN_AFTER: Duration = Duration::from_millis(200);

/// Reads every record of `ledger` through `gateway`.
pub async fn read_back(
    gateway: &mut Gateway,
    ledger: &Ledger,
    wait: Duration,
) -> BTreeMap<String, Final> {
    let deadline = Instant::now() + wait;
    let mut finals = BTreeMap::new();
    for (key, log) in &ledger.records {
        let path = format!(
            "/api/read?table={}&id={}&consistency=strong",
            log.table, log.id
        );
        let last = loop {
            let why = match gateway
                .call(Call::get("verify: read back", &path).shard_key(key))
                .await
            {
                Ok(answer) => match reply::seen(&answer, &ledger.run) {
                    // A client error will not go away by asking again.
                    Seen::Failed { why } if (400..500).contains(&answer.status) => {
                        break Final::Unreadable { why }
                    }
                    Seen::Failed { why } => why,
                    seen => break Final::Read(seen),
                },
                Err(error) => format!("no answer: {error:#}"),
            };
            if Instant::now() >= deadline {
                break Final::Unreadable { why };
            }
            tokio::time::sleep(AGAIN_AFTER).await;
        };
        finals.insert(key.clone(), last);
    }
    finals
}
