//! Forwarding to upstreams: routing, the pooled hyper-util client with rustls, hop-by-hop
//! headers, timeouts, and provider-shaped 502/504 when the upstream fails.

use crate::policy::{Class, Policy};
use crate::telemetry::{Exchange, event, stamp_for};
use crate::training::Decision;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Request, Response, Uri};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::config::{Config, UpstreamConfig};
use super::metrics::Metrics;
use crate::provider::{ErrorKind, Provider, error_response};
use crate::redact::{RedactBody, strip_hop_by_hop};

/// The body the proxy sends upstream: the client's, possibly rewritten by the training
/// and redact layers.
pub type UpstreamRequestBody = RedactBody<crate::training::TrainingBody<Incoming>>;
type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, UpstreamRequestBody>;

/// Header a client may set to pick an upstream by name.
pub const UPSTREAM_HEADER: &str = "x-veilgate-upstream";

/// One upstream, ready to take requests.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub name: Arc<str>,
    pub provider: Provider,
    pub trains_on_data: bool,
    pub region: Option<Arc<str>>,
    scheme: http::uri::Scheme,
    authority: http::uri::Authority,
    /// Path prefix of the base URL, without a trailing slash.
    prefix: String,
    client: HttpsClient,
    response_timeout: Duration,
    idle_timeout: Duration,
    /// The provider key injected into every request to this upstream...
    api_key: Option<crate::api_key::ProviderKey>,
    /// ...in this header (`Bearer ` prefixed for `authorization`).
    key_header: http::HeaderName,
    /// Flags set in opted-out requests to this upstream.
    pub flags: Arc<[crate::training::Flag]>,
}

impl Upstream {
    pub fn new(cfg: &UpstreamConfig) -> Result<Upstream, String> {
        Upstream::with_flags(cfg, Vec::new())
    }

    /// An upstream whose opted-out requests get `flags`.
    pub fn with_flags(
        cfg: &UpstreamConfig,
        flags: Vec<crate::training::Flag>,
    ) -> Result<Upstream, String> {
        let base: Uri = cfg
            .base_url
            .parse()
            .map_err(|e| format!("{}: {e}", cfg.base_url))?;
        let scheme = base.scheme().cloned().ok_or("base_url needs a scheme")?;
        let authority = base.authority().cloned().ok_or("base_url needs a host")?;
        let connector = https_connector(cfg.ca_file.as_deref(), cfg.connect_timeout(), true)?;
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(connector);
        let api_key = match (&cfg.api_key_file, &cfg.api_key_env) {
            (Some(f), _) => {
                Some(crate::api_key::ProviderKey::from_file(f).map_err(|e| e.to_string())?)
            }
            (None, Some(v)) => {
                Some(crate::api_key::ProviderKey::from_env(v).map_err(|e| e.to_string())?)
            }
            (None, None) => None,
        };
        let provider: Provider = cfg.provider.into();
        let host = authority.host();
        let key_header = match cfg.api_key_header.as_deref() {
            Some(h) => http::HeaderName::from_bytes(h.as_bytes()).map_err(|e| e.to_string())?,
            None if provider == Provider::Anthropic => http::HeaderName::from_static("x-api-key"),
            None if host.ends_with(".openai.azure.com")
                || host.ends_with(".cognitiveservices.azure.com") =>
            {
                http::HeaderName::from_static("api-key")
            }
            None => header::AUTHORIZATION,
        };
        Ok(Upstream {
            api_key,
            key_header,
            flags: flags.into(),
            name: cfg.name.as_str().into(),
            provider,
            trains_on_data: cfg.trains_on_data,
            region: cfg.region.as_deref().map(Into::into),
            scheme,
            authority,
            prefix: base.path().trim_end_matches('/').to_string(),
            client,
            response_timeout: cfg.response_timeout(),
            idle_timeout: cfg.idle_timeout(),
        })
    }

    fn uri(&self, pq: Option<&http::uri::PathAndQuery>) -> Result<Uri, http::Error> {
        let pq = pq.map_or("/", |p| p.as_str());
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(format!("{}{pq}", self.prefix))
            .build()
    }
}

