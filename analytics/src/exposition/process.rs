//! The gateway process's own figures, as Prometheus's client libraries name them (the
//! "process" collector every official client exports): read from `/proc/self` at
//! scrape time and passed with the gateway's other figures. Not on a system without
//! `/proc` (nothing is exposed then).
//!
//! | family                             | type    | from                                   |
//! |------------------------------------|---------|----------------------------------------|
//! | `process_cpu_seconds_total`        | counter | `stat`: utime + stime, in clock ticks  |
//! | `process_resident_memory_bytes`    | gauge   | `stat`: rss, in pages                  |
//! | `process_virtual_memory_bytes`     | gauge   | `stat`: vsize                          |
//! | `process_start_time_seconds`       | gauge   | `stat`: starttime after boot (`/proc/stat` btime) |
//! | `process_open_fds`                 | gauge   | the entries of `fd/`                   |
//! | `process_max_fds`                  | gauge   | `limits`: Max open files (soft)        |

use std::path::Path;

use prometheus::proto::{MetricFamily, MetricType};

use crate::exposition::encoding::{counter, family, gauge};

/// What the process uses now, and since when it runs.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ProcessStats {
    /// User and system CPU time spent, in seconds.
    pub cpu_seconds: f64,
    /// Resident memory, in bytes.
    pub resident_bytes: f64,
    /// Virtual memory, in bytes.
    pub virtual_bytes: f64,
    /// When the process started, in seconds since the Unix epoch.
    pub start_time_seconds: f64,
    /// File descriptors open.
    pub open_fds: f64,
    /// The most it may open (the soft limit); none when unlimited or unknown.
    pub max_fds: Option<f64>,
}

/// The machine's units, for reading `/proc`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Units {
    /// Clock ticks a second (`sysconf(_SC_CLK_TCK)`).
    pub ticks_per_second: f64,
    /// Bytes a page (`sysconf(_SC_PAGESIZE)`).
    pub page_bytes: f64,
    /// When the machine booted, in seconds since the Unix epoch (`/proc/stat` btime).
    pub boot_time_seconds: f64,
}

impl ProcessStats {
    /// This process's figures now, from `/proc/self`; none without `/proc`.
    pub fn read() -> Option<Self> {
        Self::read_from(Path::new("/proc"), "self")
    }

    fn read_from(proc: &Path, pid: &str) -> Option<Self> {
        let units = Units {
            ticks_per_second: sysconf(libc::_SC_CLK_TCK)?,
            page_bytes: sysconf(libc::_SC_PAGESIZE)?,
            boot_time_seconds: boot_time(&std::fs::read_to_string(proc.join("stat")).ok()?)?,
        };
        let dir = proc.join(pid);
        let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
        let open_fds = std::fs::read_dir(dir.join("fd")).ok()?.count() as f64;
        let limits = std::fs::read_to_string(dir.join("limits")).unwrap_or_default();
        let mut stats = Self::from_stat(&stat, &units)?;
        stats.open_fds = open_fds;
        stats.max_fds = max_open_files(&limits);
        Some(stats)
    }

