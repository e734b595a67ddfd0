//! Reading and watching the configured znodes.
//!
//! One task per path. With ZooKeeper 3.6+ it holds a persistent watch
//! (`addWatch`, mode `PERSISTENT`: created, deleted, data and children
//! events of that one znode, including a znode that does not exist yet) and
//! re-reads the znode after each event. The task re-reads everything after
//! every reconnect as well, because events that happen while disconnected
//! are not replayed (ZOOKEEPER-4698). Older servers answer `addWatch` with
//! "unimplemented"; the agent then falls back to one-shot watches that are
//! re-armed on every read.
//!
//! Each read produces a [`PathEvent`] for the agent loop; the task never
//! evaluates or alerts itself.

use std::time::Duration;

use futures::FutureExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::debug;
use zookeeper_client::{AddWatchMode, Client, Error, EventType, SessionState};

use crate::config::PathSpec;
use crate::eval::Observation;

/// How long to wait before re-reading a path whose read failed (e.g. no
/// permission) when no event arrives.
const RETRY_READ: Duration = Duration::from_secs(5);

/// The result of reading one path.
#[derive(Debug)]
pub struct PathEvent {
    /// The watched path.
    pub path: String,
    /// What was read, or why it could not be.
    pub result: Result<Observation, String>,
}

/// Reads what `spec` needs from `path`: the stat always, the data when the
/// spec checks it.
pub async fn read(client: &Client, path: &str, spec: &PathSpec) -> Result<Observation, Error> {
    let stat = if spec.data.is_some() {
        match client.get_data(path).await {
            Ok((data, stat)) => {
                return Ok(Observation {
                    exists: true,
                    children: Some(stat.num_children.max(0) as u64),
                    data: Some(data),
                    mtime_ms: Some(stat.mtime),
                });
            }
            Err(Error::NoNode) => None,
            Err(e) => return Err(e),
        }
    } else {
        client.check_stat(path).await?
    };
    Ok(match stat {
        Some(stat) => Observation {
            exists: true,
            children: Some(stat.num_children.max(0) as u64),
            data: None,
            mtime_ms: Some(stat.mtime),
        },
        None => Observation::default(),
    })
}

fn is_terminal(e: &Error) -> bool {
    matches!(
        e,
        Error::SessionExpired | Error::ClientClosed | Error::AuthFailed
    )
}

/// Adds a persistent watch on `path` and spawns the task that reads it
/// after every event. Fails with [`Error::Unimplemented`] (or a similar
/// error) on servers older than 3.6.
pub async fn start_persistent(
    client: Client,
    path: String,
    spec: PathSpec,
    tx: mpsc::UnboundedSender<PathEvent>,
) -> Result<JoinHandle<()>, Error> {
    let mut watcher = client.watch(&path, AddWatchMode::Persistent).await?;
    Ok(tokio::spawn(async move {
        loop {
            let result = read(&client, &path, &spec).await;
            let mut retry = None;
            match result {
                Ok(obs) => {
                    if tx
                        .send(PathEvent {
                            path: path.clone(),
                            result: Ok(obs),
                        })
                        .is_err()
                    {
                        return;
                    }
                }
                Err(e) if is_terminal(&e) => return,
                // Wait for the reconnect event (or, as a safety net, a
                // few seconds), then read again.
                Err(Error::ConnectionLoss) => retry = Some(RETRY_READ),
                Err(e) => {
                    retry = Some(RETRY_READ);
                    if tx
                        .send(PathEvent {
                            path: path.clone(),
                            result: Err(e.to_string()),
                        })
                        .is_err()
                    {
                        return;
                    }
                }
            }
            // Wait for a reason to read again.
            loop {
                let event = match retry {
                    Some(d) => match tokio::time::timeout(d, watcher.changed()).await {
                        Ok(ev) => ev,
                        Err(_) => break,
                    },
                    None => watcher.changed().await,
                };
                if event.event_type != EventType::Session {
                    debug!(path = %path, event = ?event.event_type, "znode event");
                    break;
                }
                match event.session_state {
                    s if s.is_terminated() => return,
                    SessionState::SyncConnected | SessionState::ConnectedReadOnly => break,
                    _ => continue,
                }
            }
            // Coalesce events already queued: one read covers them all.
            while let Some(event) = watcher.changed().now_or_never() {
                if event.event_type == EventType::Session && event.session_state.is_terminated() {
                    return;
                }
            }
        }
    }))
}

