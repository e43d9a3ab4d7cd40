//! The `veilgate` sidecar proxy: the redact layer in front of configured upstreams, with
//! an admin listener, hot reload and graceful shutdown.
//!
//! ```text
//! client ──> listen ──> Retention ──> ApiKey ──> Select ──> Training ──> Redact ──> Capture ──> Forward ──(hyper-util + rustls, pooled)──> upstream
//!                          │                         │           │                     │            │
//!                          │      upstream by route, region,     │      opted-in only: redacted     └─ counts only ─> Metrics ──> admin /metrics
//!                          │      training consent (503 if none) │      pair ─> capture sink (JSONL)
//!                          └─ access/billing records             └─ opt-out: refuse training endpoints, set flags
//! ```
//!
//! The upstream is chosen after the tenant is known ([`proxy::Select`]): a tenant with a
//! `region` only reaches upstreams of that region, an opted-out request (tenant setting,
//! `DNT: 1`, `Sec-GPC: 1`) only upstreams with `trains_on_data = false`.
//!
//! Each request takes the configuration snapshot current when it arrives and keeps it to
//! the end, so a reload never changes the policy of a request in flight.

pub mod config;
pub mod metrics;
pub mod proxy;
pub mod telemetry;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tower::{Layer, Service};

pub use config::{Config, ConfigError};
use metrics::Metrics;
use proxy::{Forward, Router, Select};

use crate::api_key::{ApiKey, ApiKeyLayer, Pepper};
use crate::engine::{Action, Engine, Key, Redactor, ResponsePolicy};
use crate::policy::{Class, Policy};
use crate::redact::{Redact, RedactLayer};
use crate::retention::{ClientIp, Retention, RetentionLayer};
use crate::telemetry::{Stamp, event};
use crate::training::{
    Capture, CaptureLayer, CaptureOptions, CaptureSink, TenantHasher, Training, TrainingLayer,
};

/// One configuration, compiled: engine, policy, upstream clients.
#[derive(Debug)]
pub struct Runtime {
    pub config: Config,
    /// The tenants' policy (retention schedules, consent, region, overrides).
    pub policy: Arc<Policy>,
    pub router: Arc<Router>,
    /// The training capture sink, when `[training.capture]` is configured.
    pub capture: Option<Arc<CaptureSink>>,
    service: Stack,
}

/// The sidecar's service stack, outermost first.
type Stack = Retention<ApiKey<Select<Training<Redact<Capture<Forward>>>>>>;

impl Runtime {
    /// Compiles a configuration (filters, key, upstream clients).
    pub fn build(config: Config, metrics: Arc<Metrics>) -> Result<Runtime, String> {
        let r = &config.redact;
        let mut b = Engine::builder()
            .builtin()
            .allow_values(r.allow.iter().cloned());
        for p in &r.filters {
            b = b.path(p).map_err(|e| e.to_string())?;
        }
        let engine = Arc::new(b.build().map_err(|e| e.to_string())?);
        let mut redactor = Redactor::new(engine.clone()).with_key(key(r, &config.retention)?);
        if let Some(a) = r.action {
            redactor = redactor.with_action(a);
        }
        for (entity, a) in &r.entities {
            redactor = redactor.with_entity_action(entity, *a);
        }
        let action = match r.response_action.as_str() {
            "none" => None,
            a => Some(a.parse::<Action>()?),
        };
        redactor = redactor.with_response_policy(ResponsePolicy {
            restore: r.restore,
            action,
            skip: r.response_skip.iter().map(|s| s.as_str().into()).collect(),
        });
        let policy = Arc::new(config.policy());
        metrics.set_schedule(config.retention);
        let layer = RedactLayer::with_redactor(redactor)
            .policy(policy.clone())
            .body_limit(r.body_limit)
            .requests(r.requests)
            .responses(r.responses)
            .fail_open_requests(r.fail_open_requests)
            .fail_open_responses(r.fail_open_responses)
            .observer(metrics.clone());
        let router = Arc::new(Router::new(&config)?);
        let a = &config.auth;
        let pepper = match (&a.pepper_file, &a.pepper_env) {
            (Some(f), _) => Pepper::from_file(f).map_err(|e| e.to_string())?,
            (None, Some(v)) => Pepper::from_env(v).map_err(|e| e.to_string())?,
            (None, None) => Pepper::new(Key::random_bytes().to_vec()),
        };
        let mut auth = ApiKeyLayer::new(pepper)
            .key_tenants(a.key_tenants.iter().map(|(k, t)| (k.clone(), t.as_str())))
            .default_tenant(&a.default_tenant);
        if let Some(h) = &a.tenant_header {
            let name = http::HeaderName::from_bytes(h.as_bytes()).map_err(|e| e.to_string())?;
            auth = auth.trusted_tenant_header(name);
        }
        if !a.gateway_keys.is_empty() {
            auth = auth.gateway_keys(a.gateway_keys.clone());
        }
        let t = &config.training;
        let training = TrainingLayer::new(policy.clone())
            .refuse_paths(t.refuse_paths.iter().cloned())
            .refuse_file_purposes(t.refuse_file_purposes.iter().cloned())
            .body_limit(r.body_limit)
            .observer(metrics.clone());
        let capture = match &t.capture {
            Some(c) => Some(capture_sink(c, &engine)?),
            None => None,
        };
        metrics.set_capture(capture.clone());
        let capture_layer = match &capture {
            Some(sink) => CaptureLayer::new(sink.clone(), policy.clone()),
            None => CaptureLayer::off(policy.clone()),
        };
        let inner = training.layer(layer.layer(capture_layer.layer(Forward {
            router: router.clone(),
            metrics,
        })));
        let select = Select {
            inner,
            router: router.clone(),
            policy: policy.clone(),
        };
        let service = RetentionLayer::new(policy.clone()).layer(auth.layer(select));
        Ok(Runtime {
            config,
            policy,
            router,
            capture,
            service,
        })
    }
}

