//! The process's own gauges, read from `/proc/self` at scrape time (Linux; elsewhere they
//! are left out), and the data folder's free space.

use std::path::Path;

/// What the process uses, as far as the platform tells.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct ProcessUsage {
    pub resident_bytes: Option<u64>,
    pub open_files: Option<u64>,
    /// User plus system CPU time.
    pub cpu_seconds: Option<f64>,
}

/// The process's memory and CPU as a door reports them about itself (Redis `INFO`), read
/// from `/proc` when asked (Linux; `None` elsewhere).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcessResources {
    pub resident_bytes: Option<u64>,
    /// The most resident memory the process has had (`VmHWM`).
    pub peak_resident_bytes: Option<u64>,
    /// The machine's memory (`MemTotal`).
    pub system_memory_bytes: Option<u64>,
    pub cpu_user_seconds: Option<f64>,
    pub cpu_system_seconds: Option<f64>,
}

/// See [`ProcessResources`].
pub fn resources() -> ProcessResources {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let times = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| cpu_times(&stat));
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    ProcessResources {
        resident_bytes: kibibytes_field(&status, "VmRSS:"),
        peak_resident_bytes: kibibytes_field(&status, "VmHWM:"),
        system_memory_bytes: kibibytes_field(&meminfo, "MemTotal:"),
        cpu_user_seconds: times.map(|(user, _)| user),
        cpu_system_seconds: times.map(|(_, system)| system),
    }
}

/// A `Name:   1234 kB` line of a `/proc` file, in bytes.
fn kibibytes_field(text: &str, name: &str) -> Option<u64> {
    let line = text.lines().find(|line| line.starts_with(name))?;
    let kibibytes: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kibibytes * 1024)
}

/// Clock ticks per second of `/proc/self/stat`'s times: 100 on every Linux architecture
/// Omnibus builds for (`USER_HZ`; the kernel reports in it whatever its own `HZ` is).
const USER_HZ: f64 = 100.0;

pub(super) fn usage() -> ProcessUsage {
    ProcessUsage {
        resident_bytes: resident_bytes(),
        open_files: open_files(),
        cpu_seconds: std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|stat| cpu_seconds(&stat)),
    }
}

/// File descriptors open. Linux 6.2+ gives their number as the size of `/proc/self/fd`, one
/// `stat`; older kernels report 0 there, and then the folder is listed (a broker with 3,000
/// partitions has thousands of descriptors: listing them each scrape would be a good part of
/// its cost).
fn open_files() -> Option<u64> {
    match std::fs::metadata("/proc/self/fd") {
        Ok(metadata) if metadata.len() > 0 => Some(metadata.len()),
        _ => std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|entries| entries.count() as u64),
    }
}

/// `VmRSS` of `/proc/self/status`, in bytes.
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    kibibytes_field(&status, "VmRSS:")
}

/// utime + stime (fields 14 and 15) of a `/proc/<pid>/stat` line.
pub(super) fn cpu_seconds(stat: &str) -> Option<f64> {
    cpu_times(stat).map(|(user, system)| user + system)
}

/// (utime, stime), fields 14 and 15 of a `/proc/<pid>/stat` line, in seconds. The command
/// name (field 2) may hold spaces and parentheses, so the fields are counted after its last
/// `)`.
fn cpu_times(stat: &str) -> Option<(f64, f64)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // `rest` starts at field 3 (state): utime is field 14, the 12th from here.
    let user: u64 = fields.nth(11)?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some((user as f64 / USER_HZ, system as f64 / USER_HZ))
}

/// Bytes free for the broker in the file system holding `data_dir`.
pub(super) fn disk_free_bytes(data_dir: &Path) -> Option<u64> {
    omnibus_storage::available_bytes(data_dir).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_seconds_counts_fields_after_a_command_name_with_spaces() {
        let stat = "4242 (omni bus) S 1 4242 4242 0 -1 4194560 500 0 0 0 250 130 0 0 20 0 9 0";
        assert_eq!(cpu_seconds(stat), Some(3.8));
        assert_eq!(cpu_seconds("garbage"), None);
    }

    #[test]
    fn this_process_has_memory_and_open_files() {
        let usage = usage();
        if cfg!(target_os = "linux") {
            assert!(usage.resident_bytes.is_some_and(|bytes| bytes > 0));
            let listed = std::fs::read_dir("/proc/self/fd").unwrap().count() as u64;
            let files = usage.open_files.unwrap();
            // Both counts are of a moment; the listing holds one descriptor of its own.
            assert!(
                files > 0 && files.abs_diff(listed) <= 3,
                "{files} vs {listed}"
            );
            assert!(usage.cpu_seconds.is_some());
            let resources = resources();
            let resident = resources.resident_bytes.unwrap();
            assert!(resources.peak_resident_bytes.unwrap() >= resident / 2);
            assert!(resources.system_memory_bytes.unwrap() > resident);
            assert!(resources.cpu_user_seconds.is_some() && resources.cpu_system_seconds.is_some());
        }
    }
}