    /// The figures `/proc/PID/stat` holds, in `units` (file descriptors left at 0).
    pub fn from_stat(stat: &str, units: &Units) -> Option<Self> {
        // The command name (field 2) is in parentheses and may hold spaces or
        // parentheses itself: the fields after it start after its last ')'.
        let rest = &stat[stat.rfind(')')? + 1..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // `rest` starts at field 3 (state): field N is fields[N - 3].
        let field = |n: usize| fields.get(n - 3)?.parse::<f64>().ok();
        let (utime, stime, starttime) = (field(14)?, field(15)?, field(22)?);
        Some(Self {
            cpu_seconds: (utime + stime) / units.ticks_per_second,
            resident_bytes: field(24)? * units.page_bytes,
            virtual_bytes: field(23)?,
            start_time_seconds: units.boot_time_seconds + starttime / units.ticks_per_second,
            open_fds: 0.0,
            max_fds: None,
        })
    }
}

/// `sysconf(name)`, when the system answers it.
fn sysconf(name: libc::c_int) -> Option<f64> {
    // SAFETY: sysconf reads a system constant; it has no preconditions.
    let value = unsafe { libc::sysconf(name) };
    (value > 0).then_some(value as f64)
}

/// The `btime` line of `/proc/stat`: when the machine booted.
fn boot_time(stat: &str) -> Option<f64> {
    stat.lines()
        .find_map(|line| line.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

/// The soft limit of `Max open files` in `/proc/PID/limits`; none when unlimited.
fn max_open_files(limits: &str) -> Option<f64> {
    limits
        .lines()
        .find_map(|line| line.strip_prefix("Max open files"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The families, for a gateway's exposition ([`crate::exposition::GatewayFigures`]).
pub(crate) fn families(stats: &ProcessStats) -> Vec<MetricFamily> {
    let mut out = vec![
        family(
            "process_cpu_seconds_total",
            "Total user and system CPU time spent in seconds.",
            MetricType::COUNTER,
            vec![counter(&[], stats.cpu_seconds)],
        ),
        family(
            "process_open_fds",
            "Number of open file descriptors.",
            MetricType::GAUGE,
            vec![gauge(&[], stats.open_fds)],
        ),
    ];
    if let Some(max) = stats.max_fds {
        out.push(family(
            "process_max_fds",
            "Maximum number of open file descriptors.",
            MetricType::GAUGE,
            vec![gauge(&[], max)],
        ));
    }
    out.extend([
        family(
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            MetricType::GAUGE,
            vec![gauge(&[], stats.virtual_bytes)],
        ),
        family(
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            MetricType::GAUGE,
            vec![gauge(&[], stats.resident_bytes)],
        ),
        family(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            MetricType::GAUGE,
            vec![gauge(&[], stats.start_time_seconds)],
        ),
    ]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::encoding::encode;

    const UNITS: Units = Units {
        ticks_per_second: 100.0,
        page_bytes: 4096.0,
        boot_time_seconds: 1_764_000_000.0,
    };

    #[test]
    fn a_stat_line_gives_cpu_memory_and_start_time_in_seconds_and_bytes() {
        // A command name with a space and a ')' in it; utime 250, stime 50 ticks,
        // starttime 12345 ticks, vsize 1 GiB, rss 5000 pages.
        let stat = "4242 (api (router)) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 50 0 0 20 0 \
                    9 0 12345 1073741824 5000 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0";
        let stats = ProcessStats::from_stat(stat, &UNITS).unwrap();
        assert_eq!(stats.cpu_seconds, 3.0);
        assert_eq!(stats.virtual_bytes, 1_073_741_824.0);
        assert_eq!(stats.resident_bytes, 5000.0 * 4096.0);
        assert_eq!(stats.start_time_seconds, 1_764_000_123.45);
        assert_eq!(
            ProcessStats::from_stat("4242 (cut short) S 1", &UNITS),
            None
        );
    }

    #[test]
    fn boot_time_and_the_soft_limit_of_open_files() {
        assert_eq!(
            boot_time("cpu  1 2 3\nbtime 1764000000\nprocesses 9\n"),
            Some(1_764_000_000.0)
        );
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max processes             4096                 4096                 processes\n\
                      Max open files            20000                524288               files\n";
        assert_eq!(max_open_files(limits), Some(20000.0));
        assert_eq!(
            max_open_files(
                "Max open files            unlimited            unlimited            files\n"
            ),
            None
        );
    }

    #[test]
    fn this_process_reads_itself() {
        let stats = ProcessStats::read().expect("/proc/self on Linux");
        assert!(stats.resident_bytes > 1_000_000.0, "{stats:?}");
        assert!(stats.open_fds >= 3.0, "{stats:?}");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(
            stats.start_time_seconds <= now + 1.0 && stats.start_time_seconds > now - 86_400.0,
            "{stats:?}"
        );
    }

    #[test]
    fn the_families_are_named_as_prometheus_clients_name_them() {
        let text = encode(&families(&ProcessStats {
            cpu_seconds: 3.0,
            resident_bytes: 20_480_000.0,
            virtual_bytes: 1e9,
            start_time_seconds: 1_764_000_123.45,
            open_fds: 12.0,
            max_fds: Some(20000.0),
        }));
        for line in [
            "# TYPE process_cpu_seconds_total counter",
            "process_cpu_seconds_total 3",
            "process_resident_memory_bytes 20480000",
            "process_open_fds 12",
            "process_max_fds 20000",
            "# TYPE process_start_time_seconds gauge",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
        }
    }
}
