//! Network namespaces of our own: `ip netns add zkt-<pid>-<n>`, loopback up
//! with an Ethernet-sized MTU (1500) and GSO limited to one segment so that
//! what tcpdump sees on `lo` is what a real NIC would carry (without the
//! GSO limit, loopback hands tcpdump 64 KB super-segments). Deleted on drop
//! of the last clone.

use std::ffi::OsStr;
use std::io;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

static COUNTER: AtomicU32 = AtomicU32::new(0);

const PREFIX: &str = "zkt-";

#[derive(Clone, Debug)]
pub struct Netns {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    name: String,
    mtu: u32,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

fn run(cmd: &mut Command) -> io::Result<Output> {
    let out = cmd.output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "{:?} failed ({}): {}",
            cmd,
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(out)
}

/// Removes namespaces named by this harness for processes that no longer
/// exist (left behind by a killed test run). Touches nothing else.
fn remove_stale() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let Some((pid, _)) = rest.split_once('-') else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = Command::new("ip").args(["netns", "del", name]).output();
        }
    }
}

impl Netns {
    /// Creates a namespace with `lo` up, MTU 1500, one segment per GSO skb.
    pub fn new() -> io::Result<Netns> {
        Self::with_mtu(1500)
    }

    pub fn with_mtu(mtu: u32) -> io::Result<Netns> {
        remove_stale();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("{PREFIX}{}-{n}", std::process::id());
        run(Command::new("ip").args(["netns", "add", &name])).map_err(|e| {
            io::Error::other(format!(
                "cannot create a network namespace (these tests need root and iproute2): {e}"
            ))
        })?;
        let ns = Netns {
            inner: Arc::new(Inner { name, mtu }),
        };
        let mtu = mtu.to_string();
        run(ns
            .command("ip")
            .args(["link", "set", "lo", "mtu", &mtu, "up"]))?;
        // Without this, TCP on loopback builds GSO super-packets up to 64 KB
        // and the capture shows segments far larger than the MTU.
        run(ns.command("ip").args([
            "link",
            "set",
            "lo",
            "gso_max_size",
            &mtu,
            "gso_max_segs",
            "1",
        ]))?;
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The loopback MTU set at creation.
    pub fn mtu(&self) -> u32 {
        self.inner.mtu
    }

    /// `ip netns exec NAME program`.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", self.name()]).arg(program);
        c
    }

    /// Moves the calling thread into the namespace (sockets it creates from
    /// now on belong to the namespace; they keep working from any thread).
    pub fn enter_current_thread(&self) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let f = std::fs::File::open(format!("/var/run/netns/{}", self.name()))?;
        // SAFETY: plain syscall on a valid fd; affects only the calling thread.
        let r = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Runs `f` on a fresh thread inside the namespace and returns its value.
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> io::Result<T> {
        let me = self.clone();
        std::thread::spawn(move || -> io::Result<T> {
            me.enter_current_thread()?;
            Ok(f())
        })
        .join()
        .map_err(|_| io::Error::other("thread in namespace panicked"))?
    }
}
