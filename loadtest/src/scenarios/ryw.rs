//! `ryw`: write a user record, then at once read it back (eventual), and count reads
//! that did not see the write as misses.
//!
//! A read sees the write when it returns the record at the written version or later (a
//! concurrent writer of a hot key may have moved it on). An older version, or a 404 for
//! a record the write just created, is a miss: replica lag made visible.
//!
//! The read-your-writes token: a gateway that has it answers the write with
//! `x-shard-lsn`, and this scenario echoes it as `x-min-lsn` on the read, so the read is
//! served by a server that has the write and misses should be zero. A gateway without
//! it sends no header; the read then goes out plain (eventual) and misses are replica
//! lag, counted but not failed. A miss despite a token is a gateway bug and fails the
//! read. The summary says which of the two happened.

use goose::prelude::{GooseUser, TransactionResult};

use super::write::UserWrite;
use crate::http::{send, Call};
use crate::workload::Workload;

/// One write-then-read pair.
pub async fn write_then_read(user: &mut GooseUser, workload: &Workload) -> TransactionResult {
    let write = UserWrite::draw(workload);
    let mut written = write.send(user, workload, "ryw: write").await?;
    if !written.request.success {
        return Ok(());
    }
    let Some(version) = written.json().and_then(|w| w["version"].as_i64()) else {
        return user.set_failure(
            "write answered without a version",
            &mut written.request,
            None,
            None,
        );
    };
    let path = format!("/api/read?table=users&id={}", write.id);
    let token = written.lsn.as_deref();
    let mut read = send(
        user,
        Call::get("ryw: read", &path)
            .shard_key(&write.key)
            .min_lsn(token)
            .traced(&workload.traces),
    )
    .await?;
    let seen = match read.status {
        200 => match read.json().and_then(|r| r["record"]["version"].as_i64()) {
            Some(seen) => seen,
            None => {
                return user.set_failure(
                    "200 without record.version",
                    &mut read.request,
                    None,
                    None,
                )
            }
        },
        // Not there yet: the replica has not replayed the insert.
        404 => {
            user.set_success(&mut read.request)?;
            i64::MIN
        }
        // Any other answer is a failed request, already counted by goose.
        _ => return Ok(()),
    };
    let saw_write = seen >= version;
    workload.ryw.record(saw_write, token.is_some());
    if !saw_write && token.is_some() {
        return user.set_failure(
            "read older than its write despite x-min-lsn",
            &mut read.request,
            None,
            None,
        );
    }
    Ok(())
}
