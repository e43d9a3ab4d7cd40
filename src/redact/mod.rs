//! The redact middleware: PII and secrets leave request bodies before they reach the
//! provider, and pseudonyms are restored in what the client gets back, streamed answers
//! included.
//!
//! # What it does
//!
//! **Requests.** The body is read (up to [`RedactLayer::body_limit`]), its
//! `Content-Encoding` (gzip, deflate, br, zstd) undone with a cap on the decoded size,
//! and, by `Content-Type`: JSON string values that carry content are scanned (structure
//! such as `model`, `role` or function names is left alone, see
//! [`Provider::is_content`](crate::provider::Provider::is_content)); JSON lines, text and
//! form bodies are scanned whole; other types (images, audio, multipart uploads) are
//! forwarded untouched. The body is forwarded decoded, with `Content-Length` fixed.
//! Bad input is refused with a provider-shaped error, and nothing of it is forwarded or
//! logged: unknown `Content-Encoding` 415, over the limit 413, invalid JSON or UTF-8 400,
//! a `block` action 403. [`RedactLayer::fail_open_requests`] forwards instead.
//!
//! **Answers.** JSON and text answers are read whole; SSE answers are rewritten event by
//! event. Pseudonyms issued for this request are restored, tolerating re-casing,
//! re-spacing and tokens cut across events (see [`crate::engine::restore`]). PII the model
//! produced itself is redacted by default, except names (see
//! [`ResponsePolicy`](crate::engine::ResponsePolicy)). In a stream, each text channel
//! (choice, tool call, content block) holds back only text that could still become a
//! match or a token, flushes it when the channel ends, and never on a timer; comments,
//! heartbeats, `id:` and `event:` lines and events without changes pass byte-identical.
//! The request's reverse map travels inside the response body: there is no global state.
//!
//! # Example
//!
//! ```
//! use std::convert::Infallible;
//! use bytes::Bytes;
//! use http::{Request, Response};
//! use http_body_util::{BodyExt, Full};
//! use tower::{Service, ServiceBuilder, ServiceExt};
//! use veilgate::redact::{RedactBody, RedactLayer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // The "provider": echoes the request body back.
//! let upstream = tower::service_fn(|req: Request<RedactBody<Full<Bytes>>>| async move {
//!     let body = req.into_body().collect().await.unwrap().to_bytes();
//!     Ok::<_, Infallible>(Response::builder().header("content-type", "application/json").body(Full::new(body)).unwrap())
//! });
//! let mut svc = ServiceBuilder::new().layer(RedactLayer::new()).service(upstream);
//! let req = Request::post("/v1/chat/completions")
//!     .header("content-type", "application/json")
//!     .body(Full::new(Bytes::from(r#"{"messages":[{"role":"user","content":"mail jane.doe@acme-corp.io"}]}"#)))
//!     .unwrap();
//! let resp = svc.ready().await.unwrap().call(req).await.unwrap();
//! let body = resp.into_body().collect().await.unwrap().to_bytes();
//! // The upstream saw a pseudonym; the client gets the original back.
//! assert_eq!(&body[..], br#"{"messages":[{"role":"user","content":"mail jane.doe@acme-corp.io"}]}"#);
//! # }
//! ```

mod body;
pub(crate) mod encoding;
mod form;
mod future;
mod layer;
mod service;

pub use body::RedactBody;
pub use future::ResponseFuture;
pub use layer::{PrivacyLayer, RedactLayer, ServiceBuilderExt};
pub use service::Redact;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::engine::{Action, Redactor};
use crate::provider::{Direction, ErrorKind, Provider};

/// The request body as the redact layer forwards it, after scanning (JSON, JSON lines,
/// text and form bodies only; never a body passed through unscanned or forwarded by
/// fail-open). The layer leaves it in the request extensions for what runs inside it:
/// the training capture ([`crate::training::CaptureLayer`]) reads it there.
#[derive(Clone)]
pub struct Redacted(pub bytes::Bytes);

/// Only the length: the body is content, never printed.
impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redacted({} bytes)", self.0.len())
    }
}

/// Detections by (entity, action).
pub type Counts = BTreeMap<(Arc<str>, Action), u64>;

/// Told what the layer did, for metrics and audit records. It is never given a value,
/// a body or a key: only entity names, counts, statuses and `veilgate_*` codes.
pub trait Observer: Send + Sync + std::fmt::Debug + 'static {
    /// Detections in one direction of one exchange (answers: once the body is done).
    fn detections(&self, dir: Direction, counts: &Counts);
    /// A body was refused (or an answer replaced by an error).
    fn refused(&self, dir: Direction, status: u16, code: &str);
}

/// The exchange record learns what the layer did, besides the configured observer.
/// Refusals become stamped security records here, with or without an exchange.
#[derive(Debug)]
pub(crate) struct Tee(
    pub Option<Arc<dyn Observer>>,
    pub Option<crate::telemetry::Exchange>,
);