/// Spawns the task that watches `path` with one-shot watches (for
/// ZooKeeper servers without `addWatch`).
pub fn start_oneshot(
    client: Client,
    path: String,
    spec: PathSpec,
    tx: mpsc::UnboundedSender<PathEvent>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut state = client.state_watcher();
        loop {
            // An exists watch fires on create, delete and data change.
            let (stat, exists_watch) = match client.check_and_watch_stat(&path).await {
                Ok(r) => r,
                Err(e) if is_terminal(&e) => return,
                Err(e) => {
                    if !matches!(e, Error::ConnectionLoss)
                        && tx
                            .send(PathEvent {
                                path: path.clone(),
                                result: Err(e.to_string()),
                            })
                            .is_err()
                    {
                        return;
                    }
                    if !wait_reconnected(&mut state, RETRY_READ).await {
                        return;
                    }
                    continue;
                }
            };
            let mut obs = Observation::default();
            let mut child_watch = None;
            if let Some(stat) = stat {
                obs.exists = true;
                obs.children = Some(stat.num_children.max(0) as u64);
                obs.mtime_ms = Some(stat.mtime);
                if spec.children.is_some() {
                    match client.get_and_watch_children(&path).await {
                        Ok((children, _, w)) => {
                            obs.children = Some(children.len() as u64);
                            child_watch = Some(w);
                        }
                        Err(Error::NoNode) => continue,
                        Err(e) if is_terminal(&e) => return,
                        Err(_) => {
                            if !wait_reconnected(&mut state, RETRY_READ).await {
                                return;
                            }
                            continue;
                        }
                    }
                }
                if spec.data.is_some() {
                    match client.get_data(&path).await {
                        Ok((data, _)) => obs.data = Some(data),
                        Err(Error::NoNode) => continue,
                        Err(e) if is_terminal(&e) => return,
                        Err(_) => {
                            if !wait_reconnected(&mut state, RETRY_READ).await {
                                return;
                            }
                            continue;
                        }
                    }
                }
            }
            if tx
                .send(PathEvent {
                    path: path.clone(),
                    result: Ok(obs),
                })
                .is_err()
            {
                return;
            }
            let child_fired = async {
                match child_watch {
                    Some(w) => w.changed().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                ev = exists_watch.changed() => {
                    if ev.event_type == EventType::Session && ev.session_state.is_terminated() {
                        return;
                    }
                }
                ev = child_fired => {
                    if ev.event_type == EventType::Session && ev.session_state.is_terminated() {
                        return;
                    }
                }
                s = state.changed() => {
                    if s.is_terminated() {
                        return;
                    }
                    // A disconnect: re-read once connected again.
                    if !wait_reconnected(&mut state, RETRY_READ).await {
                        return;
                    }
                }
            }
        }
    })
}

/// Waits until the session is connected (or `max` passes); false when the
/// session has ended.
async fn wait_reconnected(state: &mut zookeeper_client::StateWatcher, max: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + max;
    loop {
        match state.peek_state() {
            s if s.is_terminated() => return false,
            SessionState::SyncConnected | SessionState::ConnectedReadOnly => return true,
            _ => {}
        }
        match tokio::time::timeout_at(deadline, state.changed()).await {
            Ok(s) if s.is_terminated() => return false,
            Ok(_) => {}
            Err(_) => return true,
        }
    }
}
