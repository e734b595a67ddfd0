//! Logging: `tracing` to stderr, or to the local syslog (`-s FACILITY`)
//! as RFC 3164 datagrams on `/dev/log` (`ZK_MONITOR_SYSLOG_SOCKET`
//! overrides the socket path). No extra crates: one datagram per event.
//! `-l` sets the level of zk-monitor's own events; libraries log from WARN
//! up unless `RUST_LOG` is set.

use std::io::{self, IsTerminal, Write};
use std::os::unix::net::UnixDatagram;
use std::sync::Arc;

use tracing::{Level, Metadata};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Environment variable overriding the syslog socket path.
pub const ENV_SYSLOG_SOCKET: &str = "ZK_MONITOR_SYSLOG_SOCKET";

/// Installs the global subscriber: stderr, or syslog with `facility`.
pub fn init(level: Level, syslog: Option<&str>) -> Result<(), String> {
    // Our own events at `level`; libraries' only from WARN up, unless
    // RUST_LOG says otherwise.
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.is_empty() => EnvFilter::new(spec),
        _ => EnvFilter::new(format!("warn,zk_monitor={}", level.as_str().to_lowercase())),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    match syslog {
        None => builder
            .with_ansi(io::stderr().is_terminal())
            .with_writer(io::stderr)
            .init(),
        Some(name) => {
            let facility = facility_code(name).ok_or_else(|| {
                format!("`{name}` is not a syslog facility (e.g. daemon, local0)")
            })?;
            let socket_path =
                std::env::var(ENV_SYSLOG_SOCKET).unwrap_or_else(|_| "/dev/log".to_string());
            let sock = UnixDatagram::unbound().map_err(|e| e.to_string())?;
            sock.connect(&socket_path)
                .map_err(|e| format!("cannot connect to syslog at {socket_path}: {e}"))?;
            let writer = Syslog {
                sock: Arc::new(sock),
                facility,
                tag: format!("zk-monitor[{}]", std::process::id()),
            };
            builder
                .with_ansi(false)
                .without_time()
                .with_writer(writer)
                .init();
        }
    }
    Ok(())
}

/// The numeric code of a syslog facility name.
pub fn facility_code(name: &str) -> Option<u8> {
    let n = name.to_ascii_lowercase();
    let code = match n.as_str() {
        "kern" => 0,
        "user" => 1,
        "mail" => 2,
        "daemon" => 3,
        "auth" => 4,
        "syslog" => 5,
        "lpr" => 6,
        "news" => 7,
        "uucp" => 8,
        "cron" => 9,
        "authpriv" => 10,
        "ftp" => 11,
        _ => {
            let d = n.strip_prefix("local")?.parse::<u8>().ok()?;
            if d > 7 {
                return None;
            }
            16 + d
        }
    };
    Some(code)
}

fn severity(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

struct Syslog {
    sock: Arc<UnixDatagram>,
    facility: u8,
    tag: String,
}

/// Buffers one formatted event and sends it as one datagram on drop.
struct Line {
    sock: Arc<UnixDatagram>,
    prefix: String,
    buf: Vec<u8>,
}

impl Write for Line {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.buf);
        let text = text.trim_end();
        if !text.is_empty() {
            let _ = self
                .sock
                .send(format!("{}{}", self.prefix, text).as_bytes());
        }
    }
}

impl<'a> MakeWriter<'a> for Syslog {
    type Writer = Line;

    fn make_writer(&'a self) -> Line {
        self.line(&Level::INFO)
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Line {
        self.line(meta.level())
    }
}

impl Syslog {
    fn line(&self, level: &Level) -> Line {
        let pri = u16::from(self.facility) * 8 + u16::from(severity(level));
        Line {
            sock: self.sock.clone(),
            prefix: format!("<{pri}>{}: ", self.tag),
            buf: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facilities() {
        assert_eq!(facility_code("local0"), Some(16));
        assert_eq!(facility_code("LOCAL7"), Some(23));
        assert_eq!(facility_code("daemon"), Some(3));
        assert_eq!(facility_code("local8"), None);
        assert_eq!(facility_code("nope"), None);
    }

    #[test]
    fn lines_are_prefixed_with_priority() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.sock");
        let server = UnixDatagram::bind(&path).unwrap();
        let client = UnixDatagram::unbound().unwrap();
        client.connect(&path).unwrap();
        let s = Syslog {
            sock: Arc::new(client),
            facility: 16,
            tag: "zk-monitor[1]".into(),
        };
        {
            let mut l = s.line(&Level::WARN);
            l.write_all(b"hello\n").unwrap();
        }
        let mut buf = [0u8; 256];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"<132>zk-monitor[1]: hello");
    }
}
