//! Realistic record bodies from the `fake` crate: customer profiles for `users`, orders
//! with line items and totals for `orders`.
//!
//! Only `data` is built here; the record's table, shard key and id come from
//! [`crate::keys`]. Money is computed in whole cents so the total always equals the sum
//! of its lines, then also given as a decimal amount, as an API client would send it.

use fake::faker::address::en::{BuildingNumber, CityName, StateAbbr, StreetName, ZipCode};
use fake::faker::company::en::{BsAdj, BsNoun, CompanyName};
use fake::faker::internet::en::SafeEmail;
use fake::faker::name::en::Name;
use fake::faker::phone_number::en::PhoneNumber;
use fake::Fake;
use rand::seq::IndexedRandom;
use rand::Rng;
use serde_json::{json, Value};

use crate::keys::{order_id, shard_key};

pub const TIERS: [&str; 3] = ["free", "pro", "enterprise"];
const ORDER_STATUSES: [&str; 5] = ["pending", "paid", "packed", "shipped", "delivered"];

/// `data` of key `n`'s user record: a customer profile.
pub fn user<R: Rng + ?Sized>(rng: &mut R, n: u64) -> Value {
    json!({
        "user_id": shard_key(n),
        "name": Name().fake_with_rng::<String, _>(rng),
        "email": SafeEmail().fake_with_rng::<String, _>(rng),
        "phone": PhoneNumber().fake_with_rng::<String, _>(rng),
        "company": CompanyName().fake_with_rng::<String, _>(rng),
        "address": address(rng),
        "tier": pick(rng, &TIERS),
        "marketing_opt_in": rng.random_bool(0.3),
        "lifetime_value_cents": rng.random_range(0..5_000_000u64),
    })
}

/// `data` of key `n`'s `j`-th order: one to four lines, a total and where it ships.
pub fn order<R: Rng + ?Sized>(rng: &mut R, n: u64, j: u64) -> Value {
    let lines = rng.random_range(1..=4);
    let mut total_cents = 0u64;
    let items: Vec<Value> = (0..lines)
        .map(|_| {
            let quantity = rng.random_range(1..=5u64);
            let unit_cents = rng.random_range(199..=19_999u64);
            total_cents += quantity * unit_cents;
            json!({
                "sku": format!("SKU-{:06}", rng.random_range(0..1_000_000)),
                "name": format!(
                    "{} {}",
                    BsAdj().fake_with_rng::<String, _>(rng),
                    BsNoun().fake_with_rng::<String, _>(rng)
                ),
                "quantity": quantity,
                "unit_price": cents_to_amount(unit_cents),
            })
        })
        .collect();
    json!({
        "order_no": order_id(n, j),
        "customer": shard_key(n),
        "status": pick(rng, &ORDER_STATUSES),
        "currency": "USD",
        "items": items,
        "total_cents": total_cents,
        "total": cents_to_amount(total_cents),
        "ship_to": address(rng),
    })
}

fn address<R: Rng + ?Sized>(rng: &mut R) -> Value {
    json!({
        "street": format!(
            "{} {}",
            BuildingNumber().fake_with_rng::<String, _>(rng),
            StreetName().fake_with_rng::<String, _>(rng)
        ),
        "city": CityName().fake_with_rng::<String, _>(rng),
        "state": StateAbbr().fake_with_rng::<String, _>(rng),
        "zip": ZipCode().fake_with_rng::<String, _>(rng),
        "country": "US",
    })
}

fn pick<R: Rng + ?Sized>(rng: &mut R, from: &[&'static str]) -> &'static str {
    from.choose(rng).copied().unwrap_or_default()
}

/// 12345 cents as 123.45.
fn cents_to_amount(cents: u64) -> f64 {
    cents as f64 / 100.0
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn a_user_has_a_name_an_email_and_an_address() {
        let data = user(&mut StdRng::seed_from_u64(1), 42);
        assert_eq!(data["user_id"], "user_42");
        assert!(!data["name"].as_str().unwrap_or_default().is_empty());
        assert!(data["email"].as_str().unwrap_or_default().contains('@'));
        assert!(!data["address"]["city"]
            .as_str()
            .unwrap_or_default()
            .is_empty());
        assert!(
            data.get("id").is_none(),
            "`id` would compete with the record id"
        );
    }

    #[test]
    fn an_order_total_is_the_sum_of_its_lines() {
        let mut rng = StdRng::seed_from_u64(2);
        for j in 0..50 {
            let data = order(&mut rng, 3, j);
            let lines = data["items"].as_array().cloned().unwrap_or_default();
            assert!((1..=4).contains(&lines.len()));
            let sum: u64 = lines
                .iter()
                .map(|l| {
                    let quantity = l["quantity"].as_u64().unwrap_or_default();
                    let unit = (l["unit_price"].as_f64().unwrap_or_default() * 100.0).round();
                    quantity * unit as u64
                })
                .sum();
            assert_eq!(data["total_cents"].as_u64(), Some(sum));
            assert_eq!(data["order_no"], format!("ord_3_{j}"));
        }
    }

    #[test]
    fn same_seed_same_records() {
        let a = user(&mut StdRng::seed_from_u64(7), 1);
        let b = user(&mut StdRng::seed_from_u64(7), 1);
        assert_eq!(a, b);
        let c = order(&mut StdRng::seed_from_u64(7), 1, 0);
        let d = order(&mut StdRng::seed_from_u64(7), 1, 0);
        assert_eq!(c, d);
    }
}
