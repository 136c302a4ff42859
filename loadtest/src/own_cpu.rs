//! How busy the load tester itself was, so a reader can tell a gateway's limit from the
//! load tester's: its own CPU time (user + system, every thread, from `/proc/self/stat`)
//! over goose's measured span, per request and as a share of the machine's cores.
//!
//! A thread of its own samples `/proc/self/stat` every [`EVERY`] while goose runs (a
//! sample costs a few microseconds; a thread, so a saturated runtime cannot delay it).
//! After the run, [`Samples::over`] interpolates the CPU time at the two instants goose
//! measured between (all users started → users stopping, the span its per-second rates
//! divide by) and reports the difference. Off Linux, or when `/proc` cannot be read,
//! there are no samples and the summary says so.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Time between two samples.
pub const EVERY: Duration = Duration::from_millis(100);

/// One reading: wall-clock time (milliseconds since the Unix epoch, as goose's history
/// timestamps) and the process's CPU time so far, in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub at_ms: i64,
    pub cpu_secs: f64,
}

/// Samples `/proc/self/stat` on a thread of its own until dropped or [`Sampler::finish`]ed.
#[derive(Debug)]
pub struct Sampler {
    samples: Arc<Mutex<Vec<Sample>>>,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Sampler {
    /// Starts sampling now.
    pub fn start() -> Self {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let (stop, stopped) = mpsc::channel::<()>();
        let shared = Arc::clone(&samples);
        let thread = std::thread::Builder::new()
            .name("own-cpu".into())
            .spawn(move || {
                let record = || {
                    if let (Some(sample), Ok(mut samples)) = (read_now(), shared.lock()) {
                        samples.push(sample);
                    }
                };
                record();
                // Returns at once when the sender is dropped: that is the stop signal.
                while stopped.recv_timeout(EVERY) == Err(mpsc::RecvTimeoutError::Timeout) {
                    record();
                }
                record();
            })
            .ok();
        Self {
            samples,
            stop: Some(stop),
            thread,
        }
    }

    /// Stops sampling (after one last sample) and returns what was read.
    pub fn finish(mut self) -> Samples {
        self.stop_thread();
        let samples = self.samples.lock().map(|s| s.clone()).unwrap_or_default();
        Samples(samples)
    }

    fn stop_thread(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop_thread();
    }
}

/// The samples of one run, oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Samples(pub Vec<Sample>);

/// The load tester's CPU over a span.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Busy {
    /// CPU seconds the load tester used in the span (user + system, every thread).
    pub cpu_secs: f64,
    /// The span, in seconds of wall-clock time.
    pub wall_secs: f64,
    /// Cores the machine has (what the share is of).
    pub cores: usize,
}

impl Busy {
    /// Cores kept busy on average: 1.0 is one core all the time.
    pub fn cores_busy(&self) -> f64 {
        self.cpu_secs / self.wall_secs
    }

    /// Microseconds of the load tester's CPU per request.
    pub fn us_per_request(&self, requests: u64) -> Option<f64> {
        (requests > 0).then(|| self.cpu_secs * 1e6 / requests as f64)
    }
}

impl Samples {
    /// The CPU used from `from_ms` to `to_ms` (milliseconds since the Unix epoch),
    /// interpolated between the nearest samples; `None` when the samples do not cover
    /// the span (no `/proc`, or a span outside the run).
    pub fn over(&self, from_ms: i64, to_ms: i64) -> Option<Busy> {
        if to_ms <= from_ms {
            return None;
        }
        let cpu_secs = self.cpu_at(to_ms)? - self.cpu_at(from_ms)?;
        Some(Busy {
            cpu_secs: cpu_secs.max(0.0),
            wall_secs: (to_ms - from_ms) as f64 / 1000.0,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        })
    }

    /// The CPU time at `at_ms`, on the line between the samples either side of it.
    fn cpu_at(&self, at_ms: i64) -> Option<f64> {
        let after = self.0.iter().position(|s| s.at_ms >= at_ms)?;
        let b = self.0[after];
        if b.at_ms == at_ms {
            return Some(b.cpu_secs);
        }
        let a = self.0[after.checked_sub(1)?];
        let t = (at_ms - a.at_ms) as f64 / (b.at_ms - a.at_ms) as f64;
        Some(a.cpu_secs + t * (b.cpu_secs - a.cpu_secs))
    }
}

/// The process's CPU time now, from `/proc/self/stat`.
fn read_now() -> Option<Sample> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let at_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_millis() as i64;
    Some(Sample {
        at_ms,
        cpu_secs: cpu_secs_of(&stat, clock_ticks_per_sec())?,
    })
}

/// utime + stime (fields 14 and 15, in clock ticks) of a `/proc/<pid>/stat` line, in
/// seconds. The command name (field 2) may hold spaces and parentheses, so fields are
/// counted from after its closing parenthesis.
fn cpu_secs_of(stat: &str, ticks_per_sec: f64) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // After ")": field 3 (state) is the first; utime is field 14, the 12th from here.
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / ticks_per_sec)
}

/// `sysconf(_SC_CLK_TCK)`: the unit of `/proc`'s CPU times (100 on Linux).
fn clock_ticks_per_sec() -> f64 {
    // SAFETY: sysconf reads a constant of the system and has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(points: &[(i64, f64)]) -> Samples {
        Samples(
            points
                .iter()
                .map(|&(at_ms, cpu_secs)| Sample { at_ms, cpu_secs })
                .collect(),
        )
    }

    #[test]
    fn utime_and_stime_are_read_after_the_command_name() {
        let line = "4242 (load (tester) x) R 1 4242 4242 0 -1 4194560 1000 0 0 0 \
                    250 50 0 0 20 0 3 0 12345 1000000 500 18446744073709551615";
        assert_eq!(cpu_secs_of(line, 100.0), Some(3.0));
        assert_eq!(cpu_secs_of("garbage", 100.0), None);
    }

    #[test]
    fn our_own_stat_reads() {
        let now = read_now().expect("/proc/self/stat");
        assert!(now.cpu_secs >= 0.0 && now.at_ms > 0);
    }

    #[test]
    fn a_span_is_interpolated_between_samples() {
        let s = samples(&[(1_000, 0.0), (2_000, 1.0), (3_000, 1.5)]);
        let busy = s.over(1_500, 3_000).unwrap();
        assert!((busy.cpu_secs - 1.0).abs() < 1e-9, "{busy:?}");
        assert!((busy.wall_secs - 1.5).abs() < 1e-9);
        assert!((busy.cores_busy() - 1.0 / 1.5).abs() < 1e-9);
        assert_eq!(busy.us_per_request(4), Some(250_000.0));
        assert_eq!(busy.us_per_request(0), None);
    }

    #[test]
    fn a_span_outside_the_samples_is_unknown() {
        let s = samples(&[(1_000, 0.0), (2_000, 1.0)]);
        assert_eq!(s.over(500, 1_500), None);
        assert_eq!(s.over(1_500, 2_500), None);
        assert_eq!(s.over(2_000, 1_000), None);
        assert_eq!(Samples::default().over(0, 1), None);
    }

    #[test]
    fn the_sampler_samples_until_finished() {
        let sampler = Sampler::start();
        std::thread::sleep(EVERY * 2 + EVERY / 2);
        let Samples(s) = sampler.finish();
        assert!(s.len() >= 2, "{s:?}");
        assert!(s.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
    }
}
