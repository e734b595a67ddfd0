//! zk-stats' HTTP server: axum on a single-threaded tokio runtime, reading
//! the snapshots the capture thread publishes.
//!
//! Bounded by design: one runtime thread (the capture keeps its own core),
//! at most `--max-http-requests` requests in progress (more get 503), and
//! a response cache per publication, so a flood of identical requests
//! costs one rendering per refresh. Every query string is checked: unknown
//! parameters or bad values get 400 with a message saying what is allowed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use tokio::sync::Semaphore;
use zk_wire::stats::tables::Scope;

use super::render::{self, InstanceInfo, RenderOpts};
use super::snapshot::{CaptureState, Shared, View};
use crate::capture::Stop;

/// What every handler reads.
pub struct HttpState {
    /// The capture thread's publications.
    pub shared: Arc<Shared>,
    /// Row limits and redaction.
    pub opts: RenderOpts,
    /// Static facts for `/json/info`.
    pub info: InstanceInfo,
    cache: Mutex<Cache>,
    limit: Arc<Semaphore>,
}

#[derive(Default)]
struct Cache {
    generation: u64,
    bodies: HashMap<String, Bytes>,
}

impl HttpState {
    /// State over `shared`, serving at most `max_requests` at once.
    pub fn new(
        shared: Arc<Shared>,
        opts: RenderOpts,
        info: InstanceInfo,
        max_requests: usize,
    ) -> Self {
        HttpState {
            shared,
            opts,
            info,
            cache: Mutex::new(Cache::default()),
            limit: Arc::new(Semaphore::new(max_requests.max(1))),
        }
    }

    /// The body for `key` at the current publication, rendered once.
    fn cached(
        &self,
        key: String,
        render: impl FnOnce(&super::snapshot::Published) -> String,
    ) -> Bytes {
        let p = self.shared.get();
        if let Ok(c) = self.cache.lock()
            && c.generation == p.generation
            && let Some(b) = c.bodies.get(&key)
        {
            return b.clone();
        }
        let body = Bytes::from(render(&p));
        if let Ok(mut c) = self.cache.lock() {
            if c.generation != p.generation {
                c.generation = p.generation;
                c.bodies.clear();
            }
            c.bodies.insert(key, body.clone());
        }
        body
    }
}

type St = State<Arc<HttpState>>;

fn bad_request(msg: impl Into<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{}\n", msg.into()),
    )
        .into_response()
}

fn json_body(body: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// `?window=last|cumulative&top=N`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TableQuery {
    window: Option<String>,
    top: Option<String>,
}

/// `?window=last|cumulative`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WindowQuery {
    window: Option<String>,
}

/// No parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoQuery {}

const QUERY_HELP: &str = "allowed: window=last|cumulative (default last: the last complete window), top=N (rows per opname, 0 = all)";

fn parse_window(w: Option<&str>) -> Result<View, String> {
    match w {
        None | Some("last") | Some("window") => Ok(View::Window),
        Some("cumulative") => Ok(View::Cumulative),
        Some(other) => Err(format!("bad window {other:?}: {QUERY_HELP}")),
    }
}

fn query_error(e: impl std::fmt::Display) -> Response {
    bad_request(format!("bad query string ({e}); {QUERY_HELP}"))
}

async fn keyed(
    s: St,
    q: Result<Query<TableQuery>, axum::extract::rejection::QueryRejection>,
    scope: Scope,
) -> Response {
    let q = match q {
        Ok(Query(q)) => q,
        Err(e) => return query_error(e.body_text()),
    };
    let view = match parse_window(q.window.as_deref()) {
        Ok(v) => v,
        Err(m) => return bad_request(m),
    };
    let mut opts = s.opts;
    if let Some(t) = &q.top {
        match t.parse::<usize>() {
            Ok(n) => opts.max_results = n,
            Err(_) => return bad_request(format!("bad top {t:?}: {QUERY_HELP}")),
        }
    }
    let key = format!("{}:{view:?}:{}", scope.name(), opts.max_results);
    let body = s.cached(key, |p| {
        let parts = p.parts(view);
        serde_json::to_string(&render::keyed_json(&parts, scope, &opts)).unwrap_or_default()
    });
    json_body(body)
}

