use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response};
use http_body::Body;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use tower::Service;

use super::body::{PurposeGuard, TrainingBody};
use super::layer::Config;
use super::rules::{self, Field};
use super::{Decision, Flag, UpstreamFlags};
use crate::policy::Class;
use crate::provider::{Direction, ErrorKind, Provider, error_response};
use crate::redact::encoding;
use crate::telemetry::{Exchange, event, stamp_for};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Keeps opted-out requests away from training around an inner service. Created by
/// [`TrainingLayer`](super::TrainingLayer).
#[derive(Debug, Clone)]
pub struct Training<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> Training<S> {
    pub(crate) fn from_parts(inner: S, config: Arc<Config>) -> Self {
        Training { inner, config }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for Training<S>
where
    S: Service<Request<TrainingBody<ReqB>>, Response = Response<ResB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqB: Body<Data = Bytes> + Send + 'static,
    ReqB::Error: Into<BoxError>,
    ResB: From<Bytes> + Send + 'static,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ResB>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        // The clone takes the place of the service that was driven to readiness.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let config = self.config.clone();
        Box::pin(async move {
            let mut req = req;
            let decision = Decision::for_request(&req, &config.policy);
            decision.apply(&mut req);
            let mut resp = match prepare(&config, req).await {
                Ok(req) => {
                    let mut inner = inner;
                    inner.call(req).await?
                }
                Err(resp) => resp,
            };
            decision.mark(&mut resp);
            Ok(resp)
        })
    }
}

/// A refusal, as the client will read it.
struct Refusal {
    kind: ErrorKind,
    message: &'static str,
    code: &'static str,
    /// What was refused, for the security record.
    what: &'static str,
}

const OPTED_OUT: &str = "veilgate_training_opted_out";

fn opted_out(message: &'static str, what: &'static str) -> Refusal {
    Refusal {
        kind: ErrorKind::Permission,
        message,
        code: OPTED_OUT,
        what,
    }
}

fn bad(kind: ErrorKind, message: &'static str, code: &'static str) -> Refusal {
    Refusal {
        kind,
        message,
        code,
        what: "unreadable_body",
    }
}

/// The request as it goes on, or the refusal that answers it.
async fn prepare<ReqB, ResB>(
    config: &Config,
    req: Request<ReqB>,
) -> Result<Request<TrainingBody<ReqB>>, Response<ResB>>
where
    ReqB: Body<Data = Bytes>,
    ReqB::Error: Into<BoxError>,
    ResB: From<Bytes>,
{
    let decision = req.extensions().get::<Decision>().copied();
    if decision.is_none_or(|d| d.allowed) {
        return Ok(req.map(TrainingBody::passthrough));
    }
    let (provider, _) = Provider::detect(req.uri().path(), req.headers());
    let exchange = req.extensions().get::<Exchange>().cloned();
    match rewrite(config, provider, req).await {
        Ok(req) => Ok(req),
        Err(r) => {
            let reason = decision.map_or("", |d| d.reason.as_str());
            if let Some(x) = &exchange {
                x.set_refusal(r.code);
            }
            if let Some(o) = &config.observer {
                o.refused(Direction::Request, r.kind.status().as_u16(), r.code);
            }
            let stamp = stamp_for(exchange.as_ref(), Class::Security);
            let message = if r.code == OPTED_OUT {
                "training endpoint refused: the request is opted out of training"
            } else {
                "opted-out request refused: its body could not be checked"
            };
            event!(
                INFO,
                "veilgate::security",
                &stamp,
                "training refusal",
                code = r.code,
                endpoint = r.what,
                training.reason = reason,
                training.allowed = false,
                http.response.status_code = r.kind.status().as_u16(),
                detail = message,
            );
            Err(error_response(provider, r.kind, r.message, r.code))
        }
    }
}

