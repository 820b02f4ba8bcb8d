//! `seki serve`: a read-only local web server showing sessions live, from
//! their run directories (a session in this process's neighbour, on a Slurm
//! node writing to a shared folder, or one long finished).
//!
//! Its pages are the report's ([`crate::report::html`]) with a live section
//! on top ([`live`]), rendered again when a journal, summary or knowledge
//! base file changes, or a worker starts an evaluation in flight (sizes and
//! modification times, and the workers' `started.json`, are looked at on a
//! request, at most every [`RECHECK`]), and pushed to the page as
//! server-sent events (`/events`; `/api/state` for polling), the live
//! section's HTML with them; the page swaps that in at once and itself at
//! most every 10 s. Nothing is served from the disk by path: the routes are `/`, `/kb`,
//! `/api/state`, `/api/live` and `/events`, and a request naming anything else, or with a path that
//! tries to climb (`..`, `//`, `\`, any percent-encoding), or a target
//! longer than [`MAX_TARGET`], gets a 4xx. It writes nothing.

pub mod live;

use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use live::{LiveRun, Sources};
use std::convert::Infallible;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The longest request target (path and query) served.
pub const MAX_TARGET: usize = 2048;
/// How often, at most, the files are looked at again.
pub const RECHECK: Duration = Duration::from_secs(1);
/// How often an open event stream looks for a change.
const PUSH_EVERY: Duration = Duration::from_secs(1);

/// A server failure.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A folder given does not exist.
    #[error("{0}: no such folder")]
    Missing(PathBuf),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The server stopped on an I/O error.
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
}

/// What was rendered from the files at one moment.
#[derive(Debug)]
pub struct Snapshot {
    /// The runs' page's version: it changes when what the page shows does.
    pub runs_version: u64,
    /// The runs' files' fingerprint.
    pub runs_files: u64,
    /// The evaluations in flight (run directory, request) and whether the
    /// page shows their worker as started.
    pub watch: Vec<(PathBuf, String, bool)>,
    /// The knowledge base's files' fingerprint.
    pub kb_version: u64,
    /// The runs' page.
    pub runs_page: Arc<str>,
    /// Its live section alone.
    pub live_card: Arc<str>,
    /// The knowledge base's page, when one was given.
    pub kb_page: Option<Arc<str>>,
    /// The state, as JSON.
    pub state: Arc<str>,
}

#[derive(Debug, Clone)]
struct Cache {
    checked: Option<Instant>,
    snap: Option<Arc<Snapshot>>,
    /// How long the last look that rendered took.
    cost: Duration,
}

/// What the handlers share.
#[derive(Debug)]
struct Shared {
    sources: Sources,
    /// Whether the server listens on a loopback address.
    loopback: bool,
    cache: tokio::sync::Mutex<Cache>,
}

