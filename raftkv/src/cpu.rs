//! The process's CPU time, for CPU per write beside throughput: where throughput is bound by
//! latency (one client), CPU per write still shows the work each write costs.

use std::time::Duration;

/// CPU time every thread of this process has used so far; `None` where the platform offers no
/// process CPU clock through a safe interface (everything but Linux here).
pub fn process_time() -> Option<Duration> {
    #[cfg(target_os = "linux")]
    {
        let now = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
        let secs = u64::try_from(now.tv_sec).ok()?;
        let nanos = u32::try_from(now.tv_nsec).ok()?;
        Some(Duration::new(secs, nanos))
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// CPU used from `start` (a [`process_time`] reading) until now.
pub fn since(start: Option<Duration>) -> Option<Duration> {
    Some(process_time()?.saturating_sub(start?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn busy_work_shows_on_the_process_clock() {
        let start = process_time();
        assert!(start.is_some());
        let mut x = 0u64;
        let began = std::time::Instant::now();
        while began.elapsed() < Duration::from_millis(30) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let used = since(start).unwrap();
        assert!(used >= Duration::from_millis(20), "{used:?}");
    }

    #[test]
    fn no_start_no_interval() {
        assert_eq!(since(None), None);
    }
}