/// Upstreams and routes of one configuration.
#[derive(Debug)]
pub struct Router {
    upstreams: Vec<Arc<Upstream>>,
    /// Path prefix, candidates in order, and whether the list is explicit (`upstreams`)
    /// or one upstream with same-provider fallback (`upstream`).
    routes: Vec<(String, Vec<usize>, bool)>,
    default: usize,
    by_header: bool,
}

/// Why no upstream may serve a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoUpstream {
    /// 400 (unknown name) or 503 (nothing eligible).
    pub kind: ErrorKind,
    pub message: String,
    pub code: &'static str,
    /// `unknown`, `region`, `trains_on_data`: for records.
    pub why: &'static str,
}

impl Router {
    pub fn new(config: &Config) -> Result<Router, String> {
        let upstreams = config
            .upstreams
            .iter()
            .map(|u| {
                let flags = u
                    .flag_names()
                    .iter()
                    .map(|n| {
                        config
                            .training
                            .flag(n)
                            .ok_or_else(|| format!("no training flag named {n:?}"))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Upstream::with_flags(u, flags).map(Arc::new)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let index = |n: &str| upstreams.iter().position(|u| &*u.name == n);
        let routes = config
            .routes
            .iter()
            .map(|r| {
                (
                    r.path_prefix.clone(),
                    r.names()
                        .into_iter()
                        .map(|n| index(n).expect("validated"))
                        .collect(),
                    r.upstream.is_none(),
                )
            })
            .collect();
        let default = config
            .default_upstream
            .as_deref()
            .and_then(index)
            .unwrap_or(0);
        Ok(Router {
            upstreams,
            routes,
            default,
            by_header: config.upstream_header,
        })
    }

    /// The upstreams that may serve a request, best first: the one the
    /// `x-veilgate-upstream` header names (when allowed), else the longest matching
    /// route's list, else the default; a single upstream (route `upstream` or the
    /// default) is followed by the other upstreams of its provider kind, in file order.
    pub fn candidates(
        &self,
        path: &str,
        headers: &HeaderMap,
    ) -> Result<Vec<Arc<Upstream>>, NoUpstream> {
        if self.by_header {
            if let Some(v) = headers.get(UPSTREAM_HEADER) {
                let name = v.to_str().unwrap_or("");
                return self
                    .upstreams
                    .iter()
                    .find(|u| &*u.name == name)
                    .map(|u| vec![u.clone()])
                    .ok_or_else(|| NoUpstream {
                        kind: ErrorKind::InvalidRequest,
                        message: "the x-veilgate-upstream header names no configured upstream"
                            .into(),
                        code: "veilgate_unknown_upstream",
                        why: "unknown",
                    });
            }
        }
        let (list, explicit) = self
            .routes
            .iter()
            .filter(|(p, _, _)| path.starts_with(p.as_str()))
            .max_by_key(|(p, _, _)| p.len())
            .map_or((vec![self.default], false), |(_, l, e)| (l.clone(), *e));
        let mut out: Vec<Arc<Upstream>> = list.iter().map(|&i| self.upstreams[i].clone()).collect();
        if !explicit {
            let provider = out[0].provider;
            for (i, u) in self.upstreams.iter().enumerate() {
                if u.provider == provider && !list.contains(&i) {
                    out.push(u.clone());
                }
            }
        }
        Ok(out)
    }

    /// The upstream for a request before anything is known of its tenant (the first
    /// candidate).
    pub fn pick(&self, path: &str, headers: &HeaderMap) -> Result<Arc<Upstream>, String> {
        self.candidates(path, headers)
            .map(|c| c[0].clone())
            .map_err(|e| e.message)
    }

    /// The first candidate the request may go to: in the tenant's `region` if it has
    /// one, and not training on data unless the request is allowed for training. No
    /// fallback beyond that: when nothing is left, the reason.
    pub fn select(
        &self,
        path: &str,
        headers: &HeaderMap,
        training_allowed: bool,
        region: Option<&str>,
    ) -> Result<Arc<Upstream>, NoUpstream> {
        let candidates = self.candidates(path, headers)?;
        let in_region: Vec<_> = candidates
            .into_iter()
            .filter(|u| {
                region.is_none_or(|r| {
                    u.region
                        .as_deref()
                        .is_some_and(|ur| ur.eq_ignore_ascii_case(r))
                })
            })
            .collect();
        if in_region.is_empty() {
            let r = region.unwrap_or_default();
            return Err(NoUpstream {
                kind: ErrorKind::Unavailable,
                message: format!(
                    "no upstream in region {r:?} serves this request; the tenant's data stays in its region, so the gateway does not fall back to another"
                ),
                code: "veilgate_no_upstream_in_region",
                why: "region",
            });
        }
        in_region
            .into_iter()
            .find(|u| training_allowed || !u.trains_on_data)
            .ok_or_else(|| NoUpstream {
                kind: ErrorKind::Unavailable,
                message: "every upstream that could serve this request may train on the data it receives, and this request is opted out of training (tenant setting, DNT or Sec-GPC)".into(),
                code: "veilgate_no_upstream_without_training",
                why: "trains_on_data",
            })
    }
}

/// The upstream chosen for a request, carried in its extensions to [`Forward`].
#[derive(Debug, Clone)]
pub struct Picked(pub Arc<Upstream>);

/// The name of the upstream that served (or would have served) an answer, in the
/// response extensions for metrics.
#[derive(Debug, Clone)]
pub struct UpstreamName(pub Arc<str>);

/// Picks the upstream once the tenant is known (inside the api_key layer): residency and
/// training opt-out narrow the candidates; nothing left is a provider-shaped 503 (or 400
/// for an unknown `x-veilgate-upstream`). Also records the training decision, so the
/// training layer inside uses the same one, and hands it the upstream's flags.
#[derive(Debug, Clone)]
pub struct Select<S> {
    pub inner: S,
    pub router: Arc<Router>,
    pub policy: Arc<Policy>,
}

impl<S, B, ResB> tower::Service<Request<B>> for Select<S>
where
    S: tower::Service<Request<B>, Response = Response<ResB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
    ResB: From<Bytes> + Send + 'static,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ResB>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let decision = Decision::for_request(&req, &self.policy);
        decision.apply(&mut req);
        let ext = req.extensions();
        let tenant = ext
            .get::<crate::api_key::KeyContext>()
            .and_then(|c| c.tenant.clone())
            .or_else(|| ext.get::<crate::api_key::Tenant>().cloned());
        let region = self
            .policy
            .get(tenant.as_ref().map(crate::api_key::Tenant::as_str))
            .region
            .clone();
        let path = req.uri().path().to_string();
        match self
            .router
            .select(&path, req.headers(), decision.allowed, region.as_deref())
        {
            Ok(up) => {
                let name = up.name.clone();
                req.extensions_mut()
                    .insert(crate::training::UpstreamFlags(up.flags.clone()));
                req.extensions_mut().insert(Picked(up));
                Box::pin(async move {
                    let mut resp = inner.call(req).await?;
                    resp.extensions_mut().insert(UpstreamName(name));
                    Ok(resp)
                })
            }
            Err(no) => {
                let exchange = req.extensions().get::<Exchange>().cloned();
                if let Some(x) = &exchange {
                    x.set_refusal(no.code);
                }
                event!(
                    WARN,
                    "veilgate::security",
                    &stamp_for(exchange.as_ref(), Class::Security),
                    "no eligible upstream",
                    code = no.code,
                    reason = no.why,
                    tenant.region = region.as_deref().unwrap_or(""),
                    training.allowed = decision.allowed,
                    http.response.status_code = no.kind.status().as_u16(),
                );
                let provider = Provider::detect(&path, req.headers()).0;
                let mut resp = error_response::<ResB>(provider, no.kind, &no.message, no.code);
                decision.mark(&mut resp);
                resp.extensions_mut().insert(UpstreamName("none".into()));
                Box::pin(async move { Ok(resp) })
            }
        }
    }
}

/// The HTTPS-or-HTTP connector of every client the sidecar makes (upstreams, the OTLP
/// exporter): rustls with the bundled web roots plus the certificates of `extra_ca` (a
/// PEM file that must hold at least one), TCP_NODELAY, a connect timeout.
pub(crate) fn https_connector(
    extra_ca: Option<&std::path::Path>,
    connect_timeout: Duration,
    http2: bool,
) -> Result<hyper_rustls::HttpsConnector<HttpConnector>, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = extra_ca {
        use rustls::pki_types::pem::PemObject;
        let fail = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
        let pem = std::fs::read(path).map_err(|e| fail(&e))?;
        let mut added = 0;
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
            roots
                .add(cert.map_err(|e| fail(&e))?)
                .map_err(|e| fail(&e))?;
            added += 1;
        }
        if added == 0 {
            return Err(format!("{}: no PEM certificate found", path.display()));
        }
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(connect_timeout));
    http.set_nodelay(true);
    let builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1();
    Ok(if http2 {
        builder.enable_http2().wrap_connector(http)
    } else {
        builder.wrap_connector(http)
    })
}