/// The snapshot for `sources` now, rebuilding only what changed since `prev`.
fn rebuild(sources: &Sources, prev: Option<Arc<Snapshot>>) -> Arc<Snapshot> {
    let dirs = sources.run_dirs();
    let runs_files = sources.runs_fingerprint(&dirs);
    let kb_version = sources.kb_fingerprint();
    // The runs are as shown if their files are, and no evaluation in
    // flight has started (or stopped looking started) since.
    let runs_same = prev.as_ref().is_some_and(|p| {
        p.runs_files == runs_files
            && p.watch
                .iter()
                .all(|(dir, request, shown)| live::has_started(dir, request) == *shown)
    });
    if let Some(p) = prev
        .as_ref()
        .filter(|p| runs_same && p.kb_version == kb_version)
    {
        return p.clone();
    }
    let has_kb = sources.kb.is_some();
    let (runs, runs_version, watch, runs_page, live_card): (
        Option<Vec<LiveRun>>,
        _,
        _,
        _,
        Arc<str>,
    ) = match &prev {
        Some(p) if runs_same => (
            None,
            p.runs_version,
            p.watch.clone(),
            p.runs_page.clone(),
            p.live_card.clone(),
        ),
        _ => {
            let runs: Vec<LiveRun> = dirs.iter().map(|d| LiveRun::read(d)).collect();
            let watch: Vec<(PathBuf, String, bool)> = runs
                .iter()
                .flat_map(|r| {
                    r.in_flight
                        .iter()
                        .map(|f| (r.dir.clone(), f.request.clone(), f.worker.is_some()))
                })
                .collect();
            let mut h = DefaultHasher::new();
            runs_files.hash(&mut h);
            watch.hash(&mut h);
            let version = h.finish();
            let card = live::live_card(&runs, has_kb);
            let page = live::runs_page(&runs, version, has_kb, &card);
            (Some(runs), version, watch, Arc::from(page), Arc::from(card))
        }
    };
    let kb_page = match (&prev, &sources.kb) {
        (_, None) => None,
        (Some(p), Some(_)) if p.kb_version == kb_version => p.kb_page.clone(),
        (_, Some(dir)) => Some(Arc::from(live::kb_page(dir, kb_version))),
    };
    let state = match (runs, &prev) {
        (Some(runs), _) => Arc::from(live::state_json(
            &runs,
            runs_version,
            kb_version,
            &live_card,
        )),
        (None, Some(p)) => {
            // Only the knowledge base changed: the runs' state as it was,
            // under the new version.
            let mut v: serde_json::Value =
                serde_json::from_str(&p.state).unwrap_or(serde_json::Value::Null);
            v["kb_version"] = serde_json::Value::String(kb_version.to_string());
            Arc::from(v.to_string())
        }
        (None, None) => Arc::from(live::state_json(&[], runs_version, kb_version, &live_card)),
    };
    Arc::new(Snapshot {
        runs_version,
        runs_files,
        watch,
        kb_version,
        runs_page,
        live_card,
        kb_page,
        state,
    })
}

impl Shared {
    /// The snapshot, looked at again if the last look is older than
    /// RECHECK, or than four times what the last rendering took (so that
    /// rendering a large run takes at most a fifth of a core).
    async fn fresh(&self) -> Option<Arc<Snapshot>> {
        let mut c = self.cache.lock().await;
        if let (Some(t), Some(s)) = (c.checked, &c.snap) {
            if t.elapsed() < RECHECK.max(c.cost * 4) {
                return Some(s.clone());
            }
        }
        let sources = self.sources.clone();
        let prev = c.snap.clone();
        let start = Instant::now();
        if let Ok(snap) = tokio::task::spawn_blocking(move || rebuild(&sources, prev)).await {
            let rendered = c.snap.as_ref().is_none_or(|p| !Arc::ptr_eq(p, &snap));
            if rendered {
                c.cost = start.elapsed();
            }
            c.snap = Some(snap);
            c.checked = Some(Instant::now());
        }
        c.snap.clone()
    }
}

/// Whether an address is the loopback (reachable from this machine only).
pub fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().is_loopback()
}

/// A bound server, not yet serving.
pub struct Server {
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
}

impl Server {
    /// Check the folders and bind `addr` (port 0: any free port).
    pub async fn bind(addr: SocketAddr, sources: Sources) -> Result<Server, ServeError> {
        for d in sources
            .runs
            .iter()
            .chain(sources.runs_root.iter())
            .chain(sources.kb.iter())
        {
            if !d.is_dir() {
                return Err(ServeError::Missing(d.clone()));
            }
        }
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Bind { addr, source })?;
        let loopback = listener.local_addr().is_ok_and(|a| is_loopback(&a));
        Ok(Server {
            listener,
            shared: Arc::new(Shared {
                sources,
                loopback,
                cache: tokio::sync::Mutex::new(Cache {
                    checked: None,
                    snap: None,
                    cost: Duration::ZERO,
                }),
            }),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> Result<SocketAddr, ServeError> {
        Ok(self.listener.local_addr()?)
    }

    /// Serve until the process is stopped.
    pub async fn run(self) -> Result<(), ServeError> {
        let app = router(self.shared);
        axum::serve(self.listener, app).await?;
        Ok(())
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(runs_page))
        .route("/kb", get(kb_page))
        .route("/api/state", get(state))
        .route("/api/live", get(live_section))
        .route("/events", get(events))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(shared.clone(), guard))
        .with_state(shared)
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text,
    )
        .into_response()
}

