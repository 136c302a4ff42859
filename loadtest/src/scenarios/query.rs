//! `query`: `POST /api/query` over every shard: users of one tier above a drawn
//! lifetime value, highest first, 20 at a time, only three fields. Each shard pages its
//! own matches in order and the gateway merges them, so this is the fan-out a
//! dashboard's "top customers" makes.
//!
//! The tier and the floor are drawn per request, so pages differ and no single plan or
//! cache line serves them all; the prefill's `users` are what it finds.

use goose::prelude::{GooseUser, TransactionResult};
use rand::seq::IndexedRandom;
use rand::Rng;
use serde_json::{json, Value};

use crate::http::{send, Call};
use crate::records::TIERS;
use crate::workload::Workload;

/// The highest `lifetime_value_cents` a profile holds (see [`crate::records::user`]).
const MAX_VALUE_CENTS: u64 = 5_000_000;

/// One query's body: a tier, a floor, the order and the fields.
pub fn body<R: Rng + ?Sized>(rng: &mut R) -> Value {
    let tier = TIERS.choose(rng).copied().unwrap_or("pro");
    let floor = rng.random_range(0..MAX_VALUE_CENTS);
    json!({
        "table": "users",
        "filter": [
            {"field": "tier", "op": "eq", "value": tier},
            {"field": "lifetime_value_cents", "op": "gte", "value": floor}
        ],
        "sort": [{"field": "lifetime_value_cents", "order": "desc"}],
        "fields": ["name", "tier", "lifetime_value_cents"],
        "limit": 20
    })
}

/// One query; goose counts any non-2xx as a failure.
pub async fn query(user: &mut GooseUser, workload: &Workload) -> TransactionResult {
    let body = body(&mut rand::rng());
    let call = Call::post("query", "/api/query", &body);
    send(user, call.traced(&workload.traces)).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_names_a_tier_a_floor_in_range_and_the_order() {
        let mut rng = rand::rng();
        for _ in 0..200 {
            let b = body(&mut rng);
            let tier = b["filter"][0]["value"].as_str().unwrap();
            assert!(TIERS.contains(&tier), "{b}");
            let floor = b["filter"][1]["value"].as_u64().unwrap();
            assert!(floor < MAX_VALUE_CENTS, "{b}");
            assert_eq!(b["sort"][0]["order"], "desc");
            assert_eq!(b["limit"], 20);
        }
    }
}
