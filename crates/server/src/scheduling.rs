//! Asks the Linux scheduler for short CPU slices for the broker's threads.
//!
//! Why: an acknowledged produce waits for several thread wake-ups in a row — the flusher
//! returning from fdatasync, the connection's task, a consumer's long-poll. When clients and
//! the broker share few cores, each wake-up can find the CPU busy with another thread, and
//! Linux's EEVDF scheduler lets that thread finish its slice (about 3 ms by default) first.
//! That was the whole end-to-end p99 at 5,000 msg/s on 2 cores (docs/benchmarks.md): p50
//! 0.2 ms, p99 2–4 ms. A thread that asks for a shorter slice gets an earlier deadline, so it
//! runs as soon as it wakes; its share of the CPU does not change (that is what nice would
//! do, and nice needs privileges). Linux 6.12 and later honour the request
//! (`sched_setattr` with `sched_runtime` on a `SCHED_OTHER` thread); older kernels ignore it,
//! which [`request_cpu_slice`] detects and reports.
//!
//! Threads inherit the setting from the thread that creates them, so the broker calls this
//! once on its main thread before the async runtime starts its workers.
//!
//! This is the binary's only `unsafe` code: two raw system calls that neither `libc` nor
//! `rustix` wrap, on a struct this module owns.

/// What became of a slice request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SliceOutcome {
    /// The calling thread now runs with this slice (nanoseconds).
    Applied(u64),
    /// The kernel accepted the call but kept its own slice (before Linux 6.12), or the
    /// thread has a real-time policy, which a slice does not apply to.
    Ignored,
    /// Zero was asked for: the kernel's default is kept.
    Default,
}

/// The kernel's bounds for a custom slice (`sched_runtime`), in microseconds.
pub const SLICE_US_MIN: u64 = 100;
pub const SLICE_US_MAX: u64 = 100_000;

/// Requests a CPU slice of `slice_us` microseconds for the calling thread (and every thread it
/// creates afterwards); 0 keeps the kernel's default. Keeps the thread's policy and nice value.
pub fn request_cpu_slice(slice_us: u64) -> std::io::Result<SliceOutcome> {
    if slice_us == 0 {
        return Ok(SliceOutcome::Default);
    }
    platform::request(slice_us.clamp(SLICE_US_MIN, SLICE_US_MAX) * 1_000)
}

/// The calling thread's current slice in nanoseconds, as the kernel reports it (`None` where
/// the kernel has no slice to report).
#[cfg(test)]
pub fn current_cpu_slice_ns() -> std::io::Result<Option<u64>> {
    platform::current()
}

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
mod platform {
    use super::SliceOutcome;
    use std::io;

    const SCHED_OTHER: u32 = 0;
    const SCHED_BATCH: u32 = 3;

    /// The kernel's `struct sched_attr` (include/uapi/linux/sched/types.h), in its 56-byte
    /// version with the utilisation clamps.
    #[repr(C)]
    #[derive(Debug, Default, Clone, Copy)]
    struct SchedAttr {
        size: u32,
        sched_policy: u32,
        sched_flags: u64,
        sched_nice: i32,
        sched_priority: u32,
        sched_runtime: u64,
        sched_deadline: u64,
        sched_period: u64,
        sched_util_min: u32,
        sched_util_max: u32,
    }

    const ATTR_SIZE: u32 = std::mem::size_of::<SchedAttr>() as u32;

    fn get() -> io::Result<SchedAttr> {
        let mut attr = SchedAttr::default();
        // SAFETY: `attr` is a valid, writable `sched_attr` of `ATTR_SIZE` bytes that outlives
        // the call; pid 0 is the calling thread; flags must be 0.
        let result = unsafe {
            libc::syscall(
                libc::SYS_sched_getattr,
                0,
                &mut attr as *mut SchedAttr,
                ATTR_SIZE,
                0,
            )
        };
        if result == 0 {
            Ok(attr)
        } else {
            Err(io::Error::last_os_error())
        }
    }

    fn set(attr: &SchedAttr) -> io::Result<()> {
        // SAFETY: `attr` is a valid `sched_attr` whose `size` field says how many bytes the
        // kernel may read; it outlives the call; pid 0 is the calling thread.
        let result =
            unsafe { libc::syscall(libc::SYS_sched_setattr, 0, attr as *const SchedAttr, 0) };
        if result == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    fn is_fair(policy: u32) -> bool {
        policy == SCHED_OTHER || policy == SCHED_BATCH
    }

    pub fn request(slice_ns: u64) -> io::Result<SliceOutcome> {
        let mut attr = get()?;
        if !is_fair(attr.sched_policy) {
            return Ok(SliceOutcome::Ignored);
        }
        attr.size = ATTR_SIZE;
        // Only the slice changes: the policy and nice value read above are written back.
        attr.sched_flags = 0;
        attr.sched_runtime = slice_ns;
        set(&attr)?;
        // Kernels without custom slices accept the call and report their own value.
        Ok(if get()?.sched_runtime == slice_ns {
            SliceOutcome::Applied(slice_ns)
        } else {
            SliceOutcome::Ignored
        })
    }

    #[cfg(test)]
    pub fn current() -> io::Result<Option<u64>> {
        let attr = get()?;
        Ok((is_fair(attr.sched_policy) && attr.sched_runtime > 0).then_some(attr.sched_runtime))
    }
}

#[cfg(not(target_os = "linux"))]
mod platform {
    use super::SliceOutcome;

    pub fn request(_slice_ns: u64) -> std::io::Result<SliceOutcome> {
        Ok(SliceOutcome::Ignored)
    }

    #[cfg(test)]
    pub fn current() -> std::io::Result<Option<u64>> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each test runs on a thread of its own, so changing its slice touches nothing else.
    #[test]
    fn a_requested_slice_applies_to_the_thread_and_to_threads_it_creates() {
        let before = current_cpu_slice_ns().unwrap();
        let outcome = request_cpu_slice(250).unwrap();
        match outcome {
            SliceOutcome::Applied(ns) => {
                assert_eq!(ns, 250_000);
                assert_eq!(current_cpu_slice_ns().unwrap(), Some(250_000));
                let child = std::thread::spawn(|| current_cpu_slice_ns().unwrap())
                    .join()
                    .unwrap();
                assert_eq!(child, Some(250_000), "a new thread inherits the slice");
            }
            // A kernel before 6.12: the report must match what the kernel kept.
            SliceOutcome::Ignored => assert_eq!(current_cpu_slice_ns().unwrap(), before),
            SliceOutcome::Default => panic!("a non-zero request is not the default"),
        }
    }

    #[test]
    fn requests_are_clamped_to_what_the_kernel_accepts() {
        // Below the kernel's minimum the call would fail with EINVAL; it is raised instead.
        match request_cpu_slice(1).unwrap() {
            SliceOutcome::Applied(ns) => assert_eq!(ns, SLICE_US_MIN * 1_000),
            other => assert_eq!(other, SliceOutcome::Ignored),
        }
        match request_cpu_slice(u64::MAX / 2_000).unwrap() {
            SliceOutcome::Applied(ns) => assert_eq!(ns, SLICE_US_MAX * 1_000),
            other => assert_eq!(other, SliceOutcome::Ignored),
        }
    }

    #[test]
    fn zero_keeps_the_kernel_default() {
        let before = current_cpu_slice_ns().unwrap();
        assert_eq!(request_cpu_slice(0).unwrap(), SliceOutcome::Default);
        assert_eq!(current_cpu_slice_ns().unwrap(), before);
    }
}
