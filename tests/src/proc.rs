//! Child-process helpers: children die with the thread that spawned them
//! (PR_SET_PDEATHSIG), are signalled by their own pid only, and are always
//! reaped.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// Spawns `cmd` so that the kernel SIGKILLs it if the spawning thread dies
/// (a killed test run leaves no server or tcpdump behind). `ip netns exec`
/// execs its program in place, so the pid and the death signal carry over.
/// Keep the `Child` on the thread that spawned it.
pub fn spawn_tied(cmd: &mut Command) -> io::Result<Child> {
    // SAFETY: prctl is async-signal-safe; nothing else runs in the hook.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn()
}

/// Sends `sig` to the child's pid (only that process).
pub fn signal(child: &Child, sig: i32) -> io::Result<()> {
    // SAFETY: kill(2) on a pid we spawned and have not reaped yet.
    let r = unsafe { libc::kill(child.id() as libc::pid_t, sig) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Waits at most `timeout` for the child to exit.
pub fn wait_timeout(
    child: &mut Child,
    timeout: Duration,
) -> io::Result<Option<std::process::ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(st) = child.try_wait()? {
            return Ok(Some(st));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SIGKILL and reap.
pub fn kill_and_reap(mut child: Child) {
    if let Ok(None) = child.try_wait() {
        let _ = child.kill();
    }
    let _ = child.wait();
}
