//! The agent: one ZooKeeper session at a time, and everything done with it.
//!
//! [`run`] connects (retrying with backoff), then runs a session until it
//! expires or the process shuts down, then connects again. Within a
//! session one loop owns all state, so there are no locks to reason about:
//!
//! - registration: an ephemeral `<cluster>/agents/<name>` znode;
//! - watching: one [`crate::monitor`] task per configured path feeding
//!   reads back to the loop, which evaluates them ([`crate::eval`]);
//! - leadership: the zookeeper-client lock recipe (Curator-compatible
//!   `LeaderLatch` layout under `<cluster>/leader/`); only the leader
//!   decides and sends notifications ([`crate::alert`]);
//! - alert records: `<cluster>/alerts/<path>` holds what was sent. Every
//!   write goes through the lock (a multi-op checking that our lock znode
//!   still exists), so an agent that lost leadership cannot record, and
//!   therefore cannot send, anything. A record is written `pending` before
//!   sending and `delivered`/`failed` after; a new leader re-sends a
//!   `pending` one, so a failover loses nothing;
//! - a disconnected leader is suspended at once: in-flight deliveries are
//!   aborted and nothing is decided until it is connected and has re-read
//!   its records and the watched paths.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use tracing::{debug, info, warn};
use zookeeper_client::{
    Acls, Client, CreateMode, Error, LockOptions, LockPrefix, OwnedLockClient, SessionState,
};

use crate::alert::{AlertRecord, Delivery, Engine, record_name};
use crate::config::{Config, PathSpec};
use crate::eval::{Compliance, Observation, State, evaluate};
use crate::monitor::{self, PathEvent};
use crate::notify::{Notifier, now_ms};
use crate::status::{PathStatus, Shared, Snapshot};

/// A configuration with the notifier built for its settings.
pub struct Loaded {
    /// The configuration.
    pub config: Config,
    /// The notifier for its settings.
    pub notifier: Notifier,
}

/// How to connect and who we are.
#[derive(Clone, Debug)]
pub struct Options {
    /// The connect string (`host:port,host:port[/chroot]`).
    pub zookeeper: String,
    /// Digest credentials (`user`, `password`).
    pub digest: Option<(String, String)>,
    /// `<cluster_prefix>/<cluster_name>`.
    pub cluster_path: String,
    /// This agent's name.
    pub agent: String,
    /// Session timeout to ask for.
    pub session_timeout: Duration,
    /// Use one-shot watches even when the server has `addWatch`.
    pub oneshot_watches: bool,
}

/// How often the loop re-checks timers (grace periods, staleness).
const TICK: Duration = Duration::from_millis(200);
/// Longest wait between connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// A session shorter than this counts as a failed attempt (for backoff).
const SHORT_SESSION: Duration = Duration::from_secs(10);

/// Runs the agent until `shutdown` becomes true.
pub async fn run(
    opts: Options,
    mut configs: watch::Receiver<Arc<Loaded>>,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut engine = Engine::new();
    let mut backoff = Duration::from_millis(250);
    let instance = instance_nonce();
    loop {
        if *shutdown.borrow() {
            return;
        }
        publish_disconnected(&shared, &configs.borrow().config, &engine);
        let mut connector = Client::connector()
            .with_session_timeout(opts.session_timeout)
            .with_fail_eagerly();
        if let Some((user, pass)) = &opts.digest {
            connector = connector.with_auth("digest", format!("{user}:{pass}").as_bytes());
        }
        let connected = tokio::select! {
            r = connector.connect(&opts.zookeeper) => r,
            _ = shutdown.changed() => return,
        };
        let client = match connected {
            Ok(c) => c,
            Err(e) => {
                warn!(zookeeper = %opts.zookeeper, error = %e, retry_in = ?backoff, "cannot connect to ZooKeeper");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => return,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        shared
            .counters
            .sessions
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        info!(session = %client.session_id(), timeout = ?client.session_timeout(), "connected to ZooKeeper");
        let started = Instant::now();
        let mut session = Session::new(client, &opts, &shared, instance.clone());
        let end = session.run(&mut engine, &mut configs, &mut shutdown).await;
        session.stop(&mut engine);
        match end {
            End::Shutdown => {
                drop(session);
                // Let the client close the session (removing our ephemeral
                // znodes at once rather than after the session timeout).
                tokio::time::sleep(Duration::from_millis(300)).await;
                return;
            }
            End::Lost(why) => {
                warn!(reason = %why, "ZooKeeper session ended; starting a new one");
                drop(session);
                // A session that failed quickly (e.g. no permission on the
                // cluster path) must not turn into a reconnect storm.
                if started.elapsed() < SHORT_SESSION {
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.changed() => return,
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                } else {
                    backoff = Duration::from_millis(250);
                }
            }
        }
    }
}

enum End {
    Shutdown,
    Lost(String),
}

/// A random-enough token telling this process's registrations apart.
fn instance_nonce() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    format!("{:016x}", h.finish())
}

fn acls(opts: &Options) -> Acls<'static> {
    if opts.digest.is_some() {
        Acls::creator_all()
    } else {
        Acls::anyone_all()
    }
}

