use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use http::header::CONTENT_TYPE;
use http::{Request, Response};
use tower::Service;
use tracing::field::Empty;

use super::body::RetentionBody;
use super::usage::{TokenUsage, UsageTap};
use super::{ClientIp, record_path};
use crate::api_key::{KeyContext, KeyId, Tenant};
use crate::policy::{Class, Policy};
use crate::telemetry::{Exchange, Stamp, event, format_counts, truncate_ip};

/// Records every exchange through an inner service. Created by
/// [`RetentionLayer`](super::RetentionLayer).
#[derive(Debug, Clone)]
pub struct Retention<S> {
    inner: S,
    policy: Arc<Policy>,
}

impl<S> Retention<S> {
    pub(crate) fn new(inner: S, policy: Arc<Policy>) -> Self {
        Retention { inner, policy }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for Retention<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
{
    type Response = Response<RetentionBody<ResB>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqB>) -> Self::Future {
        let exchange = Exchange::new(self.policy.clone());
        let ext = req.extensions();
        if let Some(c) = ext.get::<KeyContext>() {
            exchange.set_key(c.key_id.clone(), c.tenant.clone());
        } else if let Some(t) = ext.get::<Tenant>() {
            exchange.set_key(None, Some(t.clone()));
        }
        let client = ext.get::<ClientIp>().map(|c| c.0);
        let span = tracing::info_span!(
            target: "veilgate::retention",
            "veilgate.request",
            retention.class = Class::Usage.as_str(),
            retention.days = Empty,
            retention.expires_at = Empty,
            http.request.method = %req.method(),
            url.path = %record_path(req.uri().path()),
            http.response.status_code = Empty,
            tenant.id = Empty,
            api_key.id = Empty,
            veilgate.upstream = Empty,
            training.allowed = Empty,
        );
        let pending = Pending {
            start: Instant::now(),
            method: req.method().clone(),
            uri: req.uri().clone(),
            client,
            status: None,
            exchange: exchange.clone(),
            span: span.clone(),
        };
        req.extensions_mut().insert(exchange);
        let future = span.in_scope(|| self.inner.call(req));
        ResponseFuture {
            future,
            pending: Some(pending),
        }
    }
}

pin_project_lite::pin_project! {
    /// Response future of [`Retention`]. Dropped before the answer's headers (the client
    /// went away, a drain ended), it still writes the exchange's records, as `cancelled`.
    pub struct ResponseFuture<F> {
        #[pin]
        future: F,
        pending: Option<Pending>,
    }

    impl<F> PinnedDrop for ResponseFuture<F> {
        fn drop(this: Pin<&mut Self>) {
            if let Some(p) = this.project().pending.take() {
                p.write("cancelled", None);
            }
        }
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
    type Output = Result<Response<RetentionBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = {
            let _entered = this.pending.as_ref().map(|p| p.span.enter());
            ready!(this.future.poll(cx))
        };
        let mut pending = this.pending.take().expect("polled after completion");
        Poll::Ready(match result {
            Ok(resp) => {
                pending.status = Some(resp.status().as_u16());
                let h = resp.headers();
                let readable = crate::redact::encoding::is_identity(h);
                let typed = h.get(CONTENT_TYPE).is_some_and(|t| {
                    let t = t.as_bytes();
                    memchr::memmem::find(t, b"json").is_some()
                        || memchr::memmem::find(t, b"event-stream").is_some()
                });
                // Token usage is billed for generations (POST), not for reading stored
                // objects that carry their own `usage`.
                let generation = pending.method == http::Method::POST;
                let tap = (readable && typed && generation).then(UsageTap::default);
                Ok(resp.map(|b| RetentionBody::new(b, pending, tap)))
            }
            Err(e) => {
                pending.write("error", None);
                Err(e)
            }
        })
    }
}

/// An exchange whose records are not written yet.
pub(crate) struct Pending {
    start: Instant,
    method: http::Method,
    uri: http::Uri,
    client: Option<std::net::IpAddr>,
    status: Option<u16>,
    exchange: Exchange,
    span: tracing::Span,
}

impl Pending {
    /// Writes the access record, the security record for detections, the billing record
    /// for `usage`, and the metric events. `outcome`: `complete`, `cancelled` (the client
    /// went away first) or `error`.
    pub(crate) fn write(self, outcome: &'static str, usage: Option<&TokenUsage>) {
        use tracing::Level;
        let wanted = !self.span.is_disabled()
            || tracing::enabled!(target: "veilgate::access", Level::INFO)
            || tracing::enabled!(target: "veilgate::security", Level::INFO)
            || tracing::enabled!(target: "veilgate::billing", Level::INFO)
            || tracing::enabled!(target: "veilgate::metrics", Level::INFO);
        if !wanted {
            return;
        }
        let path = record_path(self.uri.path());
        let client = self.client.map(truncate_ip);
        let state = self.exchange.state().clone();
        let schedule = self.exchange.tenant_policy().schedule;
        let tenant = state.tenant.as_ref().map(Tenant::as_str);
        let key = state.key_id.as_ref().map(KeyId::as_str);
        let upstream = state.upstream.as_deref();
        let status = self.status;
        let latency = self.start.elapsed().as_secs_f64();
        let detections = format_counts(&state.detections);
        let total: u64 = state.detections.values().sum();
        let access = Stamp::now(Class::Usage, &schedule);

        let span = &self.span;
        span.record("retention.days", access.days);
        span.record("retention.expires_at", access.expires_at.as_str());
        span.record("http.response.status_code", status);
        span.record("tenant.id", tenant);
        span.record("api_key.id", key);
        span.record("veilgate.upstream", upstream);
        span.record("training.allowed", state.training_allowed);
        let _entered = span.enter();

        event!(
            INFO,
            "veilgate::access",
            &access,
            "access",
            http.request.method = %self.method,
            url.path = %path,
            http.response.status_code = status,
            duration_ms = latency * 1000.0,
            outcome,
            client.address = client.as_deref(),
            tenant.id = tenant,
            api_key.id = key,
            veilgate.upstream = upstream,
            training.allowed = state.training_allowed,
            detections = %detections,
            detections.total = total,
            code = state.refusal.as_deref(),
        );
        tracing::event!(
            target: "veilgate::metrics",
            tracing::Level::INFO,
            {
            monotonic_counter.veilgate.requests = 1u64,
            histogram.veilgate.request.duration = latency,
            retention.class = access.class.as_str(),
            retention.days = access.days,
            retention.expires_at = access.expires_on(),
            http.response.status_code = status.unwrap_or(0),
            veilgate.upstream = upstream.unwrap_or(""),
            }
        );

        if total > 0 {
            let security = Stamp::now(Class::Security, &schedule);
            event!(
                INFO,
                "veilgate::security",
                &security,
                "values detected",
                url.path = %path,
                tenant.id = tenant,
                api_key.id = key,
                detections = %detections,
                detections.total = total,
            );
            for (entity, n) in &state.detections {
                tracing::event!(
                    target: "veilgate::metrics",
                    tracing::Level::INFO,
                    {
                    monotonic_counter.veilgate.detections = *n,
                    entity = &**entity,
                    retention.class = security.class.as_str(),
                    retention.days = security.days,
                    retention.expires_at = security.expires_on(),
                    }
                );
            }
        }

        if let Some(u) = usage.filter(|u| !u.is_empty()) {
            let billing = Stamp::now(Class::Billing, &schedule);
            event!(
                INFO,
                "veilgate::billing",
                &billing,
                "token usage",
                tenant.id = tenant,
                api_key.id = key,
                veilgate.upstream = upstream,
                url.path = %path,
                usage.input_tokens = u.input,
                usage.output_tokens = u.output,
                usage.total_tokens = u.total(),
                usage.cache_read_tokens = u.cache_read,
                usage.cache_creation_tokens = u.cache_creation,
            );
            for (kind, n) in [("input", u.input), ("output", u.output)] {
                if let Some(n) = n {
                    tracing::event!(
                        target: "veilgate::metrics",
                        tracing::Level::INFO,
                        {
                        monotonic_counter.veilgate.tokens = n,
                        gen_ai.token.type = kind,
                        veilgate.upstream = upstream.unwrap_or(""),
                        retention.class = billing.class.as_str(),
                        retention.days = billing.days,
                        retention.expires_at = billing.expires_on(),
                        }
                    );
                }
            }
        }
    }
}
