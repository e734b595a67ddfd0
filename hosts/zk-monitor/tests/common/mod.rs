//! Test harness for zk-monitor: a real ZooKeeper 3.8 (Debian's package) on
//! 127.0.0.1 with a free port, a real SMTP server (aiosmtpd writing a
//! maildir), an HTTP receiver for webhooks, and zk-monitor agents run as
//! child processes. Everything is stopped on Drop, and every wait is
//! bounded.

#![allow(dead_code)]

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;
use zookeeper_client::{Acls, Client, CreateMode};

/// A free TCP port on 127.0.0.1 (free when asked; good enough for tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Polls `f` every 100 ms until it returns Some or `timeout` passes.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A standalone ZooKeeper server on 127.0.0.1.
pub struct ZkServer {
    dir: TempDir,
    port: u16,
    child: Mutex<Option<Child>>,
}

impl ZkServer {
    /// Starts a server and waits until it answers `ruok`.
    pub fn start() -> ZkServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let cfg = format!(
            "tickTime=500\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={port}\n\
             clientPortAddress=127.0.0.1\nadmin.enableServer=false\n4lw.commands.whitelist=*\n\
             maxClientCnxns=0\nminSessionTimeout=1000\nmaxSessionTimeout=20000\n",
            data.display()
        );
        std::fs::write(dir.path().join("zoo.cfg"), cfg).unwrap();
        let server = ZkServer {
            dir,
            port,
            child: Mutex::new(None),
        };
        server.launch();
        server
    }

    fn launch(&self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("zk.log"))
            .unwrap();
        let child = Command::new("java")
            .args([
                "-Xmx192m",
                "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1",
                "-Dzookeeper.log.dir=.",
                "-cp",
                "/etc/zookeeper/conf_example:/usr/share/java/zookeeper.jar",
                "org.apache.zookeeper.server.quorum.QuorumPeerMain",
            ])
            .arg(self.dir.path().join("zoo.cfg"))
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start java (apt-get install zookeeper)");
        *self.child.lock().unwrap() = Some(child);
        let deadline = Instant::now() + Duration::from_secs(40);
        while Instant::now() < deadline {
            if self.four_letter("ruok").as_deref() == Some("imok") {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!(
            "ZooKeeper did not start; see {}",
            self.dir.path().join("zk.log").display()
        );
    }

    /// Sends a four-letter word and returns the reply.
    pub fn four_letter(&self, word: &str) -> Option<String> {
        let addr: SocketAddr = ([127, 0, 0, 1], self.port).into();
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        std::io::Write::write_all(&mut s, word.as_bytes()).ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        Some(out)
    }

    /// `127.0.0.1:PORT`.
    pub fn connect_string(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills the server process (SIGKILL), keeping its data.
    pub fn stop(&self) {
        if let Some(mut c) = self.child.lock().unwrap().take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // Wait until the port is closed.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && self.four_letter("ruok").is_some() {
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Starts the server again on the same port and data.
    pub fn restart(&self) {
        self.stop();
        self.launch();
    }
}

impl Drop for ZkServer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.lock().unwrap().take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

static SHARED_ZK: Mutex<Weak<ZkServer>> = Mutex::new(Weak::new());

/// One server shared by the tests of a binary that run at the same time;
/// it stops when the last of them drops it.
pub fn shared_zk() -> Arc<ZkServer> {
    let mut slot = SHARED_ZK.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(zk) = slot.upgrade() {
        return zk;
    }
    let zk = Arc::new(ZkServer::start());
    *slot = Arc::downgrade(&zk);
    zk
}

/// A ZooKeeper client for driving the test, retrying the connection.
pub async fn zk_client(zk: &ZkServer) -> Client {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match Client::connector()
            .with_session_timeout(Duration::from_secs(10))
            .connect(&zk.connect_string())
            .await
        {
            Ok(c) => return c,
            Err(e) if Instant::now() < deadline => {
                eprintln!("test client: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Err(e) => panic!("cannot connect to ZooKeeper: {e}"),
        }
    }
}

/// Creates `path` (and its parents) as a persistent znode.
pub async fn mkdirs(c: &Client, path: &str) {
    c.mkdir(path, &CreateMode::Persistent.with_acls(Acls::anyone_all()))
        .await
        .unwrap_or_else(|e| panic!("mkdir {path}: {e}"));
}

/// Creates persistent `path` with `data` (parent must exist).
pub async fn create(c: &Client, path: &str, data: &[u8]) {
    c.create(
        path,
        data,
        &CreateMode::Persistent.with_acls(Acls::anyone_all()),
    )
    .await
    .unwrap_or_else(|e| panic!("create {path}: {e}"));
}

/// Deletes `path`.
pub async fn delete(c: &Client, path: &str) {
    c.delete(path, None)
        .await
        .unwrap_or_else(|e| panic!("delete {path}: {e}"));
}

/// A real SMTP server (aiosmtpd) storing mail in a maildir.
pub struct Smtp {
    dir: TempDir,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    child: Child,
}

/// One received email.
#[derive(Clone, Debug)]
pub struct Mail {
    /// The raw message.
    pub raw: String,
}

impl Mail {
    /// The value of header `name` (first occurrence).
    pub fn header(&self, name: &str) -> Option<String> {
        let prefix = format!("{}:", name.to_ascii_lowercase());
        self.raw
            .lines()
            .take_while(|l| !l.is_empty())
            .find(|l| l.to_ascii_lowercase().starts_with(&prefix))
            .map(|l| l[prefix.len()..].trim().to_string())
    }

    /// `firing` or `resolved`.
    pub fn status(&self) -> String {
        self.header("X-ZK-Monitor-Status").unwrap_or_default()
    }

    /// The agent that sent it.
    pub fn agent(&self) -> String {
        self.header("X-ZK-Monitor-Agent").unwrap_or_default()
    }
}

impl Smtp {
    /// Starts aiosmtpd on a free port and waits until it accepts.
    pub fn start() -> Smtp {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let mut cmd = Command::new("/usr/bin/python3");
        cmd.args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(dir.path().join("maildir"));
        Smtp::launch(dir, port, cmd)
    }

    /// Starts an SMTP server requiring STARTTLS (with `tls`) and AUTH as
    /// `user`/`password`; it adds X-Test-Auth-User and X-Test-TLS headers.
    pub fn start_tls_auth(tls: &TestCa, user: &str, password: &str) -> Smtp {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let mut cmd = Command::new("/usr/bin/python3");
        cmd.arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/support/smtp_tls_auth.py"
        ))
        .arg(port.to_string())
        .arg(dir.path().join("maildir"))
        .arg(&tls.cert)
        .arg(&tls.key)
        .args([user, password]);
        Smtp::launch(dir, port, cmd)
    }

    fn launch(dir: TempDir, port: u16, mut cmd: Command) -> Smtp {
        let log = std::fs::File::create(dir.path().join("smtp.log")).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start aiosmtpd (apt-get install python3-aiosmtpd)");
        let smtp = Smtp { dir, port, child };
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return smtp;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the SMTP server did not start");
    }

    /// Mail received so far, oldest first.
    pub fn mails(&self) -> Vec<Mail> {
        let new = self.dir.path().join("maildir").join("new");
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(&new)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| {
                        let t = e
                            .metadata()
                            .and_then(|m| m.modified())
                            .unwrap_or(std::time::UNIX_EPOCH);
                        (t, e.path())
                    })
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
            .into_iter()
            .filter_map(|(_, p)| std::fs::read_to_string(p).ok())
            .map(|raw| Mail { raw })
            .collect()
    }

    /// The `settings` YAML section pointing at this server.
    pub fn settings_yaml(&self) -> String {
        format!(
            "settings:\n  smtp: {{host: 127.0.0.1, port: {}, starttls: off, from: zk-monitor@example.org, timeout: 5s}}\n  delivery: {{retries: 2, backoff: 200ms}}\n",
            self.port
        )
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Received webhook bodies with their Authorization header.
type Bodies = Arc<Mutex<Vec<(Value, Option<String>)>>>;

/// A throw-away CA and a server certificate for 127.0.0.1 (openssl CLI).
pub struct TestCa {
    _dir: TempDir,
    /// The CA certificate (PEM), for `settings.smtp.ca_file`.
    pub ca: PathBuf,
    /// The server certificate (PEM).
    pub cert: PathBuf,
    /// The server key (PEM).
    pub key: PathBuf,
}

impl TestCa {
    /// Generates the CA and the server certificate.
    pub fn generate() -> TestCa {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(d)
                .output()
                .expect("openssl");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let mut a = vec!["req", "-x509"];
        a.extend(ec);
        a.extend([
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=zk-monitor-test-ca",
        ]);
        run(&a);
        let mut a = vec!["req"];
        a.extend(ec);
        a.extend([
            "-keyout",
            "key.pem",
            "-out",
            "srv.csr",
            "-subj",
            "/CN=127.0.0.1",
        ]);
        run(&a);
        std::fs::write(
            d.join("ext.cnf"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        run(&[
            "x509",
            "-req",
            "-in",
            "srv.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "cert.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ]);
        TestCa {
            ca: d.join("ca.pem"),
            cert: d.join("cert.pem"),
            key: d.join("key.pem"),
            _dir: dir,
        }
    }
}

/// An HTTP receiver for webhooks: records every JSON body; answers 500 to
/// the first `fail_first` requests.
pub struct Receiver {
    /// `http://127.0.0.1:PORT/hook`.
    pub url: String,
    bodies: Bodies,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// Starts a receiver on a free port.
    pub async fn start(fail_first: usize) -> Receiver {
        use axum::Router;
        use axum::http::{HeaderMap, StatusCode};
        use axum::routing::post;
        let bodies: Bodies = Arc::default();
        let seen = Arc::new(AtomicUsize::new(0));
        let b = bodies.clone();
        let app = Router::new().route(
            "/hook",
            post(move |headers: HeaderMap, body: String| {
                let b = b.clone();
                let seen = seen.clone();
                async move {
                    if seen.fetch_add(1, Ordering::SeqCst) < fail_first {
                        return StatusCode::INTERNAL_SERVER_ERROR;
                    }
                    let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                    let auth = headers
                        .get("authorization")
                        .and_then(|h| h.to_str().ok())
                        .map(str::to_string);
                    b.lock().unwrap().push((v, auth));
                    StatusCode::OK
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            url: format!("http://127.0.0.1:{port}/hook"),
            bodies,
            task,
        }
    }

    /// Bodies accepted so far.
    pub fn bodies(&self) -> Vec<Value> {
        self.bodies
            .lock()
            .unwrap()
            .iter()
            .map(|(v, _)| v.clone())
            .collect()
    }

    /// Authorization headers of accepted requests.
    pub fn auth_headers(&self) -> Vec<Option<String>> {
        self.bodies
            .lock()
            .unwrap()
            .iter()
            .map(|(_, a)| a.clone())
            .collect()
    }

    /// The `status` field of each accepted body.
    pub fn statuses(&self) -> Vec<String> {
        self.bodies()
            .iter()
            .map(|b| b["status"].as_str().unwrap_or("").to_string())
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A zk-monitor agent process.
pub struct Agent {
    /// Its --name.
    pub name: String,
    /// Its HTTP port.
    pub port: u16,
    child: Option<Child>,
    log: PathBuf,
    http: reqwest::Client,
}

/// Writes `yaml` to a file in `dir` and returns its path.
pub fn write_config(dir: &Path, name: &str, yaml: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, yaml).unwrap();
    p
}

impl Agent {
    /// Starts `zk-monitor` with these extra arguments (after the common ones).
    pub fn start(zk: &ZkServer, cluster: &str, name: &str, config: &Path, extra: &[&str]) -> Agent {
        Agent::start_with_env(zk, cluster, name, config, extra, &[])
    }

    /// Like [`Agent::start`], with extra environment variables.
    pub fn start_with_env(
        zk: &ZkServer,
        cluster: &str,
        name: &str,
        config: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Agent {
        let port = free_port();
        let log = std::env::temp_dir().join(format!(
            "zk-monitor-test-{}-{cluster}-{name}.log",
            std::process::id()
        ));
        let logf = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_zk-monitor"))
            .args(["-z", &zk.connect_string(), "-c", cluster, "--name", name])
            .arg("-f")
            .arg(config)
            .args(["-p", &port.to_string(), "--listen", "127.0.0.1"])
            .args(["-l", "debug", "--session_timeout", "2s"])
            .args(extra)
            .envs(env.iter().copied())
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(logf.try_clone().unwrap())
            .stderr(logf)
            .spawn()
            .expect("start zk-monitor");
        Agent {
            name: name.to_string(),
            port,
            child: Some(child),
            log,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(2))
                .build()
                .unwrap(),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// GET `path` on the agent's HTTP port: (status code, body).
    pub async fn get(&self, path: &str) -> Option<(u16, String)> {
        let r = self
            .http
            .get(format!("http://127.0.0.1:{}{path}", self.port))
            .send()
            .await
            .ok()?;
        let code = r.status().as_u16();
        Some((code, r.text().await.ok()?))
    }

    /// GET /status as JSON.
    pub async fn status(&self) -> Option<Value> {
        let (_, body) = self.get("/status").await?;
        serde_json::from_str(&body).ok()
    }

    /// Whether this agent is the alerting leader now.
    pub async fn alerting(&self) -> bool {
        self.status()
            .await
            .map(|s| s["dispatcher"]["alerting"] == true)
            .unwrap_or(false)
    }

    /// The compliance state of `path` in /status.
    pub async fn state_of(&self, path: &str) -> Option<String> {
        let s = self.status().await?;
        s["monitor"]["compliance"][path]["state"]
            .as_str()
            .map(str::to_string)
    }

    /// Waits until `path` shows `state` in /status.
    pub async fn wait_state(&self, path: &str, state: &str, timeout: Duration) {
        wait_for(
            &format!("{} {path} to be {state}", self.name),
            timeout,
            || async { (self.state_of(path).await.as_deref() == Some(state)).then_some(()) },
        )
        .await
    }

    /// Kills the process with SIGKILL.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends a signal (e.g. libc::SIGHUP).
    pub fn signal(&self, sig: i32) {
        if let Some(c) = &self.child {
            unsafe {
                libc::kill(c.id() as i32, sig);
            }
        }
    }

    /// Sends SIGTERM and waits (bounded) for the exit status.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let mut c = self.child.take()?;
        unsafe {
            libc::kill(c.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = c.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = c.kill();
        c.wait().ok()
    }

    /// The agent's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("---- log of agent {} ----\n{}", self.name, self.log());
        }
        if std::env::var_os("ZK_MONITOR_TEST_KEEP_LOGS").is_none() {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

/// Waits until exactly one of `agents` is alerting; returns its index.
pub async fn wait_single_leader(agents: &[&Agent], timeout: Duration) -> usize {
    wait_for("a single alerting leader", timeout, || async {
        let mut leaders = Vec::new();
        for (i, a) in agents.iter().enumerate() {
            if a.alerting().await {
                leaders.push(i);
            }
        }
        (leaders.len() == 1).then(|| leaders[0])
    })
    .await
}
