//! `write`: `POST /api/write` upserting key `n`'s user record with a fresh fake profile.
//!
//! Every write after the first replaces the record and bumps its version, so the table
//! stays the size of the key space however long the run.

use goose::prelude::{GooseUser, TransactionResult};
use serde_json::{json, Value};

use crate::http::{send, Call, Reply};
use crate::keys::{shard_key, user_id};
use crate::records;
use crate::workload::Workload;

/// A user-record write: its key index, shard key, id and request body.
#[derive(Debug, Clone)]
pub struct UserWrite {
    pub n: u64,
    pub key: String,
    pub id: String,
    pub body: Value,
}

impl UserWrite {
    /// A write to a key drawn from the workload's key space.
    pub fn draw(workload: &Workload) -> Self {
        let mut rng = rand::rng();
        let n = workload.keys.sample(&mut rng);
        let id = user_id(n);
        let body = json!({"table": "users", "id": id, "data": records::user(&mut rng, n)});
        Self {
            n,
            key: shard_key(n),
            id,
            body,
        }
    }

    /// Sends it under `name`.
    pub async fn send(
        &self,
        user: &mut GooseUser,
        workload: &Workload,
        name: &str,
    ) -> Result<Reply, Box<goose::goose::TransactionError>> {
        let call = Call::post(name, "/api/write", &self.body).shard_key(&self.key);
        send(user, call.traced(&workload.traces)).await
    }
}

/// One upsert; goose counts any non-2xx as a failure.
pub async fn write(user: &mut GooseUser, workload: &Workload) -> TransactionResult {
    UserWrite::draw(workload)
        .send(user, workload, "write")
        .await?;
    Ok(())
}
