//! An Axum gateway that proxies `/v1/*` to an AI provider through veilgate's privacy stack
//! (`PrivacyLayer`: retention records, API-key ids, redaction): PII and secrets leave the
//! prompt before it reaches the provider, and pseudonyms are restored in the answer,
//! streamed (SSE) answers included. A small auth middleware of the host application names
//! the tenant (here from an `x-demo-tenant` header: stand-in for a real login) and the
//! client address, which veilgate records only truncated to /24 or /48.
//!
//! ```sh
//! UPSTREAM=http://127.0.0.1:8080 LISTEN=127.0.0.1:3000 cargo run --example axum_gateway
//! curl -s localhost:3000/v1/chat/completions -H 'content-type: application/json' \
//!   -d '{"model":"gpt-4o","messages":[{"role":"user","content":"mail anna.kowalski@posteo.de"}]}'
//! ```
//!
//! - `UPSTREAM`: the provider's base URL (default `https://api.openai.com`). This example's
//!   client speaks plain HTTP only, to keep it short: point it at a local model server or a
//!   TLS-terminating proxy. The `veilgate` sidecar binary has the TLS client.
//! - `LISTEN`: the address to bind (default `127.0.0.1:3000`; port 0 picks a free port).
//!   The first line on stdout is `listening on ADDR`.
//!
//! The stack goes on the whole router with `Router::layer`: its error type is the inner
//! service's (`Infallible` for a router), so no `HandleErrorLayer` is needed; bad input is
//! answered by the layer itself with a provider-shaped error. Records go to `tracing`;
//! this example installs no subscriber (the sidecar binary shows one way to export them).

use std::io::Write;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{Uri, Version, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::any;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::net::SocketAddr;
use std::sync::Arc;
use veilgate::api_key::Tenant;
use veilgate::policy::{Policy, Schedule, TenantConfig};
use veilgate::provider::{ErrorKind, Provider, error_response};
use veilgate::redact::{PrivacyLayer, strip_hop_by_hop};
use veilgate::retention::ClientIp;

#[derive(Clone)]
struct Upstream {
    /// Base URL without a trailing slash, e.g. `http://127.0.0.1:8080`.
    base: String,
    client: Client<HttpConnector, Body>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let base = std::env::var("UPSTREAM").unwrap_or_else(|_| "https://api.openai.com".to_string());
    let listen = std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:3000".to_string());

    let upstream = Upstream {
        base: base.trim_end_matches('/').to_string(),
        client: Client::builder(TokioExecutor::new()).build_http(),
    };

    let app = Router::new()
        .route("/v1/{*rest}", any(proxy))
        .with_state(upstream)
        // Every request and answer of the router goes through the privacy stack. Build it
        // once: the filters compile here, not per request.
        .layer(PrivacyLayer::new().policy(Arc::new(policy())))
        // Layers added later run first: the host's auth names the tenant before veilgate.
        .layer(middleware::from_fn(host_auth));

    let listener = tokio::net::TcpListener::bind(&listen).await?;
    // Tests (and scripts) read the bound address from the first line.
    println!("listening on {}", listener.local_addr()?);
    std::io::stdout().flush()?;
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}

/// The tenants' policy: a year of usage records by default; the demo tenant `acme` has
/// e-mail addresses hashed instead of pseudonymized and keeps usage records 90 days.
fn policy() -> Policy {
    let acme: TenantConfig = toml::from_str(
        r#"
        actions = { EMAIL = "hash" }
        retention = { usage = 90 }
        "#,
    )
    .expect("a valid tenant table");
    Policy::new(Schedule::default()).tenant("acme", acme)
}

/// The host application's own auth, reduced to a header for the demo: it puts the tenant
/// and the client address into the request extensions, where veilgate finds them.
async fn host_auth(
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut req: Request,
    next: Next,
) -> Response {
    let tenant = req
        .headers()
        .get("x-demo-tenant")
        .and_then(|v| v.to_str().ok())
        .map(|t| Tenant::new(t.trim()));
    req.headers_mut().remove("x-demo-tenant");
    if let Some(t) = tenant {
        req.extensions_mut().insert(t);
    }
    req.extensions_mut().insert(ClientIp(peer.ip()));
    next.run(req).await
}

/// Forwards the (already redacted) request and streams the answer back as it arrives: the
/// layer rewrites SSE answers event by event, so nothing here buffers.
async fn proxy(State(up): State<Upstream>, req: Request) -> Response {
    let (mut parts, body) = req.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let uri: Uri = match format!("{}{}", up.base, path).parse() {
        Ok(u) => u,
        Err(_) => return gateway_error("the upstream URL is invalid"),
    };
    parts.uri = uri;
    // The client's HTTP version is the gateway's business, not the upstream connection's:
    // an HTTP/2 request from the client goes upstream over this client's HTTP/1.1.
    parts.version = Version::HTTP_11;
    strip_hop_by_hop(&mut parts.headers);
    // The client sets `Host` from the URI.
    parts.headers.remove(header::HOST);

    match up.client.request(Request::from_parts(parts, body)).await {
        Ok(resp) => {
            let (mut parts, body) = resp.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            Response::from_parts(parts, Body::new(body))
        }
        // Never echo the error's details: they may carry the URL or parts of the request.
        Err(_) => {
            gateway_error("the upstream could not be reached (this example speaks plain HTTP only)")
        }
    }
}

/// A provider-shaped 502 (the library's error shape; never the error's details).
fn gateway_error(message: &str) -> Response {
    error_response::<axum::body::Body>(
        Provider::OpenAi,
        ErrorKind::Upstream,
        message,
        "veilgate_upstream_unreachable",
    )
}
