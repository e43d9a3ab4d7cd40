use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body::Body;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use tower::Service;

use super::body::{RedactBody, SseState};
use super::encoding::{self, DecodeError};
use super::future::ResponseFuture;
use super::{BodyKind, Config, Refusal};
use crate::engine::{Error as EngineError, Session, json};
use crate::provider::{Direction, Endpoint, ErrorKind, Provider};

/// Redacts request bodies and restores answers around an inner service.
/// Created by [`RedactLayer`](super::RedactLayer).
#[derive(Debug, Clone)]
pub struct Redact<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> Redact<S> {
    pub(crate) fn from_parts(inner: S, config: Arc<Config>) -> Self {
        Redact { inner, config }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<S, ReqB, ResB> Service<Request<ReqB>> for Redact<S>
where
    S: Service<Request<RedactBody<ReqB>>, Response = Response<ResB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqB: Body<Data = Bytes> + Send + 'static,
    ReqB::Error: Into<BoxError>,
    ResB: Body<Data = Bytes> + Send + 'static,
    ResB::Error: Into<BoxError>,
{
    type Response = Response<RedactBody<ResB>>;
    type Error = S::Error;
    type Future = ResponseFuture<ResB, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        // The clone takes the place of the service that was driven to readiness.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        ResponseFuture::new(handle(inner, self.config.clone(), req))
    }
}

async fn handle<S, ReqB, ResB>(
    mut inner: S,
    config: Arc<Config>,
    req: Request<ReqB>,
) -> Result<Response<RedactBody<ResB>>, S::Error>
where
    S: Service<Request<RedactBody<ReqB>>, Response = Response<ResB>>,
    ReqB: Body<Data = Bytes>,
    ReqB::Error: Into<BoxError>,
    ResB: Body<Data = Bytes>,
    ResB::Error: Into<BoxError>,
{
    let (provider, endpoint) = match config.provider {
        Some(p) => (p, Provider::detect(req.uri().path(), req.headers()).1),
        None => Provider::detect(req.uri().path(), req.headers()),
    };
    // Pseudonyms, actions and allow-lists follow the tenant the api_key layer (or the
    // host application) resolved for this request, if any; what the layer does is
    // reported to the exchange record (the retention layer) and the observer.
    let ext = req.extensions();
    let tenant = ext
        .get::<crate::api_key::KeyContext>()
        .and_then(|c| c.tenant.clone())
        .or_else(|| ext.get::<crate::api_key::Tenant>().cloned());
    let exchange = ext.get::<crate::telemetry::Exchange>().cloned();
    let config = {
        let mut c = (*config).clone();
        if let Some(t) = &tenant {
            c.redactor = c.redactor_for(t.as_str());
        }
        c.observer = Some(Arc::new(super::Tee(c.observer.take(), exchange.clone())));
        Arc::new(c)
    };
    let mut session = Session::default();
    let (mut parts, body) = req.into_parts();
    let kind = BodyKind::of(&parts.headers);
    let body = if config.request && !matches!(kind, BodyKind::Other | BodyKind::EventStream) {
        let bytes = match Limited::new(body, config.body_limit).collect().await {
            Ok(c) => c.to_bytes(),
            Err(e) => {
                let r = if e.downcast_ref::<LengthLimitError>().is_some() {
                    Refusal::new(
                        ErrorKind::TooLarge,
                        "the request body is larger than the gateway accepts",
                        "veilgate_body_too_large",
                    )
                } else {
                    Refusal::new(
                        ErrorKind::InvalidRequest,
                        "the request body could not be read",
                        "veilgate_body_read_error",
                    )
                };
                observe_refusal(&config, Direction::Request, &r);
                return Ok(refuse(provider, &r));
            }
        };
        match rewrite_body(
            &config,
            &mut parts.headers,
            &bytes,
            kind,
            provider,
            endpoint,
            &mut session,
            Direction::Request,
        ) {
            Ok(new) => {
                if matches!(
                    kind,
                    BodyKind::Json | BodyKind::JsonLines | BodyKind::Text | BodyKind::Form
                ) {
                    parts.extensions.insert(super::Redacted(new.clone()));
                }
                RedactBody::full(new)
            }
            Err(r) if config.fail_open_request && r.kind != ErrorKind::Permission => {
                crate::telemetry::event!(
                    WARN,
                    "veilgate::security",
                    &crate::telemetry::stamp_for(exchange.as_ref(), crate::policy::Class::Security),
                    "request forwarded unscanned (fail-open)",
                    code = r.code,
                );
                RedactBody::full(bytes)
            }
            Err(r) => {
                observe_refusal(&config, Direction::Request, &r);
                return Ok(refuse(provider, &r));
            }
        }
    } else {
        RedactBody::passthrough(body)
    };
    if let Some(o) = &config.observer {
        if !session.counts.is_empty() {
            o.detections(Direction::Request, &session.counts);
        }
    }
    if config.response {
        // Answers must be readable to be restored: ask the upstream not to compress.
        parts
            .headers
            .insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
    }
    let resp = inner.call(Request::from_parts(parts, body)).await?;
    if !config.response {
        return Ok(resp.map(RedactBody::passthrough));
    }
    Ok(respond(&config, resp, provider, endpoint, session).await)
}

fn observe_refusal(config: &Config, dir: Direction, r: &Refusal) {
    if let Some(o) = &config.observer {
        o.refused(dir, r.kind.status().as_u16(), r.code);
    }
}

fn refuse<B>(provider: Provider, r: &Refusal) -> Response<RedactBody<B>> {
    crate::provider::error_response::<Bytes>(provider, r.kind, r.message, r.code)
        .map(RedactBody::full)
}

/// Decodes a body, rewrites it (requests: detect and transform; answers: restore and
/// treat model-produced PII) by its kind, and fixes the headers to match.
#[allow(clippy::too_many_arguments)]
fn rewrite_body(
    config: &Config,
    headers: &mut HeaderMap,
    body: &Bytes,
    kind: BodyKind,
    provider: Provider,
    endpoint: Endpoint,
    session: &mut Session,
    dir: Direction,
) -> Result<Bytes, Refusal> {
    let decoded = decode(headers, body, config.body_limit, dir)?;
    if decoded.trim_ascii().is_empty() {
        // SDKs send `content-type: application/json` on bodyless calls too
        // (files.delete, responses.cancel): nothing to scan, nothing to refuse.
        return Ok(body.clone());
    }
    let redactor = &config.redactor;
    let refuse = |e: EngineError| Refusal::engine(&e, dir);
    // One string value: its edits (a request's table rows under their header row).
    let value = |lit: &json::StrLit<'_>,
                 s: &str,
                 session: &mut Session,
                 tables: &mut json::Tables| match dir {
        Direction::Request => json::redact_value(
            redactor,
            session,
            lit.key(),
            s,
            0,
            lit.raw_start,
            Some(lit.raw),
            tables.header(redactor, lit.path, s),
        ),
        Direction::Response if json::is_blob(s) => Ok(Vec::new()),
        Direction::Response => {
            let out = redactor.respond_str(s, session)?;
            Ok(if out == s {
                Vec::new()
            } else {
                vec![json::Edit {
                    range: 0..s.len(),
                    text: out.into_owned(),
                }]
            })
        }
    };
    let out: Option<Vec<u8>> = match kind.sniff(&decoded) {
        BodyKind::Json => {
            let mut tables = json::Tables::default();
            json::rewrite(&decoded, |lit, s| {
                if lit.is_key || !provider.is_content(endpoint, dir, lit.path) {
                    return Ok(Vec::new());
                }
                value(lit, s, session, &mut tables)
            })
            .map_err(refuse)?
        }
        BodyKind::JsonLines => {
            let mut out = Vec::with_capacity(decoded.len());
            let mut changed = false;
            for line in decoded.split_inclusive(|&b| b == b'\n') {
                let content = line.trim_ascii_end();
                if content.is_empty() {
                    out.extend_from_slice(line);
                    continue;
                }
                let mut tables = json::Tables::default();
                let new = json::rewrite(content, |lit, s| {
                    if lit.is_key {
                        Ok(Vec::new())
                    } else {
                        value(lit, s, session, &mut tables)
                    }
                })
                .map_err(refuse)?;
                changed |= new.is_some();
                out.extend_from_slice(new.as_deref().unwrap_or(content));
                out.extend_from_slice(&line[content.len()..]);
            }
            changed.then_some(out)
        }
        BodyKind::Text => {
            let text = std::str::from_utf8(&decoded).map_err(|e| {
                refuse(EngineError::InvalidUtf8 {
                    offset: e.valid_up_to(),
                })
            })?;
            let out = match dir {
                Direction::Request => redactor.redact_str(text, session),
                Direction::Response => redactor.respond_str(text, session),
            }
            .map_err(refuse)?;
            match out {
                std::borrow::Cow::Owned(s) => Some(s.into_bytes()),
                std::borrow::Cow::Borrowed(_) => None,
            }
        }
        BodyKind::Form if dir == Direction::Request => {
            super::form::redact_form(redactor, session, &decoded).map_err(refuse)?
        }
        _ => return Ok(body.clone()),
    };
    finish(headers, body, decoded, out)
}

/// The body to forward: the rewritten one, else the decoded one, else the original; the
/// headers are fixed to match (no Content-Encoding once decoded, the new length).
fn finish(
    headers: &mut HeaderMap,
    body: &Bytes,
    decoded: DecodedBody<'_>,
    out: Option<Vec<u8>>,
) -> Result<Bytes, Refusal> {
    let out = match (out, decoded) {
        (Some(new), _) => Bytes::from(new),
        (None, DecodedBody::Borrowed(_)) => return Ok(body.clone()),
        (None, DecodedBody::Owned(d)) => Bytes::from(d),
    };
    headers.remove(CONTENT_ENCODING);
    headers.insert(CONTENT_LENGTH, HeaderValue::from(out.len()));
    Ok(out)
}

fn decode<'a>(
    headers: &HeaderMap,
    body: &'a Bytes,
    limit: usize,
    dir: Direction,
) -> Result<DecodedBody<'a>, Refusal> {
    // Several Content-Encoding lines apply in order, like one comma-separated line.
    let mut codings = Vec::new();
    for v in headers.get_all(CONTENT_ENCODING) {
        codings.extend(encoding::parse_codings(Some(v)).map_err(|e| Refusal::decode(&e, dir))?);
    }
    if codings.is_empty() {
        return Ok(DecodedBody::Borrowed(body));
    }
    encoding::decode(body, &codings, limit)
        .map(DecodedBody::Owned)
        .map_err(|e| Refusal::decode(&e, dir))
}

