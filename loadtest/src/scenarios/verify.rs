//! `verify`: writes that are checked. Each user owns a few records (no one else writes
//! them), upserts them in turn, one request at a time, with data naming the write
//! (`{"verify": {"run", "user", "seq"}}`), enters every write in the ledger with its
//! fate, and after each acknowledged write reads the record back with the write's
//! token (`x-min-lsn`), entering what it saw. After the run every record is read back
//! (strong) and judged: see [`crate::verify`].
//!
//! A token read older than its write also fails that request in goose's report.

use goose::prelude::{GooseUser, TransactionResult};
use serde_json::json;

use crate::http::{send, Call};
use crate::verify::ledger::{Fate, TokenRead};
use crate::verify::reply;
use crate::workload::Workload;

/// A verify user's own state, kept in goose's session data.
#[derive(Debug, Clone)]
struct Owner {
    run: String,
    user: u64,
    next_seq: u64,
}

/// One write, then (when acknowledged with a token) one token read.
pub async fn write_and_check(user: &mut GooseUser, workload: &Workload) -> TransactionResult {
    let recorder = &workload.verify;
    if user.get_session_data::<Owner>().is_none() {
        user.set_session_data(Owner {
            run: recorder.run(),
            user: recorder.next_user(),
            next_seq: 1,
        });
    }
    let (key, seq, data) = {
        let owner = user.get_session_data_unchecked_mut::<Owner>();
        // In turn: every owned record is written once the user has sent that many.
        let n = (owner.next_seq - 1) % recorder.records_per_user;
        let key = recorder.key(&owner.run, owner.user, n);
        let seq = owner.next_seq;
        owner.next_seq += 1;
        let data = json!({"verify": {"run": owner.run, "user": owner.user, "seq": seq}});
        (key, seq, data)
    };
    let body = json!({"table": recorder.table, "id": key, "data": data});
    recorder.sent(&key, seq);
    let reply = match send(
        user,
        Call::post("verify: write", "/api/write", &body)
            .shard_key(&key)
            .traced(&workload.traces),
    )
    .await
    {
        Ok(reply) => reply,
        Err(error) => {
            recorder.answered(
                &key,
                seq,
                Fate::Unknown {
                    why: format!("answer cut short: {error}"),
                },
            );
            return Err(error);
        }
    };
    let fate = reply::write_fate(&reply);
    recorder.answered(&key, seq, fate.clone());
    let (Fate::Acknowledged { version, .. }, Some(token)) = (fate, reply.lsn) else {
        return Ok(());
    };
    token_read(user, workload, &key, seq, version, token).await
}

/// Reads `key`'s record with the token of write `seq` and enters what came back.
async fn token_read(
    user: &mut GooseUser,
    workload: &Workload,
    key: &str,
    seq: u64,
    version: i64,
    token: String,
) -> TransactionResult {
    let recorder = &workload.verify;
    let path = format!("/api/read?table={}&id={key}", recorder.table);
    let mut read = send(
        user,
        Call::get("verify: token read", &path)
            .shard_key(key)
            .min_lsn(Some(&token))
            .traced(&workload.traces),
    )
    .await?;
    let entry = TokenRead {
        after_seq: seq,
        wrote_version: version,
        token,
        seen: reply::seen(&read, &recorder.run()),
    };
    let stale = entry.stale();
    recorder.token_read(key, entry);
    if stale && read.status == 200 {
        return user.set_failure(
            "token read older than its write",
            &mut read.request,
            None,
            None,
        );
    }
    Ok(())
}
