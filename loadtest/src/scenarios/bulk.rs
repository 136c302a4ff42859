//! `bulk-write`: `POST /api/bulk-write` with `--batch` orders spread over many keys.
//!
//! Each record is one of the key space's orders (`ord_{n}_{j}`), so the table keeps a
//! fixed size and `list` has something to read. A batch names each order once and in
//! one global order: two concurrent batches then lock shared rows in the same order and
//! never deadlock each other, which hot keys would otherwise make likely.
//!
//! The gateway answers 207 when some records failed; goose would count that 2xx as a
//! success, so the reply's `failed_count` is checked too.

use std::collections::BTreeSet;

use goose::prelude::{GooseUser, TransactionResult};
use rand::Rng;
use serde_json::{json, Value};

use crate::http::{send, Call};
use crate::keys::{order_id, shard_key, KeySpace, ORDERS_PER_KEY};
use crate::records;
use crate::workload::Workload;

/// One bulk request.
pub async fn bulk_write(user: &mut GooseUser, workload: &Workload) -> TransactionResult {
    let body = {
        let mut rng = rand::rng();
        let orders = pick_orders(&mut rng, &workload.keys, workload.batch);
        orders_body(&mut rng, &orders)
    };
    let call = Call::post("bulk-write", "/api/bulk-write", &body);
    let mut reply = send(user, call.traced(&workload.traces)).await?;
    if !reply.request.success {
        return Ok(());
    }
    let Some(answer) = reply.json() else {
        return user.set_failure("2xx without a JSON body", &mut reply.request, None, None);
    };
    match answer["failed_count"].as_u64() {
        Some(0) => Ok(()),
        Some(_) => {
            let tag = failure_tag(&answer);
            user.set_failure(&tag, &mut reply.request, None, None)
        }
        None => user.set_failure("2xx without a failed_count", &mut reply.request, None, None),
    }
}

/// "records not written on shard 2", stable across requests so goose's error table
/// groups them (the count of records varies with each batch and is left out).
fn failure_tag(answer: &Value) -> String {
    let shards: Vec<String> = answer["shards"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| !s["error"].is_null())
        .map(|s| s["shard"].to_string())
        .collect();
    if shards.is_empty() {
        "records refused (see the reply's `failed`)".to_owned()
    } else {
        format!("records not written on shard {}", shards.join(", "))
    }
}

/// Up to `batch` distinct `(key, order)` pairs, in ascending order. Fewer when the key
/// space holds fewer orders, or when skew makes new pairs hard to find.
pub fn pick_orders<R: Rng + ?Sized>(rng: &mut R, keys: &KeySpace, batch: usize) -> Vec<(u64, u64)> {
    let available = keys.size().saturating_mul(ORDERS_PER_KEY);
    let want = (batch as u64).min(available) as usize;
    let mut picked = BTreeSet::new();
    // Bounded: a hot key space cannot keep the loop spinning.
    for _ in 0..want.saturating_mul(8) {
        if picked.len() == want {
            break;
        }
        picked.insert((keys.sample(rng), rng.random_range(0..ORDERS_PER_KEY)));
    }
    picked.into_iter().collect()
}

/// The request body for `orders`, each with fresh fake data.
pub fn orders_body<R: Rng + ?Sized>(rng: &mut R, orders: &[(u64, u64)]) -> Value {
    let records: Vec<Value> = orders
        .iter()
        .map(|&(n, j)| {
            json!({
                "shard_key": shard_key(n),
                "id": order_id(n, j),
                "data": records::order(rng, n, j),
            })
        })
        .collect();
    json!({"table": "orders", "records": records})
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn a_batch_names_each_order_once_in_ascending_order() {
        let keys = KeySpace::new(100_000, 1.2);
        let orders = pick_orders(&mut StdRng::seed_from_u64(1), &keys, 500);
        assert!(orders.len() > 400, "only {} distinct orders", orders.len());
        assert!(orders.windows(2).all(|w| w[0] < w[1]));
        assert!(orders
            .iter()
            .all(|&(n, j)| n < 100_000 && j < ORDERS_PER_KEY));
    }

    #[test]
    fn a_small_key_space_caps_the_batch() {
        let keys = KeySpace::new(2, 0.0);
        let orders = pick_orders(&mut StdRng::seed_from_u64(2), &keys, 1000);
        assert_eq!(orders.len() as u64, 2 * ORDERS_PER_KEY);
    }

    #[test]
    fn a_partial_failure_names_the_failed_shards() {
        let answer = json!({"failed_count": 40, "shards": [
            {"shard": 0, "written": 30, "error": null},
            {"shard": 2, "written": 0, "error": "shard-2 is unavailable"}]});
        assert_eq!(failure_tag(&answer), "records not written on shard 2");
        let answer = json!({"failed_count": 1, "shards": [{"shard": 1, "error": null}]});
        assert!(failure_tag(&answer).starts_with("records refused"));
    }

    #[test]
    fn the_body_is_a_bulk_request_for_orders() {
        let body = orders_body(&mut StdRng::seed_from_u64(3), &[(4, 1)]);
        assert_eq!(body["table"], "orders");
        assert_eq!(body["records"][0]["shard_key"], "user_4");
        assert_eq!(body["records"][0]["id"], "ord_4_1");
        assert!(body["records"][0]["data"]["total_cents"].is_u64());
    }
}
