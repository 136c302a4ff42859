//! `mixed`: the ancestor's workload, 70% writes and 30% point reads (eventual).
//!
//! One scenario with two weighted transactions, so every user runs both in that
//! proportion: each iteration is seven `write`s and three `read`s, in goose's order.

use std::sync::Arc;

use goose::prelude::{GooseError, Scenario};

use super::{read, transaction_with, write};
use crate::workload::Workload;

/// Writes per iteration.
pub const WRITE_WEIGHT: usize = 7;
/// Reads per iteration.
pub const READ_WEIGHT: usize = 3;

/// Adds the two transactions to `scenario`.
pub fn register(scenario: Scenario, workload: &Arc<Workload>) -> Result<Scenario, GooseError> {
    Ok(scenario
        .register_transaction(
            transaction_with!(workload, "mixed: write", write::write).set_weight(WRITE_WEIGHT)?,
        )
        .register_transaction(
            transaction_with!(workload, "mixed: read", read::read).set_weight(READ_WEIGHT)?,
        ))
}