async fn rewrite<ReqB>(
    config: &Config,
    provider: Provider,
    req: Request<ReqB>,
) -> Result<Request<TrainingBody<ReqB>>, Refusal>
where
    ReqB: Body<Data = Bytes>,
    ReqB::Error: Into<BoxError>,
{
    let path = rules::api_path(req.uri().path());
    let creates = matches!(*req.method(), Method::POST | Method::PUT | Method::PATCH);
    if creates && rules::FINE_TUNING.iter().any(|p| path == *p) {
        return Err(opted_out(
            "fine-tuning is not available: this request is opted out of model training",
            "fine_tuning",
        ));
    }
    let raw = req.uri().path();
    if creates
        && config
            .refuse_paths
            .iter()
            .any(|p| rules::under(&path, p) || rules::under(raw, p))
    {
        return Err(opted_out(
            "this endpoint shares data for training and is not available: this request is opted out of model training",
            "training_endpoint",
        ));
    }
    if *req.method() == Method::POST && path == "/v1/files" {
        return check_upload(config, req).await;
    }
    let all: Arc<[Flag]> = match req.extensions().get::<UpstreamFlags>() {
        Some(f) => f.0.clone(),
        None => config.flags.get(&provider).cloned().unwrap_or_default(),
    };
    let flags: Vec<&Flag> = all
        .iter()
        .filter(|f| f.applies_to(req.uri().path()))
        .collect();
    let uploads = *req.method() == Method::POST && path == "/v1/uploads";
    if !uploads && (flags.is_empty() || *req.method() != Method::POST) {
        return Ok(req.map(TrainingBody::passthrough));
    }
    let (mut parts, body) = req.into_parts();
    let bytes = read_all(body, config.body_limit).await?;
    let mut codings = Vec::new();
    for v in parts.headers.get_all(CONTENT_ENCODING) {
        codings.extend(encoding::parse_codings(Some(v)).map_err(decode_refusal)?);
    }
    let decoded = if codings.is_empty() {
        bytes.clone()
    } else {
        Bytes::from(encoding::decode(&bytes, &codings, config.body_limit).map_err(decode_refusal)?)
    };
    if decoded.trim_ascii().is_empty() {
        // Bodyless calls (`responses/{id}/cancel`): nothing to flag.
        return Ok(Request::from_parts(parts, TrainingBody::full(bytes)));
    }
    // Fail closed: a body whose flags cannot be set is not forwarded. Invalid JSON gets
    // the redact layer's code, as it would have without this layer.
    if serde_json::from_slice::<serde::de::IgnoredAny>(&decoded).is_err() {
        return Err(bad(
            ErrorKind::InvalidRequest,
            "the request body is not valid JSON",
            "veilgate_invalid_json",
        ));
    }
    let unparseable = || {
        bad(
            ErrorKind::InvalidRequest,
            "the request body is not a JSON object, so its training flags cannot be set",
            "veilgate_training_invalid_body",
        )
    };
    if uploads {
        let v: serde_json::Value = serde_json::from_slice(&decoded).map_err(|_| unparseable())?;
        let purpose = v.get("purpose").and_then(|p| p.as_str()).unwrap_or("");
        if config.refuse_file_purposes.iter().any(|p| p == purpose) {
            return Err(opted_out(
                "uploads for fine-tuning are not available: this request is opted out of model training",
                "upload",
            ));
        }
    }
    let mut out: Option<Vec<u8>> = None;
    for f in &flags {
        let current = out.as_deref().unwrap_or(&decoded);
        out = Some(rules::set_pointer(current, &f.pointer, &f.value).map_err(|_| unparseable())?);
    }
    let out = out.unwrap_or_else(|| decoded.to_vec());
    if out == bytes {
        return Ok(Request::from_parts(parts, TrainingBody::full(bytes)));
    }
    parts.headers.remove(CONTENT_ENCODING);
    parts
        .headers
        .insert(CONTENT_LENGTH, HeaderValue::from(out.len()));
    Ok(Request::from_parts(
        parts,
        TrainingBody::full(Bytes::from(out)),
    ))
}