/// The innermost service of the sidecar: forwards a (redacted) request upstream.
#[derive(Debug, Clone)]
pub struct Forward {
    pub router: Arc<Router>,
    pub metrics: Arc<Metrics>,
}

impl tower::Service<Request<UpstreamRequestBody>> for Forward {
    type Response = Response<ProxyBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ProxyBody>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<UpstreamRequestBody>) -> Self::Future {
        let router = self.router.clone();
        let metrics = self.metrics.clone();
        Box::pin(async move { Ok(forward(&router, &metrics, req).await) })
    }
}

fn fail(provider: Provider, kind: ErrorKind, message: &str, code: &str) -> Response<ProxyBody> {
    error_response::<Bytes>(provider, kind, message, code).map(ProxyBody::full)
}

async fn forward(
    router: &Router,
    metrics: &Metrics,
    mut req: Request<UpstreamRequestBody>,
) -> Response<ProxyBody> {
    // The upstream was picked once the tenant was known (see [`Select`]).
    let picked = match req.extensions_mut().remove::<Picked>() {
        Some(Picked(p)) => Ok(p),
        None => router.pick(req.uri().path(), req.headers()),
    };
    let up = match picked {
        Ok(u) => u,
        Err(m) => {
            return fail(
                Provider::detect(req.uri().path(), req.headers()).0,
                ErrorKind::InvalidRequest,
                &m,
                "veilgate_unknown_upstream",
            );
        }
    };
    let exchange = req.extensions().get::<Exchange>().cloned();
    if let Some(x) = &exchange {
        x.set_upstream(&up.name);
    }
    let (mut parts, body) = req.into_parts();
    let uri = match up.uri(parts.uri.path_and_query()) {
        Ok(u) => u,
        Err(_) => {
            return fail(
                up.provider,
                ErrorKind::InvalidRequest,
                "the request path is invalid",
                "veilgate_bad_path",
            );
        }
    };
    strip_hop_by_hop(&mut parts.headers);
    parts.headers.remove(UPSTREAM_HEADER);
    parts.headers.remove(header::HOST);
    if let Ok(host) = HeaderValue::from_str(up.authority.as_str()) {
        parts.headers.insert(header::HOST, host);
    }
    parts.uri = uri;
    if let Some(k) = &up.api_key {
        // The upstream's own key replaces whatever the client sent.
        for h in ["authorization", "x-api-key", "api-key"] {
            parts.headers.remove(h);
        }
        let prefix = if up.key_header == header::AUTHORIZATION {
            "Bearer "
        } else {
            ""
        };
        parts
            .headers
            .insert(up.key_header.clone(), k.header_value(prefix));
    }
    // HTTP/2 to the client must not leak into HTTP/1.1 upstream requests: let the
    // connector negotiate.
    parts.version = http::Version::HTTP_11;
    let request = Request::from_parts(parts, body);
    let response = match tokio::time::timeout(up.response_timeout, up.client.request(request)).await
    {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            let kind = if e.is_connect() {
                "connect"
            } else {
                "protocol"
            };
            metrics.upstream_error(&up.name, kind);
            event!(
                WARN,
                "veilgate::ops",
                &stamp_for(exchange.as_ref(), Class::Usage),
                "upstream request failed",
                veilgate.upstream = %up.name,
                kind,
            );
            return fail(
                up.provider,
                ErrorKind::Upstream,
                "the upstream could not be reached",
                "veilgate_upstream_unreachable",
            );
        }
        Err(_) => {
            metrics.upstream_error(&up.name, "timeout");
            event!(
                WARN,
                "veilgate::ops",
                &stamp_for(exchange.as_ref(), Class::Usage),
                "upstream response timed out",
                veilgate.upstream = %up.name,
            );
            return fail(
                up.provider,
                ErrorKind::Timeout,
                "the upstream did not answer in time",
                "veilgate_upstream_timeout",
            );
        }
    };
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    Response::from_parts(parts, ProxyBody::stream(body, up.idle_timeout))
}

