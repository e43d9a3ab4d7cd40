//! The capture tap: for opted-in requests only, the redacted request and the upstream's
//! answer go to a [`CaptureSink`].
//!
//! [`CaptureLayer`] must sit **inside** the redact layer, between it and the upstream:
//! there the request body is the one the redact layer forwarded (it leaves it in the
//! request extensions as [`Redacted`](crate::redact::Redacted)), and the answer is the
//! upstream's, before pseudonyms are restored, so a restored value can never reach the
//! sink. A request is captured only when all of these hold:
//!
//! - a [`Decision`] in its extensions allows training (the training layer, outside the
//!   redact layer, puts it there), and it carries neither `DNT: 1` nor `Sec-GPC: 1`;
//! - the redact layer scanned its body (JSON, JSON lines, text, form); bodies it passed
//!   through unscanned (multipart, binary, fail-open) are never captured;
//! - the tenant's schedule keeps the `training` class more than 0 days;
//! - the answer is a 2xx JSON, text or SSE answer, not compressed, and both bodies fit
//!   within [`CaptureOptions::max_record_bytes`](super::CaptureOptions).
//!
//! The record is queued when the answer's last byte has passed; an answer the client
//! abandons is not captured.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use http::header::CONTENT_TYPE;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use tower::{Layer, Service};

use super::sink::Job;
use super::{CaptureSink, Decision, Reason};
use crate::api_key::{KeyContext, Tenant};
use crate::policy::{Class, Policy};
use crate::provider::Provider;
use crate::telemetry::{Exchange, Stamp};

/// Applies [`Capture`]: see the [module docs](self).
#[derive(Debug, Clone)]
pub struct CaptureLayer {
    sink: Option<Arc<CaptureSink>>,
    policy: Arc<Policy>,
}

impl CaptureLayer {
    /// Captures into `sink`; retention days come from the request's exchange record, or
    /// from `policy` (the tenant's schedule) when there is none.
    pub fn new(sink: Arc<CaptureSink>, policy: Arc<Policy>) -> Self {
        CaptureLayer {
            sink: Some(sink),
            policy,
        }
    }

    /// A layer that captures nothing (so a stack keeps one type with or without a sink).
    pub fn off(policy: Arc<Policy>) -> Self {
        CaptureLayer { sink: None, policy }
    }
}

impl<S> Layer<S> for CaptureLayer {
    type Service = Capture<S>;

    fn layer(&self, inner: S) -> Capture<S> {
        Capture {
            inner,
            sink: self.sink.clone(),
            policy: self.policy.clone(),
        }
    }
}

/// Copies opted-in exchanges to a sink. Created by [`CaptureLayer`].
#[derive(Debug, Clone)]
pub struct Capture<S> {
    inner: S,
    sink: Option<Arc<CaptureSink>>,
    policy: Arc<Policy>,
}

impl<S> Capture<S> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// What to capture of this request, if anything.
    fn pending<B>(&self, req: &Request<B>) -> Option<Pending> {
        let sink = self.sink.as_ref()?;
        let ext = req.extensions();
        if !ext.get::<Decision>().is_some_and(|d| d.allowed) {
            return None;
        }
        let tenant = ext
            .get::<KeyContext>()
            .and_then(|c| c.tenant.clone())
            .or_else(|| ext.get::<Tenant>().cloned());
        let tenant_policy = self.policy.get(tenant.as_ref().map(Tenant::as_str));
        // Belt and braces: the request's own signals are checked again here.
        if matches!(
            Decision::of(req.headers(), tenant_policy).reason,
            Reason::DoNotTrack | Reason::GlobalPrivacyControl
        ) {
            return None;
        }
        let request = ext.get::<crate::redact::Redacted>()?.0.clone();
        if request.len() > sink.options().max_record_bytes {
            sink.dropped();
            return None;
        }
        let stamp = match ext.get::<Exchange>() {
            Some(x) => x.stamp(Class::Training),
            None => Stamp::now(Class::Training, &tenant_policy.schedule),
        };
        if stamp.days == 0 {
            return None;
        }
        Some(Pending {
            sink: sink.clone(),
            tenant: tenant.map(|t| t.as_str().to_string()),
            stamp,
            endpoint: Provider::detect(req.uri().path(), req.headers()).1.as_str(),
            request,
        })
    }
}

