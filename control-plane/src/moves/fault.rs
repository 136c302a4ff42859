//! Test-only fault points of the mover (cargo feature `faults`; a release build has
//! none): the failure tests kill the mover with SIGKILL at a chosen step.

/// `SHARDGATE_FAULT_KILL_MOVER=step` (or `step:n`, the n-th time the step is reached)
/// kills the mover's process with SIGKILL there ([`shard_manager::fault`]).
pub fn fault(step: &str) {
    shard_manager::fault::MOVER.reach(step);
}
