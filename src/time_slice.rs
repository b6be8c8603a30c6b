//! A short CPU time slice for the threads that answer requests. Under Linux's EEVDF scheduler
//! a task woken while every core is busy may wait for the running task's slice to end (1.4 ms
//! by default on a 2-core machine). A Universal Logout call wakes a database backend for each
//! of its three statements and the revocation lane twice, and with the workers busy with pages
//! those waits made its p99 (`ual-bench ual-under-load`: 8.8–34 ms with the default slice,
//! 6.1–9.1 ms with 100 µs). A thread may ask a shorter slice for itself (Linux 6.12 and later):
//! the kernel preempts it sooner, its priority is unchanged, and no privilege is needed.

/// Asks the kernel for a time slice of `micros` for the calling thread; 0 leaves it alone. Best
/// effort: an older kernel ignores or refuses it, and the thread keeps the default.
pub fn shorten_for_this_thread(micros: u64) {
    if micros == 0 {
        return;
    }
    #[cfg(target_os = "linux")]
    if let Err(e) = linux::set_slice(micros) {
        tracing::debug!(error = %e, "the kernel kept its time slice");
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::io;

    /// `struct sched_attr` of sched_setattr(2), in its first version (56 bytes).
    #[repr(C)]
    #[derive(Default)]
    struct SchedAttr {
        size: u32,
        policy: u32,
        flags: u64,
        nice: i32,
        priority: u32,
        runtime: u64,
        deadline: u64,
        period: u64,
        util_min: u32,
        util_max: u32,
    }

    const SIZE: u32 = size_of::<SchedAttr>() as u32;

    /// Reads the thread's scheduling attributes and writes them back with `micros` as its
    /// slice, so that its policy and nice value stay as they were. Only the fair policies
    /// (`SCHED_OTHER`, `SCHED_BATCH`) have a slice to change.
    pub fn set_slice(micros: u64) -> io::Result<()> {
        let mut attr = SchedAttr::default();
        // SAFETY: `attr` is a writable sched_attr of `SIZE` bytes, alive for the call; pid 0 is
        // the calling thread.
        let read = unsafe { libc::syscall(libc::SYS_sched_getattr, 0, &raw mut attr, SIZE, 0) };
        if read != 0 {
            return Err(io::Error::last_os_error());
        }
        let fair = [libc::SCHED_OTHER, libc::SCHED_BATCH].map(|p| p as u32);
        if !fair.contains(&attr.policy) {
            return Ok(());
        }
        attr.size = SIZE;
        attr.runtime = micros.saturating_mul(1_000);
        // SAFETY: as above, and the kernel only reads `attr`.
        let written = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &raw const attr, 0) };
        if written != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// This thread's slice in nanoseconds, if the kernel reports it.
    fn own_slice() -> Option<u64> {
        let sched = std::fs::read_to_string("/proc/thread-self/sched").ok()?;
        let line = sched.lines().find(|l| l.starts_with("se.slice"))?;
        line.rsplit(':').next()?.trim().parse().ok()
    }

    #[test]
    fn a_thread_gets_the_slice_it_asks_for_and_keeps_its_nice_value() {
        // SAFETY: plain calls on this thread (a raised nice value needs no privilege).
        let tid = unsafe { libc::gettid() } as libc::id_t;
        assert_eq!(unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, 3) }, 0);

        shorten_for_this_thread(150);

        assert_eq!(unsafe { libc::getpriority(libc::PRIO_PROCESS, tid) }, 3);
        if let Some(slice) = own_slice() {
            assert_eq!(slice, 150_000);
        }
    }
}