/// A request waiting for its answer.
struct Pending {
    sink: Arc<CaptureSink>,
    tenant: Option<String>,
    stamp: Stamp,
    endpoint: &'static str,
    request: Bytes,
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for Capture<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
{
    type Response = Response<CaptureBody<ResB>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        let pending = self.pending(&req);
        ResponseFuture {
            future: self.inner.call(req),
            pending,
        }
    }
}

pin_project_lite::pin_project! {
    /// Response future of [`Capture`].
    pub struct ResponseFuture<F> {
        #[pin]
        future: F,
        pending: Option<Pending>,
    }
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<CaptureBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let resp = ready!(this.future.poll(cx))?;
        let tap = this.pending.take().and_then(|p| {
            let h = resp.headers();
            let plain = crate::redact::encoding::is_identity(h);
            let ct = h
                .get(CONTENT_TYPE)
                .map(|v| v.as_bytes().to_ascii_lowercase())
                .unwrap_or_default();
            let sse = memchr::memmem::find(&ct, b"event-stream").is_some();
            let readable =
                sse || memchr::memmem::find(&ct, b"json").is_some() || ct.starts_with(b"text/");
            (resp.status().is_success() && plain && readable).then(|| Tap {
                max: p.sink.options().max_record_bytes,
                buf: BytesMut::new(),
                sse,
                pending: p,
            })
        });
        Poll::Ready(Ok(resp.map(|inner| CaptureBody { inner, tap })))
    }
}

struct Tap {
    pending: Pending,
    buf: BytesMut,
    max: usize,
    sse: bool,
}

// By hand: the request and the answer are content, never printed; only their sizes.
impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("endpoint", &self.endpoint)
            .field("request_bytes", &self.request.len())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Tap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tap")
            .field("pending", &self.pending)
            .field("answer_bytes", &self.buf.len())
            .field("sse", &self.sse)
            .finish_non_exhaustive()
    }
}

impl Tap {
    fn finish(self) {
        let p = self.pending;
        p.sink.submit(Job {
            tenant: p.tenant,
            stamp: p.stamp,
            endpoint: p.endpoint,
            request: p.request,
            response: self.buf.freeze(),
            sse: self.sse,
        });
    }
}

pin_project_lite::pin_project! {
    /// The answer, copied to the sink as it passes (opted-in exchanges only).
    pub struct CaptureBody<B> {
        #[pin]
        inner: B,
        tap: Option<Tap>,
    }
}

impl<B> std::fmt::Debug for CaptureBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureBody")
            .field("capturing", &self.tap.is_some())
            .finish()
    }
}

impl<B> CaptureBody<B> {
    /// A body that is not captured.
    pub fn passthrough(inner: B) -> Self {
        CaptureBody { inner, tap: None }
    }
}

impl<B> From<Bytes> for CaptureBody<B>
where
    B: From<Bytes>,
{
    fn from(b: Bytes) -> Self {
        CaptureBody::passthrough(B::from(b))
    }
}

impl<B> Body for CaptureBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let mut this = self.project();
        let frame = ready!(this.inner.as_mut().poll_frame(cx));
        match &frame {
            Some(Ok(f)) => {
                if let (Some(d), Some(t)) = (f.data_ref(), this.tap.as_mut()) {
                    if t.buf.len() + d.len() > t.max {
                        if let Some(t) = this.tap.take() {
                            t.pending.sink.dropped();
                        }
                    } else {
                        t.buf.extend_from_slice(d);
                    }
                }
                if this.inner.is_end_stream() {
                    if let Some(t) = this.tap.take() {
                        t.finish();
                    }
                }
            }
            Some(Err(_)) => *this.tap = None,
            None => {
                if let Some(t) = this.tap.take() {
                    t.finish();
                }
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