pin_project_lite::pin_project! {
    /// An upstream answer with an idle timeout between frames, or an error body.
    ///
    /// The idle timer is armed only while the upstream keeps us waiting: a frame that is
    /// already there just moves `last` (a clock read), not an entry in the runtime's
    /// timer wheel, whose lock the worker threads share. A buffered answer never
    /// touches the wheel.
    pub struct ProxyBody {
        #[pin]
        inner: Option<Incoming>,
        full: Option<Bytes>,
        idle: Duration,
        last: tokio::time::Instant,
        #[pin]
        timer: Option<tokio::time::Sleep>,
    }
}

impl std::fmt::Debug for ProxyBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyBody").finish_non_exhaustive()
    }
}

impl ProxyBody {
    fn stream(inner: Incoming, idle: Duration) -> ProxyBody {
        ProxyBody {
            inner: Some(inner),
            full: None,
            idle,
            last: tokio::time::Instant::now(),
            timer: None,
        }
    }

    fn full(b: Bytes) -> ProxyBody {
        ProxyBody {
            inner: None,
            full: Some(b),
            idle: Duration::MAX,
            last: tokio::time::Instant::now(),
            timer: None,
        }
    }
}

impl From<Bytes> for ProxyBody {
    fn from(b: Bytes) -> Self {
        ProxyBody::full(b)
    }
}