/// Processes an answer: JSON and text are restored whole, SSE event by event.
async fn respond<B>(
    config: &Config,
    resp: Response<B>,
    provider: Provider,
    endpoint: Endpoint,
    mut session: Session,
) -> Response<RedactBody<B>>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let kind = BodyKind::of(resp.headers());
    match kind {
        BodyKind::EventStream => {
            if !super::encoding::is_identity(resp.headers()) {
                if config.fail_open_response {
                    return resp.map(RedactBody::passthrough);
                }
                return refuse(
                    provider,
                    &Refusal::new(
                        ErrorKind::Upstream,
                        "the upstream sent a compressed event stream",
                        "veilgate_unsupported_upstream_encoding",
                    ),
                );
            }
            let (mut parts, body) = resp.into_parts();
            parts.headers.remove(CONTENT_LENGTH);
            let state = SseState::new(config.redactor.clone(), session, provider, endpoint)
                .observed(config.observer.clone());
            Response::from_parts(parts, RedactBody::sse(body, state))
        }
        BodyKind::Json | BodyKind::JsonLines | BodyKind::Text | BodyKind::Unknown => {
            let (mut parts, body) = resp.into_parts();
            let collected = match Limited::new(body, config.body_limit).collect().await {
                Ok(c) => c,
                Err(e) => {
                    let r = if e.downcast_ref::<LengthLimitError>().is_some() {
                        Refusal::new(
                            ErrorKind::Upstream,
                            "the upstream answer is larger than the gateway accepts",
                            "veilgate_response_too_large",
                        )
                    } else {
                        Refusal::new(
                            ErrorKind::Upstream,
                            "the upstream answer could not be read",
                            "veilgate_upstream_error",
                        )
                    };
                    observe_refusal(config, Direction::Response, &r);
                    return refuse(provider, &r);
                }
            };
            let trailers = collected.trailers().cloned();
            let bytes = collected.to_bytes();
            let before = session.counts.clone();
            match rewrite_body(
                config,
                &mut parts.headers,
                &bytes,
                kind,
                provider,
                endpoint,
                &mut session,
                Direction::Response,
            ) {
                Ok(new) => {
                    if let Some(o) = &config.observer {
                        let d = super::delta(&before, &session.counts);
                        if !d.is_empty() {
                            o.detections(Direction::Response, &d);
                        }
                    }
                    Response::from_parts(parts, RedactBody::full_with_trailers(new, trailers))
                }
                Err(_) if config.fail_open_response => {
                    Response::from_parts(parts, RedactBody::full_with_trailers(bytes, trailers))
                }
                Err(r) => {
                    observe_refusal(config, Direction::Response, &r);
                    refuse(provider, &r)
                }
            }
        }
        BodyKind::Form | BodyKind::Other => resp.map(RedactBody::passthrough),
    }
}

