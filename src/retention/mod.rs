//! The retention middleware: every exchange gets a request span and one access record,
//! each tagged with its retention class, and token usage becomes a billing record.
//!
//! # What it does
//!
//! Put it outermost (the sidecar's order is retention → api_key → training → redact →
//! upstream). For each request it:
//!
//! - puts an [`Exchange`](crate::telemetry::Exchange) into the request extensions, which
//!   the inner veilgate layers fill in (key id, tenant, detections by entity, upstream,
//!   training consent, refusal code);
//! - opens the span `veilgate.request` (class `usage`) around the inner service and the
//!   answer body;
//! - when the answer body ends (or the client goes away), writes one **access record**
//!   (target `veilgate::access`, class `usage`): method, path (segments that could carry
//!   personal data, such as an e-mail address, replaced by `*`), status, latency,
//!   upstream, key id, tenant, client address truncated to /24 or /48 (from a
//!   [`ClientIp`] extension), detections counted by entity; a **security record** when
//!   anything was detected; and, when the answer reported token `usage` (JSON answers,
//!   and the usage events at the end of OpenAI and Anthropic streams), a **billing
//!   record** with the token counts; plus metric events (`veilgate::metrics`).
//!
//! Every record carries `retention.class`, `retention.days` and `retention.expires_at`
//! from the tenant's [`Schedule`](crate::policy::Schedule) (see [`crate::telemetry`]).
//! Bodies are class `content`: never written anywhere. The layer never fails a request.
//!
//! # Example
//!
//! ```
//! use std::convert::Infallible;
//! use std::sync::Arc;
//! use bytes::Bytes;
//! use http::{Request, Response};
//! use http_body_util::{BodyExt, Full};
//! use tower::{ServiceBuilder, ServiceExt};
//! use veilgate::policy::{Policy, Schedule};
//! use veilgate::retention::{ClientIp, RetentionLayer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let policy = Arc::new(Policy::new(Schedule { usage: 400, ..Schedule::default() }));
//! let svc = ServiceBuilder::new()
//!     .layer(RetentionLayer::new(policy))
//!     .service(tower::service_fn(|_req: Request<Full<Bytes>>| async {
//!         Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(
//!             r#"{"usage":{"prompt_tokens":12,"completion_tokens":3}}"#,
//!         ))))
//!     }));
//! let mut req = Request::new(Full::new(Bytes::new()));
//! req.extensions_mut().insert(ClientIp("203.0.113.9".parse().unwrap()));
//! let resp = svc.oneshot(req).await.unwrap();
//! // The access record (usage, 400 days) and the billing record are written when the
//! // body has been read to the end.
//! resp.into_body().collect().await.unwrap();
//! # }
//! ```

mod body;
mod layer;
mod service;
mod usage;

pub use body::RetentionBody;
pub use layer::RetentionLayer;
pub use service::{ResponseFuture, Retention};
pub use usage::TokenUsage;

use std::net::IpAddr;

/// The client's address, as the server accepting the connection saw it; put into the
/// request extensions by the server (the sidecar does; with axum, copy it from
/// `ConnectInfo<SocketAddr>` in a small middleware). Only its /24 or /48 is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// A request path safe to record: the query string is dropped, and a segment that could
/// carry personal data becomes `*`. Kept: route words and versions (`chat`, `v1`,
/// `gpt-4.1-mini`: at most 4 digits, no `.` between letters) and prefixed ids
/// (`file-abc123`, `resp_68af...`: lower-case prefix, then an id with a letter in it).
/// Starred: anything with other characters (`@`, `+`, `%`, spaces), longer than 64
/// bytes, with 5 or more digits (card, phone, account numbers, IP addresses), or with a
/// `.` between letters (`john.doe`, host names).
pub fn record_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for (i, seg) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.push_str(if plain_segment(seg) { seg } else { "*" });
    }
    out
}

fn plain_segment(seg: &str) -> bool {
    let b = seg.as_bytes();
    if b.len() > 64
        || !b
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || b"._:~-".contains(c))
    {
        return false;
    }
    let digits = |x: &[u8]| x.iter().filter(|c| c.is_ascii_digit()).count();
    if let Some(p) = b.iter().position(|c| matches!(c, b'-' | b'_')) {
        let id = &b[p + 1..];
        if p >= 2
            && b[..p].iter().all(u8::is_ascii_lowercase)
            && !id.contains(&b'.')
            && (id.iter().any(u8::is_ascii_alphabetic) || digits(id) <= 4)
        {
            return true;
        }
    }
    let dotted_word = b
        .windows(3)
        .any(|w| w[0].is_ascii_alphabetic() && w[1] == b'.' && w[2].is_ascii_alphabetic());
    digits(b) <= 4 && !dotted_word
}

#[cfg(test)]
mod tests {
    use super::record_path;

    #[test]
    fn paths_keep_routes_and_lose_personal_segments() {
        assert_eq!(record_path("/v1/chat/completions"), "/v1/chat/completions");
        assert_eq!(
            record_path("/v1/files/file-abc123/content"),
            "/v1/files/file-abc123/content"
        );
        assert_eq!(record_path("/users/jane@acme.io/x"), "/users/*/x");
        assert_eq!(record_path("/c/+4915112345678"), "/c/*");
        assert_eq!(record_path("/c/jane%40acme.io"), "/c/*");
        assert_eq!(record_path(&format!("/t/{}", "a".repeat(65))), "/t/*");
        for kept in [
            "/openai/deployments/gpt-4.1-mini/chat/completions",
            "/v1/responses/resp_68af4c2b9e1c8190a3f2d7e6b5c4a3b2",
            "/v1/threads/thread_abc123/runs/run_9f8e7d6c5b",
            "/v1beta/models/gemini-1.5-pro:generateContent",
        ] {
            assert_eq!(record_path(kept), kept);
        }
        for (path, want) in [
            ("/cards/4111111111111111", "/cards/*"),
            ("/c/004930123456", "/c/*"),
            ("/x/192.168.0.7", "/x/*"),
            ("/u/john.doe", "/u/*"),
            ("/card-4111111111111111/x", "/*/x"),
        ] {
            assert_eq!(record_path(path), want);
        }
    }
}
