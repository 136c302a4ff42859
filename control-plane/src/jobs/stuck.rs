//! The stuck rule: a job that stopped and was neither resumed nor aborted. Active, no
//! process holds its lock, and its row unchanged for a threshold or more; a phase that
//! must not be left waiting (a move's switch) counts at once. Each kind words its own
//! warning (`moves::stuck`). Pure: judged from what the metadata database records.

use std::time::Duration;

use super::{Job, JobKind, JobPhase};

/// How long `job` has been stopped, if it is stuck: active, not running, and its row
/// unchanged for `after` or more (`at_once`: whatever the time). `later_secs`: time
/// passed since `job` was read.
pub fn stopped<K: JobKind>(
    job: &Job<K>,
    later_secs: f64,
    after: Duration,
    at_once: bool,
) -> Option<f64> {
    if !job.phase.active() || job.running {
        return None;
    }
    let secs = job.idle_secs + later_secs;
    (at_once || secs >= after.as_secs_f64()).then_some(secs)
}

/// "42 s", "6 min", "3 h", "2 d": how long, roughly.
pub fn ago(secs: f64) -> String {
    let secs = secs.max(0.0) as u64;
    match secs {
        0..120 => format!("{secs} s"),
        120..7200 => format!("{} min", secs / 60),
        7200..172_800 => format!("{} h", secs / 3600),
        _ => format!("{} d", secs / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::test_kind::{chore, Step};

    const FIVE_MIN: Duration = Duration::from_secs(300);

    #[test]
    fn a_job_stopped_past_the_threshold_is_stuck_counting_the_time_since_the_read() {
        let mut job = chore(Step::Working);
        job.idle_secs = 299.0;
        assert_eq!(stopped(&job, 0.0, FIVE_MIN, false), None);
        assert_eq!(stopped(&job, 2.0, FIVE_MIN, false), Some(301.0));
        assert_eq!(stopped(&job, 0.0, Duration::ZERO, false), Some(299.0));
    }

    #[test]
    fn a_phase_that_must_not_wait_is_stuck_at_once() {
        let mut job = chore(Step::Fenced);
        job.idle_secs = 1.0;
        assert_eq!(stopped(&job, 0.0, FIVE_MIN, true), Some(1.0));
    }

    #[test]
    fn running_and_finished_jobs_are_never_stuck() {
        let mut job = chore(Step::Working);
        job.idle_secs = 9e6;
        job.running = true;
        assert_eq!(stopped(&job, 0.0, FIVE_MIN, true), None);
        job.running = false;
        for phase in [Step::Done, Step::Aborted] {
            job.phase = phase;
            assert_eq!(stopped(&job, 0.0, FIVE_MIN, true), None, "{phase:?}");
        }
    }

    #[test]
    fn ago_rounds_to_one_unit() {
        assert_eq!(ago(42.7), "42 s");
        assert_eq!(ago(301.0), "5 min");
        assert_eq!(ago(4000.0), "66 min");
        assert_eq!(ago(3.0 * 3600.0), "3 h");
        assert_eq!(ago(3.0 * 86_400.0), "3 d");
        assert_eq!(ago(-1.0), "0 s");
    }
}