/// The upstream went silent for longer than its idle timeout.
#[derive(Debug)]
pub struct IdleTimeout;

impl std::fmt::Display for IdleTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("upstream idle timeout")
    }
}

impl std::error::Error for IdleTimeout {}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let mut this = self.project();
        if let Some(b) = this.full.take() {
            return Poll::Ready(Some(Ok(Frame::data(b))));
        }
        let Some(inner) = this.inner.as_mut().as_pin_mut() else {
            return Poll::Ready(None);
        };
        if let Poll::Ready(frame) = inner.poll_frame(cx) {
            *this.last = tokio::time::Instant::now();
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let Some(deadline) = this.last.checked_add(*this.idle) else {
            return Poll::Pending; // no idle limit that a clock can express
        };
        match this.timer.as_mut().as_pin_mut() {
            Some(t) if t.deadline() == deadline => {}
            Some(t) => t.reset(deadline),
            None => this.timer.set(Some(tokio::time::sleep_until(deadline))),
        }
        let timer = this.timer.as_pin_mut().expect("armed above");
        ready!(timer.poll(cx));
        Poll::Ready(Some(Err(Box::new(IdleTimeout))))
    }

    fn is_end_stream(&self) -> bool {
        self.full.is_none() && self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        match (&self.full, &self.inner) {
            (Some(b), _) => SizeHint::with_exact(b.len() as u64),
            (None, Some(i)) => i.size_hint(),
            (None, None) => SizeHint::with_exact(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_are_stripped() {
        let mut h = HeaderMap::new();
        h.insert("connection", "close, x-secret-hop".parse().unwrap());
        h.insert("x-secret-hop", "1".parse().unwrap());
        h.insert("keep-alive", "timeout=5".parse().unwrap());
        h.insert("transfer-encoding", "chunked".parse().unwrap());
        h.insert("authorization", "Bearer x".parse().unwrap());
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("authorization"));
    }

    #[test]
    fn routing_prefers_header_then_longest_prefix() {
        let c = Config::parse(
            "t",
            r#"
            [[upstream]]
            name = "openai"
            base_url = "http://127.0.0.1:1"
            [[upstream]]
            name = "anthropic"
            provider = "anthropic"
            base_url = "http://127.0.0.1:2/prefix/"
            [[upstream]]
            name = "batch"
            base_url = "http://127.0.0.1:3"
            [[route]]
            path_prefix = "/v1/messages"
            upstream = "anthropic"
            [[route]]
            path_prefix = "/v1/messages/batches"
            upstream = "batch"
            "#,
        )
        .unwrap();
        let r = Router::new(&c).unwrap();
        let h = HeaderMap::new();
        assert_eq!(&*r.pick("/v1/messages", &h).unwrap().name, "anthropic");
        assert_eq!(
            &*r.pick("/v1/messages/batches/x", &h).unwrap().name,
            "batch"
        );
        assert_eq!(&*r.pick("/v1/chat/completions", &h).unwrap().name, "openai");
        let mut h = HeaderMap::new();
        h.insert(UPSTREAM_HEADER, "batch".parse().unwrap());
        assert_eq!(&*r.pick("/v1/messages", &h).unwrap().name, "batch");
        h.insert(UPSTREAM_HEADER, "nope".parse().unwrap());
        assert!(r.pick("/v1/messages", &h).is_err());
        let a = r.pick("/v1/messages", &HeaderMap::new()).unwrap();
        assert_eq!(
            a.uri(Some(&"/v1/messages?x=1".parse().unwrap())).unwrap(),
            "http://127.0.0.1:2/prefix/v1/messages?x=1"
        );
    }

    #[test]
    fn selection_filters_by_region_and_training_without_silent_fallback() {
        let c = Config::parse(
            "t",
            r#"
            [[upstream]]
            name = "us"
            base_url = "http://127.0.0.1:1"
            region = "us"
            trains_on_data = true
            [[upstream]]
            name = "claude"
            provider = "anthropic"
            base_url = "http://127.0.0.1:2"
            region = "eu"
            [[upstream]]
            name = "eu"
            base_url = "http://127.0.0.1:3"
            region = "eu"
            [[route]]
            path_prefix = "/v1/embeddings"
            upstreams = ["us"]
            "#,
        )
        .unwrap();
        let r = Router::new(&c).unwrap();
        let h = HeaderMap::new();
        let names = |p: &str| -> Vec<String> {
            r.candidates(p, &h)
                .unwrap()
                .iter()
                .map(|u| u.name.to_string())
                .collect()
        };
        // A single upstream falls back over its provider kind only; a list does not.
        assert_eq!(names("/v1/chat/completions"), ["us", "eu"]);
        assert_eq!(names("/v1/embeddings"), ["us"]);
        let pick = |p: &str, allowed: bool, region: Option<&str>| {
            r.select(p, &h, allowed, region)
                .map(|u| u.name.to_string())
                .map_err(|e| e.code)
        };
        assert_eq!(pick("/v1/chat/completions", true, None).unwrap(), "us");
        assert_eq!(pick("/v1/chat/completions", false, None).unwrap(), "eu");
        assert_eq!(
            pick("/v1/chat/completions", true, Some("EU")).unwrap(),
            "eu"
        );
        assert_eq!(
            pick("/v1/chat/completions", true, Some("ap")).unwrap_err(),
            "veilgate_no_upstream_in_region"
        );
        assert_eq!(
            pick("/v1/embeddings", false, None).unwrap_err(),
            "veilgate_no_upstream_without_training"
        );
        assert_eq!(
            pick("/v1/embeddings", true, Some("eu")).unwrap_err(),
            "veilgate_no_upstream_in_region"
        );
        assert_eq!(pick("/v1/embeddings", true, Some("us")).unwrap(), "us");
    }
}