/// A body after Content-Encoding was undone.
pub(crate) enum DecodedBody<'a> {
    Borrowed(&'a [u8]),
    Owned(Vec<u8>),
}

impl std::ops::Deref for DecodedBody<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            DecodedBody::Borrowed(b) => b,
            DecodedBody::Owned(v) => v,
        }
    }
}

impl BodyKind {
    /// Classifies a body by its Content-Type.
    pub(crate) fn of(headers: &HeaderMap) -> BodyKind {
        let Some(ct) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
            return BodyKind::Unknown;
        };
        let essence = ct.split(';').next().unwrap_or("").trim();
        // Media types are compared ignoring ASCII case; a stack copy spares an
        // allocation per message for every type that fits (all the ones matched here).
        let mut buf = [0u8; 64];
        let lower;
        let essence = match buf.get_mut(..essence.len()) {
            Some(b) => {
                b.copy_from_slice(essence.as_bytes());
                b.make_ascii_lowercase();
                std::str::from_utf8(b).unwrap_or_default()
            }
            None => {
                lower = essence.to_ascii_lowercase();
                lower.as_str()
            }
        };
        match essence {
            "application/json" => BodyKind::Json,
            "application/x-ndjson" | "application/jsonl" | "application/json-lines" => {
                BodyKind::JsonLines
            }
            "text/event-stream" => BodyKind::EventStream,
            "application/x-www-form-urlencoded" => BodyKind::Form,
            e if e.ends_with("+json") => BodyKind::Json,
            e if e.starts_with("text/") => BodyKind::Text,
            _ => BodyKind::Other,
        }
    }
}