async fn paths(
    s: St,
    q: Result<Query<TableQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    keyed(s, q, Scope::Paths).await
}

async fn ips(
    s: St,
    q: Result<Query<TableQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    keyed(s, q, Scope::Ips).await
}

async fn auths(
    s: St,
    q: Result<Query<TableQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    keyed(s, q, Scope::Auths).await
}

async fn auths_dump(
    State(s): St,
    q: Result<Query<NoQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if let Err(e) = q {
        return bad_request(format!(
            "bad query string ({}); this endpoint takes no parameters",
            e.body_text()
        ));
    }
    let show = s.opts.show_secrets;
    let body = s.cached("auths-dump".into(), |p| {
        serde_json::to_string(&render::auths_dump(p, show)).unwrap_or_default()
    });
    json_body(body)
}

async fn info(
    State(s): St,
    q: Result<Query<NoQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if let Err(e) = q {
        return bad_request(format!(
            "bad query string ({}); this endpoint takes no parameters",
            e.body_text()
        ));
    }
    let p = s.shared.get();
    let v = render::info_json(&p, &s.info);
    json_body(Bytes::from(v.to_string()))
}

async fn latencies(
    State(s): St,
    q: Result<Query<WindowQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let q = match q {
        Ok(Query(q)) => q,
        Err(e) => {
            return bad_request(format!(
                "bad query string ({}); allowed: window=last|cumulative",
                e.body_text()
            ));
        }
    };
    let view = match parse_window(q.window.as_deref()) {
        Ok(v) => v,
        Err(m) => return bad_request(m),
    };
    let body = s.cached(format!("latencies:{view:?}"), |p| {
        render::latencies_json(&p.parts(view), view).to_string()
    });
    json_body(body)
}

async fn metrics(
    State(s): St,
    q: Result<Query<NoQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if let Err(e) = q {
        return bad_request(format!(
            "bad query string ({}); this endpoint takes no parameters",
            e.body_text()
        ));
    }
    let window = s.info.window_seconds;
    let body = s.cached("metrics".into(), |p| render::prometheus(p, window));
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// `/json/top` parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TopQuery {
    window: Option<String>,
    n: Option<String>,
    depth: Option<String>,
    prefix: Option<String>,
    client: Option<String>,
    sort: Option<String>,
}

async fn top(
    State(s): St,
    q: Result<Query<TopQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    const HELP: &str = "allowed: window=last|cumulative, n=N (rows, default 10, 0 = all), depth=D, prefix=/PATH, client=IP, sort=requests|bytes|writes|reads|watches|events";
    let q = match q {
        Ok(Query(q)) => q,
        Err(e) => return bad_request(format!("bad query string ({}); {HELP}", e.body_text())),
    };
    let view = match parse_window(q.window.as_deref()) {
        Ok(v) => v,
        Err(m) => return bad_request(m),
    };
    let num = |v: &Option<String>, name: &str, default: usize| match v.as_deref() {
        None => Ok(default),
        Some(t) => t
            .parse::<usize>()
            .map_err(|_| format!("bad {name} {t:?}: {HELP}")),
    };
    let (limit, depth) = match (num(&q.n, "n", 10), num(&q.depth, "depth", 0)) {
        (Ok(n), Ok(d)) => (n, d),
        (Err(m), _) | (_, Err(m)) => return bad_request(m),
    };
    let sort = match q.sort.as_deref().map(super::top::SortBy::parse) {
        None => super::top::SortBy::Requests,
        Some(Some(o)) => o,
        Some(None) => return bad_request(format!("bad sort: {HELP}")),
    };
    let client = match q.client.as_deref().map(str::parse::<std::net::IpAddr>) {
        None => None,
        Some(Ok(ip)) => Some(ip),
        Some(Err(_)) => return bad_request(format!("bad client: {HELP}")),
    };
    let o = super::top::TopOpts {
        depth,
        prefix: q.prefix.filter(|p| !p.is_empty()),
        client,
        sort,
        limit,
    };
    // Filtered answers are not cached: their keys are the client's to choose.
    if o.prefix.is_some() || o.client.is_some() {
        let p = s.shared.get();
        return json_body(Bytes::from(
            render::top_json(&p.parts(view), view, &o).to_string(),
        ));
    }
    let key = format!("top:{view:?}:{}:{}:{}", o.limit, o.depth, o.sort.name());
    let body = s.cached(key, |p| {
        render::top_json(&p.parts(view), view, &o).to_string()
    });
    json_body(body)
}