impl Runtime {
    /// A stamp for operational records (startup, reloads, shutdown): class security,
    /// an audit trail of the gateway's own configuration.
    pub fn ops_stamp(&self) -> Stamp {
        Stamp::now(Class::Security, &self.config.retention)
    }
}

/// The capture sink for `c`: the one already open with the same options and key (a
/// reload keeps writing to the same file from one thread), else a new one.
fn capture_sink(
    c: &config::CaptureConfig,
    engine: &Arc<Engine>,
) -> Result<Arc<CaptureSink>, String> {
    use sha2::Digest;
    type Open = Vec<(CaptureOptions, [u8; 32], std::sync::Weak<CaptureSink>)>;
    static OPEN: std::sync::Mutex<Open> = std::sync::Mutex::new(Vec::new());
    let key = match &c.key_file {
        Some(p) => std::fs::read(p)
            .map_err(|e| format!("{}: {e}", p.display()))?
            .trim_ascii()
            .to_vec(),
        None => match std::env::var(&c.key_env) {
            Ok(k) if !k.is_empty() => k.into_bytes(),
            _ => {
                event!(
                    WARN,
                    "veilgate::ops",
                    &Stamp::now(Class::Security, &Default::default()),
                    "no capture key configured: tenant hashes use a random key",
                    key_env = %c.key_env,
                );
                Key::random_bytes().to_vec()
            }
        },
    };
    let digest: [u8; 32] = sha2::Sha256::digest(&key).into();
    let options = CaptureOptions {
        path: c.path.clone(),
        max_bytes: c.max_bytes,
        queue: c.queue,
        max_record_bytes: c.max_record_bytes,
    };
    let mut open = OPEN.lock().unwrap_or_else(|p| p.into_inner());
    open.retain(|(_, _, w)| w.strong_count() > 0);
    if let Some(sink) = open
        .iter()
        .find(|(o, d, _)| *o == options && *d == digest)
        .and_then(|(_, _, w)| w.upgrade())
    {
        sink.set_redactor(Redactor::new(engine.clone()));
        return Ok(sink);
    }
    let sink = CaptureSink::open(
        options.clone(),
        TenantHasher::new(key),
        Redactor::new(engine.clone()),
    )
    .map(Arc::new)
    .map_err(|e| format!("training capture {}: {e}", c.path.display()))?;
    open.push((options, digest, Arc::downgrade(&sink)));
    Ok(sink)
}

/// The pseudonym key: `key_file`, else the `key_env` variable, else a random one (tokens
/// then change on restart, which only matters for stateful APIs).
fn key(r: &config::RedactConfig, schedule: &crate::policy::Schedule) -> Result<Key, String> {
    if let Some(p) = &r.key_file {
        let bytes = std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?;
        return Ok(Key::new(bytes.trim_ascii()));
    }
    match std::env::var(&r.key_env) {
        Ok(k) if !k.is_empty() => Ok(Key::new(k.as_bytes())),
        _ => {
            event!(
                WARN,
                "veilgate::ops",
                &Stamp::now(Class::Security, schedule),
                "no pseudonym key configured: using a random one",
                key_env = %r.key_env,
            );
            Ok(Key::random())
        }
    }
}