impl BodyKind {
    /// Resolves [`BodyKind::Unknown`] (no Content-Type) by looking at the decoded body:
    /// JSON if it starts like JSON, text if it is UTF-8, else not scanned.
    fn sniff(self, body: &[u8]) -> BodyKind {
        if self != BodyKind::Unknown {
            return self;
        }
        match body.trim_ascii_start().first() {
            None => BodyKind::Other,
            Some(b'{' | b'[') => BodyKind::Json,
            _ if std::str::from_utf8(body).is_ok() => BodyKind::Text,
            _ => BodyKind::Other,
        }
    }
}

impl Refusal {
    pub(crate) fn engine(e: &EngineError, dir: Direction) -> Refusal {
        let upstream = dir == Direction::Response;
        match e {
            EngineError::Blocked { .. } => Refusal::new(
                ErrorKind::Permission,
                "the content contains data that the privacy policy blocks",
                "veilgate_blocked",
            ),
            EngineError::InvalidUtf8 { .. } if upstream => Refusal::new(
                ErrorKind::Upstream,
                "the upstream answer is not valid UTF-8",
                "veilgate_invalid_upstream_utf8",
            ),
            EngineError::InvalidUtf8 { .. } => Refusal::new(
                ErrorKind::InvalidRequest,
                "the request body is not valid UTF-8",
                "veilgate_invalid_utf8",
            ),
            _ if upstream => Refusal::new(
                ErrorKind::Upstream,
                "the upstream answer is not valid JSON",
                "veilgate_invalid_upstream_json",
            ),
            _ => Refusal::new(
                ErrorKind::InvalidRequest,
                "the request body is not valid JSON",
                "veilgate_invalid_json",
            ),
        }
    }

    fn decode(e: &DecodeError, dir: Direction) -> Refusal {
        match (e, dir) {
            (DecodeError::Unsupported(_), Direction::Request) => Refusal::new(
                ErrorKind::UnsupportedMediaType,
                "the request uses a Content-Encoding the gateway cannot decode",
                "veilgate_unsupported_encoding",
            ),
            (DecodeError::TooLarge, Direction::Request) => Refusal::new(
                ErrorKind::TooLarge,
                "the decoded request body is larger than the gateway accepts",
                "veilgate_body_too_large",
            ),
            (DecodeError::Corrupt, Direction::Request) => Refusal::new(
                ErrorKind::InvalidRequest,
                "the request body does not match its Content-Encoding",
                "veilgate_invalid_encoding",
            ),
            (_, Direction::Response) => Refusal::new(
                ErrorKind::Upstream,
                "the upstream answer could not be decoded",
                "veilgate_upstream_encoding",
            ),
        }
    }
}
