//! The CPU a broker process spent, read from `/proc/<pid>/stat` (Linux): user plus system
//! time of every thread. A run's broker CPU per operation moves much less than its rate on
//! a shared machine, and says what each message cost the broker whatever the client could
//! send — so reports carry it beside the rate when `--broker-pid` names the broker.

/// Seconds of CPU (user + system, all threads) process `pid` has used, or `None` where
/// `/proc` cannot tell (another OS, a process that is gone).
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    ticks_of_stat(&stat).map(|ticks| ticks as f64 / ticks_per_second())
}

/// utime + stime from a `/proc/<pid>/stat` line. The command name (field 2) is in
/// parentheses and may hold spaces and parentheses itself, so fields are counted after the
/// last `)`: utime and stime are fields 14 and 15, the 12th and 13th after it.
fn ticks_of_stat(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_ascii_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The unit of those times (`getconf CLK_TCK`; 100 on every Linux we know of, and the
/// fallback). Asked once: the harness forbids `unsafe`, so not `sysconf` itself.
fn ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|output| String::from_utf8(output.stdout).ok())
            .and_then(|text| text.trim().parse::<f64>().ok())
            .filter(|ticks| *ticks > 0.0)
            .unwrap_or(100.0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utime_and_stime_are_read_after_the_command_name_whatever_it_holds() {
        let line = "4242 (tokio (rt) worker) S 1 4242 4242 0 -1 4194560 100 0 0 0 \
                    250 75 0 0 20 0 9 0 123 456 789";
        assert_eq!(ticks_of_stat(line), Some(325));
        assert_eq!(ticks_of_stat("garbage"), None);
    }

    #[test]
    fn this_process_has_spent_some_cpu_and_a_gone_one_none() {
        let mut spin = 0u64;
        for value in 0..5_000_000u64 {
            spin = spin.wrapping_add(value * value);
        }
        assert!(spin > 0);
        let spent = cpu_seconds(std::process::id()).expect("/proc/self is readable on Linux");
        assert!(spent >= 0.0, "{spent}");
        assert_eq!(cpu_seconds(u32::MAX), None);
    }
}