impl Observer for Tee {
    fn detections(&self, dir: Direction, counts: &Counts) {
        if let Some(o) = &self.0 {
            o.detections(dir, counts);
        }
        if let Some(x) = &self.1 {
            x.add_detections(counts.iter().map(|((e, _), n)| (e, *n)));
        }
    }

    fn refused(&self, dir: Direction, status: u16, code: &str) {
        if let Some(o) = &self.0 {
            o.refused(dir, status, code);
        }
        if let Some(x) = &self.1 {
            x.set_refusal(code);
        }
        let stamp = crate::telemetry::stamp_for(self.1.as_ref(), crate::policy::Class::Security);
        crate::telemetry::event!(
            INFO,
            "veilgate::security",
            &stamp,
            "body refused",
            code,
            direction = dir.as_str(),
            http.response.status_code = status,
        );
    }
}

/// `after - before`, per key.
pub(crate) fn delta(before: &Counts, after: &Counts) -> Counts {
    after
        .iter()
        .filter_map(|(k, v)| {
            let d = v - before.get(k).copied().unwrap_or(0);
            (d > 0).then(|| (k.clone(), d))
        })
        .collect()
}

/// Default largest body scanned (decoded): 16 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 16 << 20;

/// The redact layer's settings (see the builder methods of [`RedactLayer`]).
#[derive(Debug, Clone)]
pub struct Config {
    pub redactor: Redactor,
    pub request: bool,
    pub response: bool,
    pub body_limit: usize,
    pub fail_open_request: bool,
    pub fail_open_response: bool,
    pub provider: Option<Provider>,
    pub observer: Option<Arc<dyn Observer>>,
    /// Per-tenant actions and allow-lists (see [`RedactLayer::policy`]).
    pub policy: Option<Arc<crate::policy::Policy>>,
    /// The redactor of each tenant the policy names, built from `redactor` and `policy`.
    pub(crate) tenants: Arc<std::collections::HashMap<Arc<str>, Redactor>>,
}

impl Config {
    fn new(redactor: Redactor) -> Config {
        Config {
            redactor,
            request: true,
            response: true,
            body_limit: DEFAULT_BODY_LIMIT,
            fail_open_request: false,
            fail_open_response: false,
            provider: None,
            observer: None,
            policy: None,
            tenants: Default::default(),
        }
    }

    /// Builds each configured tenant's redactor: its actions over the global ones, its
    /// allow-list added, pseudonyms keyed by its name.
    pub(crate) fn compile_tenants(&mut self) {
        let mut tenants = std::collections::HashMap::new();
        let Some(policy) = &self.policy else {
            self.tenants = Arc::default();
            return;
        };
        for t in policy.tenants() {
            let Some(name) = &t.name else { continue };
            let mut r = self.redactor.clone().with_tenant(name);
            for (entity, action) in &t.actions {
                r = r.with_entity_action(entity, *action);
            }
            r = r.with_allow_values(&t.allow);
            tenants.insert(name.clone(), r);
        }
        self.tenants = Arc::new(tenants);
    }

    /// The redactor for `tenant`.
    pub(crate) fn redactor_for(&self, tenant: &str) -> Redactor {
        match self.tenants.get(tenant) {
            Some(r) => r.clone(),
            None => self.redactor.clone().with_tenant(tenant),
        }
    }
}

/// What a body is, by its Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyKind {
    Json,
    JsonLines,
    Text,
    Form,
    EventStream,
    /// Binary or multipart: forwarded untouched.
    Other,
    /// No Content-Type: decided by looking at the body.
    Unknown,
}

/// Why a body is refused, as the client will read it (never with body content).
#[derive(Debug, Clone)]
pub(crate) struct Refusal {
    pub kind: ErrorKind,
    pub message: &'static str,
    pub code: &'static str,
}

impl Refusal {
    pub(crate) fn new(kind: ErrorKind, message: &'static str, code: &'static str) -> Refusal {
        Refusal {
            kind,
            message,
            code,
        }
    }
}

/// Hop-by-hop headers, never forwarded (RFC 9110 section 7.6.1).
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
];

/// Removes hop-by-hop headers, including those named in `Connection`: what a proxy built
/// around the layer must do in both directions (the sidecar and the examples use it).
pub fn strip_hop_by_hop(h: &mut http::HeaderMap) {
    // Most messages carry none of these: one pass over the names decides, and only
    // then is anything looked up and removed.
    if !h.keys().any(is_hop_by_hop) {
        return;
    }
    let named: Vec<http::HeaderName> = h
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| http::HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for n in named {
        h.remove(n);
    }
    for n in HOP_BY_HOP {
        h.remove(n);
    }
    h.remove(http::header::TRANSFER_ENCODING);
}

fn is_hop_by_hop(name: &http::HeaderName) -> bool {
    *name == http::header::TRANSFER_ENCODING || HOP_BY_HOP.iter().any(|n| *name == **n)
}
