//! Test-only fault points of the mover (cargo feature `faults`; a release build has
//! none): the failure tests kill the mover with SIGKILL at a chosen step.

/// Test-only fault point: `SHARDGATE_FAULT_KILL_MOVER=step` (or `step:n`, the n-th time
/// the step is reached) kills the mover's process with SIGKILL there. A release build
/// has no such code.
pub fn fault(step: &str) {
    #[cfg(feature = "faults")]
    {
        use std::sync::atomic::{AtomicU32, Ordering};
        static SEEN: AtomicU32 = AtomicU32::new(0);
        let Ok(wanted) = std::env::var("SHARDGATE_FAULT_KILL_MOVER") else {
            return;
        };
        let (name, nth) = match wanted.split_once(':') {
            Some((name, n)) => (name.to_owned(), n.parse().unwrap_or(1)),
            None => (wanted.clone(), 1),
        };
        if name == step && SEEN.fetch_add(1, Ordering::SeqCst) + 1 == nth {
            eprintln!("fault point {step}: the mover kills itself (-9)");
            let _ = std::process::Command::new("kill")
                .args(["-9", &std::process::id().to_string()])
                .status();
            std::process::abort();
        }
    }
    #[cfg(not(feature = "faults"))]
    let _ = step;
}
