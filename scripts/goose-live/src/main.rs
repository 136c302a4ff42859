//! Goose's ceiling: every user sends `GET /api/health/live` as fast as it can.
//!
//! The same defaults as the `loadtest` binary (telnet controller off); every goose
//! option works (`-H`, `-u`, `-r`, `-t`, `--report-file`, ...).

use goose::prelude::*;

async fn live(user: &mut GooseUser) -> TransactionResult {
    user.get_named("/api/health/live", "live").await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), GooseError> {
    GooseAttack::initialize()?
        .set_default(GooseDefault::NoTelnet, true)?
        .register_scenario(scenario!("live").register_transaction(transaction!(live)))
        .execute()
        .await?;
    Ok(())
}
