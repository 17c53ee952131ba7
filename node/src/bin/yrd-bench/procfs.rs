//! Validator resource use from `/proc`: resident memory (`VmRSS`) and CPU time
//! (`utime + stime`).

use std::time::Duration;

/// Clock ticks per second of `/proc/<pid>/stat` times (`getconf CLK_TCK`, else 100).
pub fn clock_ticks_per_second() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .and_then(|text| text.trim().parse::<u64>().ok())
        .filter(|&ticks| ticks > 0)
        .unwrap_or(100)
}

/// Resident memory of process `pid` in KiB, if it is running.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// User plus system CPU time of process `pid` in clock ticks, if it is running.
pub fn process_cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; fields after it start at field 3.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(14 - 3)?.parse().ok()?;
    let stime: u64 = fields.get(15 - 3)?.parse().ok()?;
    Some(utime + stime)
}

/// Total CPU ticks of the processes `pids`.
pub fn cpu_ticks(pids: &[u32]) -> u64 {
    pids.iter().filter_map(|&pid| process_cpu_ticks(pid)).sum()
}

/// Samples the resident memory of `pids` every 500 ms until `stop` fires; returns the largest
/// resident memory of any one process, in KiB.
pub async fn sample_rss(pids: Vec<u32>, mut stop: tokio::sync::oneshot::Receiver<()>) -> u64 {
    let mut ticker = tokio::time::interval(Duration::from_millis(500));
    let mut max = 0;
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = ticker.tick() => {
                for &pid in &pids {
                    max = max.max(rss_kib(pid).unwrap_or(0));
                }
            }
        }
    }
    for &pid in &pids {
        max = max.max(rss_kib(pid).unwrap_or(0));
    }
    max
}