/// `POST /v1/files`: reads the multipart body up to its `purpose` field (bounded); the
/// bytes read are forwarded followed by the rest, untouched.
async fn check_upload<ReqB>(
    config: &Config,
    req: Request<ReqB>,
) -> Result<Request<TrainingBody<ReqB>>, Refusal>
where
    ReqB: Body<Data = Bytes>,
    ReqB::Error: Into<BoxError>,
{
    let (parts, body) = req.into_parts();
    let ct = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(boundary) = rules::boundary(ct) else {
        // Not multipart (OpenAI takes only multipart here): nothing to look at.
        return Ok(Request::from_parts(parts, TrainingBody::passthrough(body)));
    };
    if !crate::redact::encoding::is_identity(&parts.headers) {
        return Err(bad(
            ErrorKind::UnsupportedMediaType,
            "a compressed upload cannot be checked for its purpose; send it uncompressed",
            "veilgate_training_unsupported_encoding",
        ));
    }
    let mut body = Box::pin(body);
    let mut buf = BytesMut::new();
    // Scanned again only once the buffer has doubled (or the body ended): linear in the
    // body's size however small the client's frames are.
    let mut scan_at = 0usize;
    let mut guard = None;
    let mut ended = false;
    loop {
        if buf.len() < scan_at && !ended {
            match body.as_mut().frame().await {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(d) => buf.extend_from_slice(&d),
                    Err(_) => ended = true,
                },
                Some(Err(_)) => {
                    return Err(bad(
                        ErrorKind::InvalidRequest,
                        "the request body could not be read",
                        "veilgate_body_read_error",
                    ));
                }
                None => ended = true,
            }
            if buf.len() > config.body_limit {
                return Err(bad(
                    ErrorKind::TooLarge,
                    "the upload's purpose field was not found within the size the gateway reads",
                    "veilgate_body_too_large",
                ));
            }
            continue;
        }
        scan_at = (buf.len() * 2).max(16 * 1024);
        match rules::multipart_field(&buf, &boundary, "purpose") {
            Field::Found(p) => {
                if config.refuse_file_purposes.contains(&p) {
                    return Err(opted_out(
                        "uploads for fine-tuning are not available: this request is opted out of model training",
                        "file_upload",
                    ));
                }
                // One `purpose` per upload: a second one (here or later in the stream)
                // is what a backend keeping the last value would act on.
                if PurposeGuard::count(&buf) > 1 {
                    return Err(bad(
                        ErrorKind::InvalidRequest,
                        "the upload names its purpose more than once",
                        "veilgate_training_duplicate_purpose",
                    ));
                }
                guard = Some(PurposeGuard::after(&buf));
                break;
            }
            Field::Absent => break,
            Field::Incomplete if ended => break,
            Field::Incomplete => {}
        }
    }
    Ok(Request::from_parts(
        parts,
        TrainingBody::prefixed(buf.freeze(), body, guard),
    ))
}

async fn read_all<B>(body: B, limit: usize) -> Result<Bytes, Refusal>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    match Limited::new(body, limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(bad(
            ErrorKind::TooLarge,
            "the request body is larger than the gateway accepts",
            "veilgate_body_too_large",
        )),
        Err(_) => Err(bad(
            ErrorKind::InvalidRequest,
            "the request body could not be read",
            "veilgate_body_read_error",
        )),
    }
}

fn decode_refusal(e: encoding::DecodeError) -> Refusal {
    match e {
        encoding::DecodeError::Unsupported(_) => bad(
            ErrorKind::UnsupportedMediaType,
            "the request uses a Content-Encoding the gateway cannot decode",
            "veilgate_unsupported_encoding",
        ),
        encoding::DecodeError::TooLarge => bad(
            ErrorKind::TooLarge,
            "the decoded request body is larger than the gateway accepts",
            "veilgate_body_too_large",
        ),
        encoding::DecodeError::Corrupt => bad(
            ErrorKind::InvalidRequest,
            "the request body does not match its Content-Encoding",
            "veilgate_invalid_encoding",
        ),
    }
}
