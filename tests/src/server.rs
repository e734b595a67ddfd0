//! `ZkServer`: a real ZooKeeper 3.8 standalone server from Debian's
//! `zookeeper` package, with its own data dir, optionally inside a network
//! namespace. Ready once `ruok` answers `imok` (bounded wait); killed and
//! reaped on drop. Its output goes to `server.log` in its temp dir and is
//! printed when startup fails.

use crate::client::Endpoint;
use crate::netns::Netns;
use crate::proc::{kill_and_reap, spawn_tied};
use std::fs;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ZK_JAR: &str = "/usr/share/java/zookeeper.jar";
pub const ZK_CONF_DIR: &str = "/etc/zookeeper/conf_example";
/// A logging backend for ZooKeeper's slf4j, if installed (Debian's
/// `libslf4j-java`); without it the server logs nothing.
const SLF4J_SIMPLE: &str = "/usr/share/java/slf4j-simple.jar";

const READY_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone, Debug)]
pub struct ZkServerConfig {
    pub netns: Option<Netns>,
    /// Default: 2181 inside a namespace, a free port on the host.
    pub port: Option<u16>,
    pub tick_time_ms: u32,
    pub heap_mb: u32,
    /// Extra `key=value` lines for zoo.cfg.
    pub extra: Vec<(String, String)>,
    /// Address the client port binds (default 127.0.0.1).
    pub address: Ipv4Addr,
}

impl Default for ZkServerConfig {
    fn default() -> Self {
        ZkServerConfig {
            netns: None,
            port: None,
            tick_time_ms: 2000,
            heap_mb: 256,
            extra: Vec::new(),
            address: Ipv4Addr::LOCALHOST,
        }
    }
}

pub struct ZkServer {
    child: Option<Child>,
    dir: tempfile::TempDir,
    endpoint: Endpoint,
    log: PathBuf,
}

/// A port nobody listens on right now (host namespace).
pub fn free_port() -> io::Result<u16> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(l.local_addr()?.port())
}

impl ZkServer {
    /// On the host's loopback, on a free port.
    pub fn start() -> io::Result<ZkServer> {
        Self::start_with(ZkServerConfig::default())
    }

    /// Inside `ns`, on 127.0.0.1:2181.
    pub fn start_in(ns: &Netns) -> io::Result<ZkServer> {
        Self::start_with(ZkServerConfig {
            netns: Some(ns.clone()),
            ..Default::default()
        })
    }

    pub fn start_with(cfg: ZkServerConfig) -> io::Result<ZkServer> {
        if !Path::new(ZK_JAR).exists() {
            return Err(io::Error::other(format!(
                "{ZK_JAR} not found: install Debian's zookeeper package (apt-get install -y zookeeper)"
            )));
        }
        let port = match cfg.port {
            Some(p) => p,
            None if cfg.netns.is_some() => 2181,
            None => free_port()?,
        };
        let dir = tempfile::Builder::new().prefix("zkt-server-").tempdir()?;
        let data = dir.path().join("data");
        fs::create_dir_all(&data)?;
        let mut conf = format!(
            "tickTime={}\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={port}\n\
             clientPortAddress={}\nadmin.enableServer=false\n4lw.commands.whitelist=*\n\
             maxClientCnxns=0\nforceSync=no\n",
            cfg.tick_time_ms,
            data.display(),
            cfg.address
        );
        for (k, v) in &cfg.extra {
            conf.push_str(&format!("{k}={v}\n"));
        }
        let cfg_path = dir.path().join("zoo.cfg");
        fs::write(&cfg_path, conf)?;
        let log = dir.path().join("server.log");
        let logf = fs::File::create(&log)?;

        let mut cp = format!("{ZK_CONF_DIR}:{ZK_JAR}");
        if Path::new(SLF4J_SIMPLE).exists() {
            cp.push(':');
            cp.push_str(SLF4J_SIMPLE);
        }
        let mut cmd = match &cfg.netns {
            Some(ns) => ns.command("java"),
            None => Command::new("java"),
        };
        cmd.arg(format!("-Xmx{}m", cfg.heap_mb))
            .args([
                "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1",
                "-Djava.net.preferIPv4Stack=true",
                "-Dorg.slf4j.simpleLogger.defaultLogLevel=info",
                "-Dorg.slf4j.simpleLogger.showDateTime=true",
                "-cp",
                &cp,
                "org.apache.zookeeper.server.quorum.QuorumPeerMain",
            ])
            .arg(&cfg_path)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::from(logf.try_clone()?))
            .stderr(Stdio::from(logf));
        let child = spawn_tied(&mut cmd)?;
        let endpoint = Endpoint {
            addr: SocketAddr::from((cfg.address, port)),
            netns: cfg.netns.clone(),
        };
        let mut srv = ZkServer {
            child: Some(child),
            dir,
            endpoint,
            log,
        };
        srv.wait_ready()?;
        Ok(srv)
    }

    fn wait_ready(&mut self) -> io::Result<()> {
        let start = Instant::now();
        let mut last = String::new();
        while start.elapsed() < READY_TIMEOUT {
            if let Some(st) = self.child.as_mut().unwrap().try_wait()? {
                return Err(io::Error::other(format!(
                    "ZooKeeper exited during startup ({st}); log {}:\n{}",
                    self.log.display(),
                    self.log_text()
                )));
            }
            // `ruok` says imok as soon as the port listens; sessions are
            // only served once `srvr` reports a mode.
            match self.endpoint.four_letter("ruok", None) {
                Ok(s) if s == "imok" => match self.endpoint.four_letter("srvr", None) {
                    Ok(s) if s.contains("Mode: ") => return Ok(()),
                    Ok(s) => last = format!("srvr answered {s:?}"),
                    Err(e) => last = e.to_string(),
                },
                Ok(s) => last = format!("ruok answered {s:?}"),
                Err(e) => last = e.to_string(),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(io::Error::other(format!(
            "ZooKeeper not ready after {READY_TIMEOUT:?} (last: {last}); log {}:\n{}",
            self.log.display(),
            self.log_text()
        )))
    }

    pub fn endpoint(&self) -> Endpoint {
        self.endpoint.clone()
    }

    pub fn port(&self) -> u16 {
        self.endpoint.addr.port()
    }

    pub fn netns(&self) -> Option<&Netns> {
        self.endpoint.netns.as_ref()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Kills the server now and waits for it.
    pub fn stop(&mut self) {
        if let Some(c) = self.child.take() {
            kill_and_reap(c);
        }
    }
}

impl Drop for ZkServer {
    fn drop(&mut self) {
        self.stop();
    }
}