/// `?last=N`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryQuery {
    last: Option<String>,
}

async fn history(
    State(s): St,
    q: Result<Query<HistoryQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    const HELP: &str = "allowed: last=N (the last N seconds; default all kept)";
    let q = match q {
        Ok(Query(q)) => q,
        Err(e) => return bad_request(format!("bad query string ({}); {HELP}", e.body_text())),
    };
    let last = match q.last.as_deref().map(str::parse::<usize>) {
        None => None,
        Some(Ok(n)) => Some(n),
        Some(Err(_)) => {
            return bad_request(format!("bad last {:?}: {HELP}", q.last.unwrap_or_default()));
        }
    };
    let body = s.cached(format!("history:{last:?}"), |p| {
        render::history_json(p, last).to_string()
    });
    json_body(body)
}

/// The dashboard: one page, its script and style, embedded (no CDN).
async fn dashboard_page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        super::dashboard::INDEX_HTML,
    )
        .into_response()
}

async fn dashboard_js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        super::dashboard::APP_JS,
    )
        .into_response()
}

async fn dashboard_css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        super::dashboard::STYLE_CSS,
    )
        .into_response()
}

async fn healthz(State(s): St) -> Response {
    let p = s.shared.get();
    match &p.state {
        CaptureState::Failed(m) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("capture failed: {m}\n"),
        )
            .into_response(),
        CaptureState::Running => "ok\n".into_response(),
        CaptureState::Finished => "ok (capture finished)\n".into_response(),
    }
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        "not found; endpoints: / (dashboard) /json/paths /json/ips /json/auths /json/auths-dump /json/info /json/latencies /json/history /json/top /metrics /healthz\n",
    )
        .into_response()
}

async fn limit(State(s): St, req: Request, next: Next) -> Response {
    match s.limit.clone().try_acquire_owned() {
        Ok(_permit) => next.run(req).await,
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "1")],
            "too many requests in progress\n",
        )
            .into_response(),
    }
}

/// The routes.
pub fn router(state: Arc<HttpState>) -> Router {
    Router::new()
        .route("/json/paths", get(paths))
        .route("/json/ips", get(ips))
        .route("/json/auths", get(auths))
        .route("/json/auths-dump", get(auths_dump))
        .route("/json/info", get(info))
        .route("/json/latencies", get(latencies))
        .route("/json/history", get(history))
        .route("/json/top", get(top))
        .route("/", get(dashboard_page))
        .route("/dashboard/app.js", get(dashboard_js))
        .route("/dashboard/style.css", get(dashboard_css))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), limit))
        .with_state(state)
}

/// Serves on `listener` until `stop` is requested.
pub fn serve(
    listener: std::net::TcpListener,
    state: Arc<HttpState>,
    stop: Stop,
) -> anyhow::Result<()> {
    // Serving yields to capturing: this thread runs at a lower priority
    // (Linux niceness is per thread), so that a flood of requests takes
    // what the capture thread leaves, not the other way round.
    lower_priority();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()?;
    rt.block_on(async move {
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let shutdown = async move {
            while !stop.is_set() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        axum::serve(listener, router(state))
            .with_graceful_shutdown(shutdown)
            .await?;
        Ok(())
    })
}

/// Lowers the calling thread's scheduling priority (niceness +10).
fn lower_priority() {
    // SAFETY: plain syscalls on the calling thread's own id.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 10);
    }
}
