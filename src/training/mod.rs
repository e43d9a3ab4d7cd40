//! The training middleware: requests whose tenant did not opt in to model training, or
//! that carry `DNT: 1` or `Sec-GPC: 1`, are never sent to a training endpoint, never
//! flagged for storage or data collection, and never captured; opted-in traffic may be
//! written, already redacted, to a capture sink.
//!
//! # Consent
//!
//! A tenant's consent comes from the [`Policy`]
//! (`training = "opt-in" | "opt-out"`, opt-out unless said). A request with `DNT: 1` or
//! `Sec-GPC: 1` is opted out whatever its tenant says; no header can opt a request in.
//! The [`Decision`] goes into the request extensions and onto the exchange record
//! (`training.allowed`), and every answer carries `x-veilgate-training: opted-out` or
//! `opted-in`.
//!
//! # What an opted-out request gets
//!
//! - **Training endpoints are refused** with a provider-shaped 403
//!   (`veilgate_training_opted_out`) and a `veilgate::security` record: `POST` to OpenAI
//!   fine-tuning jobs (`/v1/fine_tuning/jobs`, legacy `/v1/fine-tunes`), file uploads
//!   (`/v1/files`, multipart) and `/v1/uploads` (JSON) whose `purpose` is `fine-tune`
//!   (configurable: [`TrainingLayer::refuse_file_purposes`]), and a configurable list of
//!   other paths, by default evals, feedback and dataset uploads
//!   ([`TrainingLayer::refuse_paths`]). Reads and deletions pass. A multipart upload is
//!   read only up to its `purpose` field, then forwarded byte for byte; one whose
//!   `purpose` comes after more than [`TrainingLayer::body_limit`] bytes (SDKs that send
//!   the file first) is refused with 413 rather than forwarded unchecked.
//! - **Provider flags are rewritten** in JSON request bodies ([`Flag`]): OpenAI's
//!   `"store": false` on chat completions and the Responses API (inserted when absent:
//!   the Responses API stores by default), and OpenRouter-style
//!   `"provider": {"data_collection": "deny"}`. Which flags apply depends on the upstream
//!   kind: [`TrainingLayer::flags`] per provider, or per upstream through the
//!   [`UpstreamFlags`] extension (the sidecar sets it from `training_flags`). The rewrite
//!   is structural and keeps every other byte of the body. The body is read (up to
//!   [`TrainingLayer::body_limit`]) and its `Content-Encoding` undone first, so it is
//!   forwarded decoded, which is also what the redact layer inside wants. A body that
//!   must be rewritten but cannot be read or parsed is refused (400/413/415), never
//!   forwarded unmodified: fail closed.
//! - **Upstream selection** (sidecar): only upstreams with `trains_on_data = false`;
//!   when none is left the answer is a provider-shaped 503 that says why. Residency
//!   (a tenant's `region`) is enforced there too, for every tenant.
//!
//! # Capture (opted-in only)
//!
//! [`CaptureLayer`] goes inside the redact layer (between it and the upstream): it sees
//! the request as redacted and the answer as the upstream sent it, before pseudonyms are
//! restored, and hands both to a [`CaptureSink`], which writes JSON lines off the
//! request path. See [`capture`] and [`sink`](CaptureSink).
//!
//! # Example
//!
//! ```
//! use std::convert::Infallible;
//! use std::sync::Arc;
//! use bytes::Bytes;
//! use http::{Request, Response};
//! use http_body_util::{BodyExt, Full};
//! use tower::{Layer, Service, ServiceExt};
//! use veilgate::policy::Policy;
//! use veilgate::training::{TrainingBody, TrainingLayer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // The "provider": echoes the request body back.
//! let upstream = tower::service_fn(|req: Request<TrainingBody<Full<Bytes>>>| async move {
//!     let body = req.into_body().collect().await.unwrap().to_bytes();
//!     Ok::<_, Infallible>(Response::new(Full::new(body)))
//! });
//! let mut svc = TrainingLayer::new(Arc::new(Policy::default())).layer(upstream);
//!
//! // Opted out (the default): `store` is forced to false.
//! let req = Request::post("/v1/responses")
//!     .header("content-type", "application/json")
//!     .body(Full::new(Bytes::from(r#"{"model":"gpt-4o","input":"hi"}"#)))
//!     .unwrap();
//! let resp = svc.ready().await.unwrap().call(req).await.unwrap();
//! assert_eq!(resp.headers()["x-veilgate-training"], "opted-out");
//! let body = resp.into_body().collect().await.unwrap().to_bytes();
//! assert_eq!(&body[..], br#"{"model":"gpt-4o","input":"hi","store":false}"#);
//!
//! // Fine-tuning is refused.
//! let req = Request::post("/v1/fine_tuning/jobs")
//!     .header("content-type", "application/json")
//!     .body(Full::new(Bytes::from(r#"{"training_file":"file-1"}"#)))
//!     .unwrap();
//! let resp = svc.ready().await.unwrap().call(req).await.unwrap();
//! assert_eq!(resp.status(), 403);
//! # }
//! ```

mod body;
pub mod capture;
mod image;
mod layer;
mod rules;
mod service;
mod sink;

pub use body::TrainingBody;
pub use capture::{Capture, CaptureBody, CaptureLayer};
pub use image::strip_image_metadata;
pub use layer::TrainingLayer;
pub use service::Training;
pub use sink::{CaptureOptions, CaptureSink, TenantHasher};

use std::sync::Arc;

use http::{HeaderMap, HeaderValue};
use serde::Deserialize;