/// Refuse, before any route is looked at, what could name a file outside
/// the folders given or is not a plain read: long targets, paths that
/// climb or are encoded, methods other than GET and HEAD, and (on a
/// loopback address) a `Host` that is not loopback.
async fn guard(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let target = req
        .uri()
        .path_and_query()
        .map_or(req.uri().path(), |p| p.as_str());
    if target.len() > MAX_TARGET {
        return plain(StatusCode::URI_TOO_LONG, "request target too long\n");
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "read-only: GET only\n");
    }
    if !host_allowed(shared.loopback, &req) {
        return plain(
            StatusCode::FORBIDDEN,
            "this server answers to localhost only (start it with --bind to serve other names)\n",
        );
    }
    let path = req.uri().path();
    if !path.starts_with('/')
        || path.contains("..")
        || path.contains("//")
        || path.contains('\\')
        || path.contains('%')
        || path.chars().any(char::is_control)
    {
        return plain(StatusCode::BAD_REQUEST, "bad path\n");
    }
    next.run(req).await
}

/// On a loopback address, the `Host` a request names must be loopback too
/// (`localhost`, `127.x.x.x`, `[::1]`): a web page elsewhere cannot then
/// read the runs through a name of its own that resolves to 127.0.0.1 (DNS
/// rebinding). Requests without a `Host` (HTTP/1.0) pass.
fn host_allowed(loopback: bool, req: &Request) -> bool {
    let Some(host) = req.headers().get(header::HOST) else {
        return true;
    };
    let Ok(host) = host.to_str() else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(n, _)| n),
    };
    !loopback
        || name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

async fn not_found() -> Response {
    plain(StatusCode::NOT_FOUND, "not found\n")
}

fn unavailable() -> Response {
    plain(StatusCode::SERVICE_UNAVAILABLE, "cannot read the runs\n")
}

fn html(page: Arc<str>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        page.to_string(),
    )
        .into_response()
}

async fn runs_page(State(shared): State<Arc<Shared>>) -> Response {
    match shared.fresh().await {
        Some(s) => html(s.runs_page.clone()),
        None => unavailable(),
    }
}

async fn live_section(State(shared): State<Arc<Shared>>) -> Response {
    match shared.fresh().await {
        Some(s) => html(s.live_card.clone()),
        None => unavailable(),
    }
}

async fn kb_page(State(shared): State<Arc<Shared>>) -> Response {
    match shared.fresh().await {
        Some(s) => match &s.kb_page {
            Some(p) => html(p.clone()),
            None => plain(
                StatusCode::NOT_FOUND,
                "no knowledge base was given (seki serve --kb DIR)\n",
            ),
        },
        None => unavailable(),
    }
}

async fn state(State(shared): State<Arc<Shared>>) -> Response {
    match shared.fresh().await {
        Some(s) => (
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            s.state.to_string(),
        )
            .into_response(),
        None => unavailable(),
    }
}

/// The state, pushed when it changes (first at once).
async fn events(State(shared): State<Arc<Shared>>) -> Response {
    let stream =
        futures_util::stream::unfold((shared, None::<(u64, u64)>), |(shared, last)| async move {
            loop {
                if last.is_some() {
                    tokio::time::sleep(PUSH_EVERY).await;
                }
                let Some(snap) = shared.fresh().await else {
                    tokio::time::sleep(PUSH_EVERY).await;
                    continue;
                };
                let now = (snap.runs_version, snap.kb_version);
                if last != Some(now) {
                    let event = SseEvent::default().data(&*snap.state);
                    return Some((Ok::<_, Infallible>(event), (shared, Some(now))));
                }
            }
        });
    (
        [(header::CACHE_CONTROL, "no-store")],
        Sse::new(stream).keep_alive(KeepAlive::default()),
    )
        .into_response()
}