fn publish_disconnected(shared: &Shared, config: &Config, engine: &Engine) {
    let mut snap = shared.snapshot();
    snap.connected = false;
    snap.session_id = None;
    snap.leader = false;
    snap.alerting = false;
    snap.alerts.clear();
    snap.alerters = alerter_kinds(config);
    let old = std::mem::take(&mut snap.paths);
    for (path, spec) in &config.paths {
        let mut st = old.get(path).cloned().unwrap_or_else(|| blank_status(spec));
        st.compliance = unknown_while_disconnected(engine.last_known(path));
        snap.paths.insert(path.clone(), st);
    }
    shared.publish(snap);
}

fn unknown_while_disconnected(last: Option<&Compliance>) -> Compliance {
    match last {
        Some(c) => Compliance::new(
            State::Unknown,
            format!(
                "Not connected to ZooKeeper; last known: {} ({})",
                c.state, c.message
            ),
        ),
        None => Compliance::new(State::Unknown, "Not connected to ZooKeeper."),
    }
}

fn blank_status(spec: &PathSpec) -> PathStatus {
    PathStatus {
        compliance: Compliance::not_read(),
        exists: None,
        children: None,
        min: spec.children.and_then(|c| c.min),
        max: spec.children.and_then(|c| c.max),
    }
}

fn alerter_kinds(config: &Config) -> Vec<&'static str> {
    let mut kinds: Vec<&'static str> = config
        .paths
        .values()
        .flat_map(|s| s.alerter.kinds())
        .collect();
    kinds.sort_unstable();
    kinds.dedup();
    kinds
}

/// Everything that lives as long as one ZooKeeper session.
struct Session {
    client: Client,
    opts: Options,
    shared: Arc<Shared>,
    instance: String,
    connected: bool,
    oneshot: bool,
    registered: Option<String>,
    path_tasks: Vec<JoinHandle<()>>,
    obs_tx: mpsc::UnboundedSender<PathEvent>,
    obs_rx: mpsc::UnboundedReceiver<PathEvent>,
    observations: BTreeMap<String, Observation>,
    read_errors: BTreeMap<String, String>,
    lock_task: Option<JoinHandle<Result<OwnedLockClient, Error>>>,
    lock: Option<OwnedLockClient>,
    lock_watch: Option<JoinHandle<()>>,
    lost_tx: mpsc::UnboundedSender<()>,
    lost_rx: mpsc::UnboundedReceiver<()>,
    deliveries: JoinSet<(AlertRecord, bool)>,
    next_lock_attempt: Instant,
    reload_records: bool,
}

