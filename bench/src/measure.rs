//! What the benchmark reads of processes and the machine, and the statistics it reports.

use std::time::Duration;

/// Raises this process's open-file limit to its hard limit; servers it starts inherit it.
pub fn raise_open_files_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

/// The machine, for the report: CPU model and count, memory, kernel.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .and_then(|rest| rest.split(':').nth(1))
        .map_or("unknown CPU", str::trim)
        .to_owned();
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let memory = meminfo_total_gib();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    format!(
        "{cores} cores of {model}, {memory} GiB of memory, Linux {}, load average {} at start",
        kernel.trim(),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    )
}

fn meminfo_total_gib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kib| kib >> 20)
}

/// CPU time a process has used (all its threads), or with its descendants.
pub fn cpu_time(pid: u32, with_descendants: bool) -> Duration {
    let ticks_per_second = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    let own = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // Fields after the command name, which is in parentheses and may hold spaces.
            let fields: Vec<u64> = stat
                .rsplit_once(") ")?
                .1
                .split_whitespace()
                .map(|field| field.parse().unwrap_or(0))
                .collect();
            Some(fields.get(11)? + fields.get(12)?)
        })
        .unwrap_or(0);
    let mut total = Duration::from_secs_f64(own as f64 / ticks_per_second);
    if with_descendants {
        for child in children(pid) {
            total += cpu_time(child, true);
        }
    }
    total
}

/// Resident memory of a process, in bytes, or with its descendants.
pub fn resident_memory(pid: u32, with_descendants: bool) -> u64 {
    let own = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kib| kib << 10);
    let descendants: u64 = if with_descendants {
        children(pid)
            .into_iter()
            .map(|child| resident_memory(child, true))
            .sum()
    } else {
        0
    };
    own + descendants
}

/// The child processes of `pid`.
pub fn children(pid: u32) -> Vec<u32> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten();
    tasks
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|children| {
            children
                .split_whitespace()
                .filter_map(|child| child.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// Percentiles of a sample, in its unit.
#[derive(Debug, Clone, Copy, Default)]
pub struct Percentiles {
    /// The median.
    pub p50: u32,
    /// The 99th percentile.
    pub p99: u32,
    /// The largest value.
    pub max: u32,
}

impl Percentiles {
    /// The percentiles of `sample` (sorted in place); zero when it is empty.
    pub fn of(sample: &mut [u32]) -> Self {
        if sample.is_empty() {
            return Self::default();
        }
        sample.sort_unstable();
        let at = |fraction: f64| sample[((sample.len() - 1) as f64 * fraction).round() as usize];
        Self {
            p50: at(0.5),
            p99: at(0.99),
            max: at(1.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_ranks() {
        let mut sample: Vec<u32> = (1..=100).rev().collect();
        let percentiles = Percentiles::of(&mut sample);
        assert_eq!(
            (percentiles.p50, percentiles.p99, percentiles.max),
            (51, 99, 100)
        );
        assert_eq!(Percentiles::of(&mut []).max, 0);
    }

    #[test]
    fn this_process_uses_memory_and_time() {
        let pid = std::process::id();
        assert!(resident_memory(pid, false) > 1 << 20);
        let spin = std::time::Instant::now();
        while spin.elapsed() < Duration::from_millis(300) {}
        assert!(cpu_time(pid, true) > Duration::ZERO);
    }
}
