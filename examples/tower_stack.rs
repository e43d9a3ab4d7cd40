//! The redact layer in a plain Tower + hyper stack, without a web framework: a
//! `ServiceBuilder` puts [`RedactLayer`] around a `service_fn` that forwards to the provider
//! with hyper-util's client; hyper-util's server serves it (HTTP/1 and HTTP/2, chosen per
//! connection).
//!
//! ```sh
//! UPSTREAM=http://127.0.0.1:8080 LISTEN=127.0.0.1:3000 cargo run --example tower_stack
//! ```
//!
//! - `UPSTREAM`: the provider's base URL (default `https://api.openai.com`). This example's
//!   client speaks plain HTTP only, to keep it short; the `veilgate` sidecar binary adds TLS.
//! - `LISTEN`: the address to bind (default `127.0.0.1:3000`; port 0 picks a free port).
//!   The first line on stdout is `listening on ADDR`.

use std::convert::Infallible;
use std::io::Write;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, Uri, Version, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tower::ServiceBuilder;
use veilgate::provider::{ErrorKind, Provider, error_response};
use veilgate::redact::{RedactBody, RedactLayer, strip_hop_by_hop};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The body the forwarding service answers with: the upstream's, streamed, or an error.
type ProxyBody = BoxBody<Bytes, hyper::Error>;
/// What the forwarding service receives: the request body after the redact layer.
type UpstreamClient = Client<HttpConnector, RedactBody<Incoming>>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let base = std::env::var("UPSTREAM").unwrap_or_else(|_| "https://api.openai.com".to_string());
    let listen = std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:3000".to_string());
    let base: Arc<str> = base.trim_end_matches('/').into();
    let client: UpstreamClient = Client::builder(TokioExecutor::new()).build_http();

    // The innermost service: forwards to the upstream. Its errors become 502 answers, so
    // the whole stack is infallible (the layer's error type is the inner service's).
    let forward = tower::service_fn(move |req: Request<RedactBody<Incoming>>| {
        let (client, base) = (client.clone(), base.clone());
        async move { Ok::<_, Infallible>(forward(&client, &base, req).await) }
    });
    // Built once: the filters compile here, not per request or per connection.
    let svc = ServiceBuilder::new()
        .layer(RedactLayer::new())
        .service(forward);

    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("listening on {}", listener.local_addr()?);
    std::io::stdout().flush()?;
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(conn) => conn,
            // Out of file descriptors and the like: keep serving the other connections.
            Err(_) => continue,
        };
        let svc = TowerToHyperService::new(svc.clone());
        tokio::spawn(async move {
            // Connection errors (a client hanging up mid-stream) end only that connection.
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// Sends the redacted request upstream; the answer streams back as it arrives, and the
/// layer rewrites SSE event by event on the way out.
async fn forward(
    client: &UpstreamClient,
    base: &str,
    req: Request<RedactBody<Incoming>>,
) -> Response<ProxyBody> {
    let (mut parts, body) = req.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let Ok(uri) = format!("{base}{path}").parse::<Uri>() else {
        return gateway_error("the upstream URL is invalid");
    };
    parts.uri = uri;
    // The client's HTTP version is the gateway's business, not the upstream connection's:
    // an HTTP/2 request from the client goes upstream over this client's HTTP/1.1.
    parts.version = Version::HTTP_11;
    // HTTP/2 clients send no `Host`; HTTP/1 ones name the gateway. The client sets it from the URI.
    parts.headers.remove(header::HOST);
    strip_hop_by_hop(&mut parts.headers);
    match client.request(Request::from_parts(parts, body)).await {
        Ok(resp) => {
            let (mut parts, body) = resp.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            Response::from_parts(parts, body.boxed())
        }
        // Never echo the error's details: they may carry the URL or parts of the request.
        Err(_) => {
            gateway_error("the upstream could not be reached (this example speaks plain HTTP only)")
        }
    }
}

/// A provider-shaped 502 (the library's error shape; never the error's details).
fn gateway_error(message: &str) -> Response<ProxyBody> {
    error_response::<Bytes>(
        Provider::OpenAi,
        ErrorKind::Upstream,
        message,
        "veilgate_upstream_unreachable",
    )
    .map(|b| Full::new(b).map_err(|e| match e {}).boxed())
}