use crate::api_key::{KeyContext, Tenant};
use crate::policy::{Consent, Policy, TenantPolicy};

/// The response header saying whether the exchange may be used for training.
pub const TRAINING_HEADER: &str = "x-veilgate-training";

/// Whether one request may be used for training, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub reason: Reason,
}

/// Why a request is (or is not) allowed for training.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The tenant opted in and the request sent no opt-out signal.
    TenantOptedIn,
    /// The tenant did not opt in (the default).
    TenantOptedOut,
    /// The request carries `DNT: 1`.
    DoNotTrack,
    /// The request carries `Sec-GPC: 1`.
    GlobalPrivacyControl,
}

impl Reason {
    /// `tenant_opted_in`, `tenant_opted_out`, `dnt`, `gpc`: for records.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::TenantOptedIn => "tenant_opted_in",
            Reason::TenantOptedOut => "tenant_opted_out",
            Reason::DoNotTrack => "dnt",
            Reason::GlobalPrivacyControl => "gpc",
        }
    }
}

impl Decision {
    /// The decision for a request with these headers from a tenant with this policy:
    /// `DNT: 1` or `Sec-GPC: 1` opt out whatever the tenant says; nothing opts in.
    pub fn of(headers: &HeaderMap, tenant: &TenantPolicy) -> Decision {
        let says_one = |name: &str| {
            headers
                .get_all(name)
                .iter()
                .any(|v| v.as_bytes().trim_ascii() == b"1")
        };
        let (allowed, reason) = if says_one("dnt") {
            (false, Reason::DoNotTrack)
        } else if says_one("sec-gpc") {
            (false, Reason::GlobalPrivacyControl)
        } else if tenant.training == Consent::OptIn {
            (true, Reason::TenantOptedIn)
        } else {
            (false, Reason::TenantOptedOut)
        };
        Decision { allowed, reason }
    }

    /// The decision for a request: its tenant from the api_key layer's
    /// [`KeyContext`] or a host-set [`Tenant`], under `policy`.
    /// A decision already in the extensions (a host application's, or an outer layer's)
    /// can only make the request stricter: an opt-out there stays.
    pub fn for_request<B>(req: &http::Request<B>, policy: &Policy) -> Decision {
        let ext = req.extensions();
        let tenant = ext
            .get::<KeyContext>()
            .and_then(|c| c.tenant.clone())
            .or_else(|| ext.get::<Tenant>().cloned());
        let d = Decision::of(
            req.headers(),
            policy.get(tenant.as_ref().map(Tenant::as_str)),
        );
        match ext.get::<Decision>() {
            Some(prev) if !prev.allowed => *prev,
            _ => d,
        }
    }

    /// The value of the [`TRAINING_HEADER`]: `opted-in` or `opted-out`.
    pub fn header_value(self) -> HeaderValue {
        HeaderValue::from_static(if self.allowed {
            "opted-in"
        } else {
            "opted-out"
        })
    }

    /// Records the decision on the request: in its extensions, on its exchange (the
    /// access record) and on the current span (the retention layer's request span), so
    /// every record emitted inside the exchange carries `training.allowed`.
    pub fn apply<B>(self, req: &mut http::Request<B>) {
        if let Some(x) = req.extensions().get::<crate::telemetry::Exchange>() {
            x.set_training_allowed(self.allowed);
        }
        tracing::Span::current().record("training.allowed", self.allowed);
        req.extensions_mut().insert(self);
    }

    /// Adds the [`TRAINING_HEADER`] to an answer.
    pub fn mark<B>(self, resp: &mut http::Response<B>) {
        resp.headers_mut()
            .insert(TRAINING_HEADER, self.header_value());
    }
}

/// A provider flag set in the JSON body of opted-out requests: `value` at the JSON
/// pointer `pointer` (objects on the way are created; anything else there is replaced),
/// on `POST` requests whose path ends with one of `endpoints`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flag {
    pub name: String,
    /// Path endings (`/chat/completions`, `/responses`).
    pub endpoints: Vec<String>,
    /// JSON pointer, `/store`, `/provider/data_collection` (no `~` escapes).
    pub pointer: String,
    pub value: serde_json::Value,
}

impl Flag {
    /// OpenAI: `"store": false` on chat completions and the Responses API.
    pub fn store() -> Flag {
        Flag {
            name: "store".into(),
            endpoints: vec!["/chat/completions".into(), "/responses".into()],
            pointer: "/store".into(),
            value: serde_json::Value::Bool(false),
        }
    }

    /// OpenRouter: `"provider": {"data_collection": "deny"}` on completions.
    pub fn data_collection() -> Flag {
        Flag {
            name: "data_collection".into(),
            endpoints: vec!["/chat/completions".into(), "/completions".into()],
            pointer: "/provider/data_collection".into(),
            value: serde_json::Value::String("deny".into()),
        }
    }

    /// The built-in flags: `store`, `data_collection`.
    pub fn builtin() -> Vec<Flag> {
        vec![Flag::store(), Flag::data_collection()]
    }

    /// Whether this flag applies to a request path.
    pub fn applies_to(&self, path: &str) -> bool {
        let path = path.split(['?', '#']).next().unwrap_or_default();
        let path = path.trim_end_matches('/');
        self.endpoints.iter().any(|e| path.ends_with(e.as_str()))
    }
}

/// The flags of the upstream a request goes to, set by whoever picked it (the sidecar);
/// it wins over the layer's flags per provider.
#[derive(Debug, Clone)]
pub struct UpstreamFlags(pub Arc<[Flag]>);