/// What the command line overrides in the file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub admin_listen: Option<SocketAddr>,
    /// Base URL for the default upstream.
    pub upstream: Option<String>,
}

impl Overrides {
    fn apply(&self, c: &mut Config) -> Result<(), String> {
        if let Some(l) = self.listen {
            c.listen = l;
        }
        if let Some(a) = self.admin_listen {
            c.admin_listen = a;
        }
        if let Some(u) = &self.upstream {
            let name = c
                .default_upstream
                .clone()
                .unwrap_or_else(|| c.upstreams[0].name.clone());
            if let Some(up) = c.upstreams.iter_mut().find(|x| x.name == name) {
                up.base_url = u.clone();
            }
            c.validate("--upstream", "").map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// Shared state: the current runtime and the metrics.
#[derive(Debug)]
pub struct State {
    current: RwLock<Arc<Runtime>>,
    pub metrics: Arc<Metrics>,
    draining: AtomicBool,
    path: Option<PathBuf>,
    overrides: Overrides,
}

impl State {
    /// The configuration snapshot for a new request.
    pub fn current(&self) -> Arc<Runtime> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Re-reads the file; an invalid configuration is refused and the old one stays.
    pub fn reload(&self) -> Result<(), String> {
        let Some(path) = &self.path else {
            return Err("no configuration file to reload".into());
        };
        let result = Config::load(path)
            .map_err(|e| e.to_string())
            .and_then(|mut c| {
                self.overrides.apply(&mut c)?;
                Runtime::build(c, self.metrics.clone())
            });
        match result {
            Ok(rt) => {
                let old = self.current();
                if rt.config.listen != old.config.listen
                    || rt.config.admin_listen != old.config.admin_listen
                {
                    event!(
                        WARN,
                        "veilgate::ops",
                        &rt.ops_stamp(),
                        "listen addresses change only on restart",
                    );
                }
                let stamp = rt.ops_stamp();
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(rt);
                self.metrics.reload("ok");
                event!(
                    INFO,
                    "veilgate::ops",
                    &stamp,
                    "configuration reloaded",
                    path = %path.display(),
                );
                Ok(())
            }
            Err(e) => {
                self.metrics.reload("rejected");
                event!(
                    ERROR,
                    "veilgate::ops",
                    &self.current().ops_stamp(),
                    "new configuration refused; the old one keeps serving",
                    error = %e,
                );
                Err(e)
            }
        }
    }
}

/// A running sidecar (for tests and embedding): its addresses and a shutdown switch.
#[derive(Debug)]
pub struct Handle {
    pub addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub state: Arc<State>,
    shutdown: tokio::sync::watch::Sender<bool>,
    done: tokio::task::JoinHandle<()>,
    /// Admin listener and file watch: stopped once the drain is over.
    background: Vec<tokio::task::JoinHandle<()>>,
}

impl Handle {
    /// Stops accepting, lets in-flight requests finish (up to `drain_secs`), returns.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.done.await;
        for t in self.background {
            t.abort();
        }
    }
}

/// Loads the configuration (file or built-in defaults), binds, and serves in the
/// background.
pub async fn start(path: Option<PathBuf>, overrides: Overrides) -> Result<Handle, String> {
    let mut config = match &path {
        Some(p) => Config::load(p).map_err(|e| e.to_string())?,
        None => Config::builtin(),
    };
    overrides.apply(&mut config)?;
    let metrics = Arc::new(Metrics::default());
    let runtime = Runtime::build(config.clone(), metrics.clone())?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("listen {}: {e}", config.listen))?;
    let admin = TcpListener::bind(config.admin_listen)
        .await
        .map_err(|e| format!("admin listen {}: {e}", config.admin_listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let admin_addr = admin.local_addr().map_err(|e| e.to_string())?;
    let state = Arc::new(State {
        current: RwLock::new(Arc::new(runtime)),
        metrics,
        draining: AtomicBool::new(false),
        path: path.clone(),
        overrides,
    });
    let (tx, rx) = tokio::sync::watch::channel(false);
    // The admin listener outlives the drain, so /readyz can say "draining".
    let mut background = vec![tokio::spawn(serve_admin(admin, state.clone()))];
    if config.watch {
        if let Some(p) = path {
            background.push(tokio::spawn(watch_file(p, state.clone(), rx.clone())));
        }
    }
    let done = tokio::spawn(serve(
        listener,
        state.clone(),
        rx,
        Duration::from_secs(config.drain_secs),
    ));
    event!(
        INFO,
        "veilgate::ops",
        &state.current().ops_stamp(),
        "veilgate listening",
        %addr,
        %admin_addr,
    );
    Ok(Handle {
        addr,
        admin_addr,
        state,
        shutdown: tx,
        done,
        background,
    })
}

/// Runs until SIGTERM or Ctrl-C; SIGHUP reloads.
pub async fn run(path: Option<PathBuf>, overrides: Overrides) -> Result<(), String> {
    let handle = start(path, overrides).await?;
    eprintln!(
        "veilgate listening on {} (admin on {})",
        handle.addr, handle.admin_addr
    );
    let state = handle.state.clone();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hup = signal(SignalKind::hangup()).map_err(|e| e.to_string())?;
        let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
        loop {
            tokio::select! {
                _ = hup.recv() => { let _ = state.reload(); }
                _ = term.recv() => break,
                _ = tokio::signal::ctrl_c() => break,
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    event!(
        INFO,
        "veilgate::ops",
        &state.current().ops_stamp(),
        "shutting down: draining in-flight requests",
    );
    handle.shutdown().await;
    // Records still queued for the capture sink are written before the process ends.
    if let Some(sink) = state.current().capture.clone() {
        let _ = tokio::task::spawn_blocking(move || sink.flush()).await;
    }
    Ok(())
}

async fn serve(
    listener: TcpListener,
    state: Arc<State>,
    mut stop: tokio::sync::watch::Receiver<bool>,
    drain: Duration,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    event!(
                        WARN,
                        "veilgate::ops",
                        &state.current().ops_stamp(),
                        "accept failed",
                        error = %e,
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
            handle(state.clone(), peer, req)
        });
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), svc)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
    state.draining.store(true, Ordering::SeqCst);
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        event!(
            WARN,
            "veilgate::ops",
            &state.current().ops_stamp(),
            "drain timeout: closing remaining connections",
        );
    }
}

async fn handle(
    state: Arc<State>,
    peer: SocketAddr,
    mut req: Request<Incoming>,
) -> Result<
    Response<
        crate::retention::RetentionBody<
            crate::api_key::ResponseBody<
                crate::redact::RedactBody<crate::training::CaptureBody<proxy::ProxyBody>>,
            >,
        >,
    >,
    Infallible,
> {
    req.extensions_mut().insert(ClientIp(peer.ip()));
    let start = Instant::now();
    let rt = state.current();
    let mut svc = rt.service.clone();
    std::future::poll_fn(|cx| svc.poll_ready(cx)).await?;
    let resp = svc.call(req).await?;
    // The upstream is chosen inside the stack, once the tenant is known.
    let upstream = resp
        .extensions()
        .get::<proxy::UpstreamName>()
        .map_or_else(|| "unknown".into(), |n| n.0.clone());
    state
        .metrics
        .request(&upstream, resp.status().as_u16(), start.elapsed());
    Ok(resp)
}

async fn serve_admin(listener: TcpListener, state: Arc<State>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let state = state.clone();
        let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
            let state = state.clone();
            async move { Ok::<_, Infallible>(admin(&state, req.uri().path())) }
        });
        tokio::spawn(async move {
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

fn admin(state: &State, path: &str) -> Response<Full<Bytes>> {
    let (status, ct, body) = match path {
        "/healthz" => (StatusCode::OK, "text/plain", "ok\n".to_string()),
        "/readyz" if state.draining.load(Ordering::SeqCst) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "draining\n".to_string(),
        ),
        "/readyz" => (StatusCode::OK, "text/plain", "ready\n".to_string()),
        "/metrics" => (
            StatusCode::OK,
            "text/plain; version=0.0.4",
            state.metrics.render(),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found\n".to_string(),
        ),
    };
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, ct)
        .body(Full::new(Bytes::from(body)))
        .expect("static response parts")
}

/// Polls the file's modification time; a change triggers a reload.
async fn watch_file(
    path: PathBuf,
    state: Arc<State>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mtime = |p: &PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let mut last: Option<SystemTime> = mtime(&path);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = stop.changed() => return,
        }
        let now = mtime(&path);
        if now.is_some() && now != last {
            last = now;
            let _ = state.reload();
        }
    }
}