impl Session {
    fn new(client: Client, opts: &Options, shared: &Arc<Shared>, instance: String) -> Self {
        let (obs_tx, obs_rx) = mpsc::unbounded_channel();
        let (lost_tx, lost_rx) = mpsc::unbounded_channel();
        Session {
            client,
            opts: opts.clone(),
            shared: shared.clone(),
            instance,
            connected: true,
            oneshot: opts.oneshot_watches,
            registered: None,
            path_tasks: Vec::new(),
            obs_tx,
            obs_rx,
            observations: BTreeMap::new(),
            read_errors: BTreeMap::new(),
            lock_task: None,
            lock: None,
            lock_watch: None,
            lost_tx,
            lost_rx,
            deliveries: JoinSet::new(),
            next_lock_attempt: Instant::now(),
            reload_records: false,
        }
    }

    fn cluster(&self, sub: &str) -> String {
        format!("{}/{}", self.opts.cluster_path, sub)
    }

    async fn run(
        &mut self,
        engine: &mut Engine,
        configs: &mut watch::Receiver<Arc<Loaded>>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> End {
        let mut loaded = configs.borrow_and_update().clone();
        if let Err(e) = self.setup().await {
            return End::Lost(format!("setup failed: {e}"));
        }
        self.start_watches(&loaded.config).await;
        let mut state = self.client.state_watcher();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.changed() => return End::Shutdown,
                Some(ev) = self.obs_rx.recv() => {
                    self.on_read(ev, &loaded.config, engine);
                    // Drain what is already queued before publishing.
                    while let Ok(ev) = self.obs_rx.try_recv() {
                        self.on_read(ev, &loaded.config, engine);
                    }
                }
                s = state.changed() => {
                    match s {
                        SessionState::Disconnected => {
                            warn!("disconnected from ZooKeeper; alerting suspended");
                            self.connected = false;
                            engine.mark_stale();
                            self.suspend(engine);
                        }
                        SessionState::SyncConnected | SessionState::ConnectedReadOnly => {
                            info!("reconnected to ZooKeeper; re-reading every path");
                            self.connected = true;
                        }
                        other => return End::Lost(format!("{other:?}")),
                    }
                }
                r = async { self.lock_task.as_mut().expect("guarded").await }, if self.lock_task.is_some() => {
                    self.lock_task = None;
                    match r {
                        Ok(Ok(lock)) => self.became_leader(lock),
                        Ok(Err(e)) => {
                            warn!(error = %e, "leader election failed; retrying");
                            self.next_lock_attempt = Instant::now() + Duration::from_secs(1);
                        }
                        Err(e) => warn!(error = %e, "leader election task failed"),
                    }
                }
                Some(()) = self.lost_rx.recv() => {
                    warn!("leader lock znode is gone; leadership lost");
                    self.drop_leadership(engine);
                }
                Some(done) = self.deliveries.join_next(), if !self.deliveries.is_empty() => {
                    if let Ok((record, ok)) = done {
                        self.delivered(record, ok, engine).await;
                    }
                }
                _ = tick.tick() => self.tick(&loaded, engine).await,
                changed = configs.changed() => {
                    if changed.is_err() {
                        return End::Shutdown;
                    }
                    loaded = configs.borrow_and_update().clone();
                    info!(paths = loaded.config.paths.len(), "configuration reloaded");
                    self.apply_config(&loaded.config, engine).await;
                }
            }
            self.publish(&loaded.config, engine);
        }
    }

    /// Creates the cluster directories and registers this agent.
    async fn setup(&mut self) -> Result<(), Error> {
        let acls = acls(&self.opts);
        let dir = CreateMode::Persistent.with_acls(acls);
        for sub in ["agents", "alerts", "leader"] {
            self.client.mkdir(&self.cluster(sub), &dir).await?;
        }
        self.register().await
    }

    async fn register(&mut self) -> Result<(), Error> {
        let acls = acls(&self.opts);
        let data = serde_json::json!({
            "agent": self.opts.agent,
            "pid": std::process::id(),
            "instance": self.instance,
            "version": env!("CARGO_PKG_VERSION"),
        })
        .to_string();
        let mut name = self.opts.agent.clone();
        for _ in 0..2 {
            let path = self.cluster(&format!("agents/{name}"));
            let opts = CreateMode::Ephemeral.with_acls(acls);
            match self.client.create(&path, data.as_bytes(), &opts).await {
                Ok(_) => {
                    info!(path = %path, "registered");
                    self.registered = Some(path);
                    return Ok(());
                }
                Err(Error::NodeExists) => {
                    let (old, stat) = match self.client.get_data(&path).await {
                        Ok(r) => r,
                        Err(Error::NoNode) => continue,
                        Err(e) => return Err(e),
                    };
                    if stat.ephemeral_owner == self.client.session_id().0 {
                        self.registered = Some(path);
                        return Ok(());
                    }
                    let ours = serde_json::from_slice::<serde_json::Value>(&old)
                        .ok()
                        .and_then(|v| v["instance"].as_str().map(|s| s == self.instance))
                        .unwrap_or(false);
                    if ours {
                        // Left over from our own expired session.
                        let _ = self.client.delete(&path, None).await;
                        continue;
                    }
                    warn!(path = %path, "another agent is registered under this name; adding the session id");
                    name = format!("{}-{}", self.opts.agent, self.client.session_id());
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn start_watches(&mut self, config: &Config) {
        for t in self.path_tasks.drain(..) {
            t.abort();
        }
        self.observations.clear();
        self.read_errors.clear();
        for (path, spec) in &config.paths {
            if !self.oneshot {
                match monitor::start_persistent(
                    self.client.clone(),
                    path.clone(),
                    spec.clone(),
                    self.obs_tx.clone(),
                )
                .await
                {
                    Ok(task) => {
                        self.path_tasks.push(task);
                        continue;
                    }
                    Err(Error::Unimplemented) | Err(Error::UnexpectedError(_)) => {
                        warn!(
                            "the server has no persistent watches (ZooKeeper < 3.6); using one-shot watches"
                        );
                        self.oneshot = true;
                    }
                    Err(e) => {
                        warn!(path = %path, error = %e, "cannot add a persistent watch; using one-shot watches for it");
                    }
                }
            }
            self.path_tasks.push(monitor::start_oneshot(
                self.client.clone(),
                path.clone(),
                spec.clone(),
                self.obs_tx.clone(),
            ));
        }
    }

    fn on_read(&mut self, ev: PathEvent, config: &Config, engine: &mut Engine) {
        let Some(spec) = config.paths.get(&ev.path) else {
            return;
        };
        match ev.result {
            Ok(obs) => {
                let c = evaluate(spec, &obs, now_ms());
                debug!(path = %ev.path, state = %c.state, message = %c.message, "evaluated");
                if engine.last_known(&ev.path).map(|l| l.state) != Some(c.state) {
                    info!(path = %ev.path, state = %c.state, message = %c.message, "compliance changed");
                }
                self.read_errors.remove(&ev.path);
                self.observations.insert(ev.path.clone(), obs);
                engine.observe(&ev.path, c, Instant::now());
            }
            Err(e) => {
                warn!(path = %ev.path, error = %e, "cannot read path");
                self.read_errors.insert(ev.path.clone(), e.clone());
                engine.observe(
                    &ev.path,
                    Compliance::new(State::Unknown, format!("Cannot read the path: {e}")),
                    Instant::now(),
                );
            }
        }
    }

    async fn apply_config(&mut self, config: &Config, engine: &mut Engine) {
        engine.retain_paths(config);
        engine.mark_stale();
        // Re-read the records (new paths may have some) once the deliveries
        // in flight have finished and been recorded; decide nothing until then.
        self.reload_records = true;
        self.start_watches(config).await;
    }

    async fn tick(&mut self, loaded: &Loaded, engine: &mut Engine) {
        let config = &loaded.config;
        if !self.connected {
            return;
        }
        if self.registered.is_none() {
            let _ = self.register().await;
        }
        // Staleness is a matter of time, not of events.
        let now = now_ms();
        for (path, spec) in &config.paths {
            if spec.stale_after.is_some()
                && let Some(obs) = self.observations.get(path)
            {
                let c = evaluate(spec, obs, now);
                if engine.last_known(path) != Some(&c) {
                    engine.observe(path, c, Instant::now());
                }
            }
        }
        if self.lock.is_none()
            && self.lock_task.is_none()
            && Instant::now() >= self.next_lock_attempt
        {
            self.contend();
        }
        if self.lock.is_some() && !engine.is_active() {
            match self.load_records(config).await {
                Ok(records) => {
                    info!(records = records.len(), "alert records loaded; alerting");
                    engine.activate(records);
                }
                Err(e) => {
                    warn!(error = %e, "cannot load alert records");
                    if matches!(e, Error::RuntimeInconsistent) {
                        self.drop_leadership(engine);
                    }
                    return;
                }
            }
        }
        if self.reload_records {
            if !self.deliveries.is_empty() {
                return;
            }
            self.reload_records = false;
            engine.deactivate();
            return;
        }
        if !engine.is_active() {
            return;
        }
        let decided = engine.decide(config, Instant::now(), now_ms(), &self.shared.agent);
        for n in decided {
            if let Err(e) = self.write_record(&n.record).await {
                warn!(path = %n.record.path, error = %e, "cannot record the alert; not sending it");
                engine.deactivate();
                if matches!(e, Error::RuntimeInconsistent | Error::NoNode) {
                    self.drop_leadership(engine);
                }
                return;
            }
            let Some(spec) = config.paths.get(&n.record.path) else {
                continue;
            };
            info!(path = %n.record.path, kind = n.record.notification.as_str(), repeat = n.repeat, message = %n.record.message, "sending notification");
            let notifier = loaded.notifier.clone();
            let alerters = spec.alerter.clone();
            let record = n.record;
            let repeat = n.repeat;
            self.deliveries.spawn(async move {
                let ok = notifier.deliver(&record, &alerters, repeat).await;
                (record, ok)
            });
        }
    }

    async fn delivered(&mut self, mut record: AlertRecord, ok: bool, engine: &mut Engine) {
        record.delivery = if ok {
            Delivery::Delivered
        } else {
            Delivery::Failed
        };
        match self.write_record(&record).await {
            Ok(()) => engine.finish(record),
            Err(e) => {
                warn!(path = %record.path, error = %e, "cannot record the delivery");
                engine.deactivate();
            }
        }
    }

    /// Writes an alert record, fenced by the leader lock.
    async fn write_record(&self, record: &AlertRecord) -> Result<(), Error> {
        let Some(lock) = &self.lock else {
            return Err(Error::RuntimeInconsistent);
        };
        let path = self.cluster(&format!("alerts/{}", record_name(&record.path)));
        let data = serde_json::to_vec(record).expect("records serialize");
        match lock.set_data(&path, &data, None).await {
            Ok(_) => Ok(()),
            Err(Error::NoNode) => {
                let opts = CreateMode::Persistent.with_acls(acls(&self.opts));
                match lock.create(&path, &data, &opts).await {
                    Ok(_) => Ok(()),
                    Err(Error::NodeExists) => lock.set_data(&path, &data, None).await.map(|_| ()),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    async fn load_records(&self, config: &Config) -> Result<BTreeMap<String, AlertRecord>, Error> {
        let mut records = BTreeMap::new();
        for (path, spec) in &config.paths {
            if spec.alerter.is_empty() {
                continue;
            }
            let node = self.cluster(&format!("alerts/{}", record_name(path)));
            match self.client.get_data(&node).await {
                Ok((data, _)) => match serde_json::from_slice::<AlertRecord>(&data) {
                    Ok(r) => {
                        records.insert(path.clone(), r);
                    }
                    Err(e) => {
                        warn!(node = %node, error = %e, "ignoring an unreadable alert record")
                    }
                },
                Err(Error::NoNode) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(records)
    }

    fn contend(&mut self) {
        let client = self.client.clone();
        let dir = self.cluster("leader");
        let data = self.shared.agent.clone().into_bytes();
        let acls = acls(&self.opts);
        debug!(dir = %dir, "contending for leadership");
        self.lock_task = Some(tokio::spawn(async move {
            let prefix = LockPrefix::new_curator(&dir, "latch-")?;
            let options = LockOptions::new(acls)
                .with_ancestor_options(CreateMode::Persistent.with_acls(acls))?;
            let lock = client.lock(prefix, &data, options).await?;
            Ok(lock.into_owned())
        }));
    }

    fn became_leader(&mut self, lock: OwnedLockClient) {
        info!(lock = %lock.lock_path(), "became the alerting leader");
        let client = self.client.clone();
        let path = lock.lock_path().to_string();
        let lost = self.lost_tx.clone();
        self.lock_watch = Some(tokio::spawn(async move {
            loop {
                match client.check_and_watch_stat(&path).await {
                    Ok((None, _)) => {
                        let _ = lost.send(());
                        return;
                    }
                    Ok((Some(_), w)) => {
                        let ev = w.changed().await;
                        if ev.event_type == zookeeper_client::EventType::Session {
                            return;
                        }
                        if ev.event_type == zookeeper_client::EventType::NodeDeleted {
                            let _ = lost.send(());
                            return;
                        }
                    }
                    Err(Error::ConnectionLoss) => {
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    Err(_) => return,
                }
            }
        }));
        self.lock = Some(lock);
    }

    /// Stops alerting until connected again and records are re-read.
    fn suspend(&mut self, engine: &mut Engine) {
        if !self.deliveries.is_empty() {
            warn!(
                deliveries = self.deliveries.len(),
                "aborting deliveries in flight; the next leader re-sends them"
            );
        }
        self.deliveries.abort_all();
        engine.deactivate();
    }

    fn drop_leadership(&mut self, engine: &mut Engine) {
        self.suspend(engine);
        if let Some(w) = self.lock_watch.take() {
            w.abort();
        }
        if let Some(lock) = self.lock.take() {
            info!(lock = %lock.lock_path(), "leadership released");
        }
        self.next_lock_attempt = Instant::now() + Duration::from_secs(1);
    }

    /// Tears down everything tied to this session.
    fn stop(&mut self, engine: &mut Engine) {
        self.drop_leadership(engine);
        if let Some(t) = self.lock_task.take() {
            t.abort();
        }
        for t in self.path_tasks.drain(..) {
            t.abort();
        }
        engine.mark_stale();
    }

    fn publish(&self, config: &Config, engine: &Engine) {
        let mut snap = Snapshot {
            connected: self.connected,
            session_id: Some(self.client.session_id().to_string()),
            leader: self.lock.is_some(),
            alerting: self.connected && engine.is_active(),
            watch_mode: if self.oneshot {
                "oneshot"
            } else {
                "persistent"
            },
            alerters: alerter_kinds(config),
            paths: BTreeMap::new(),
            alerts: engine.records().cloned().unwrap_or_default(),
        };
        for (path, spec) in &config.paths {
            let mut st = blank_status(spec);
            if let Some(obs) = self.observations.get(path) {
                st.exists = Some(obs.exists);
                st.children = obs.children;
            }
            st.compliance = if !self.connected {
                unknown_while_disconnected(engine.last_known(path))
            } else if let Some(e) = self.read_errors.get(path) {
                Compliance::new(State::Unknown, format!("Cannot read the path: {e}"))
            } else if let Some(obs) = self.observations.get(path) {
                evaluate(spec, obs, now_ms())
            } else {
                Compliance::not_read()
            };
            snap.paths.insert(path.clone(), st);
        }
        self.shared.publish(snap);
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        for t in self.path_tasks.drain(..) {
            t.abort();
        }
        if let Some(t) = self.lock_task.take() {
            t.abort();
        }
        if let Some(w) = self.lock_watch.take() {
            w.abort();
        }
        self.deliveries.abort_all();
    }
}
