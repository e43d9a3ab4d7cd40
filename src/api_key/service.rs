use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::header::{AUTHORIZATION, HeaderName};
use http::{HeaderMap, Request, Response};
use http_body::{Body, Frame, SizeHint};
use sha2::{Digest, Sha256};
use tower::Service;

use super::layer::Config;
use super::{KEY_HEADERS, KeyContext, KeyId, Tenant, constant_time_eq};
use crate::policy::Class;
use crate::provider::{ErrorKind, Provider};
use crate::telemetry::{Exchange, event, stamp_for};

/// Identifies (and in gateway-key mode verifies) the request's API key around an inner
/// service. Created by [`ApiKeyLayer`](super::ApiKeyLayer).
#[derive(Debug, Clone)]
pub struct ApiKey<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> ApiKey<S> {
    pub(crate) fn from_parts(inner: S, config: Arc<Config>) -> Self {
        ApiKey { inner, config }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for ApiKey<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
{
    type Response = Response<ResponseBody<ResB>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResB>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqB>) -> Self::Future {
        match check(&self.config, &mut req) {
            Ok(()) => ResponseFuture {
                kind: Kind::Inner {
                    future: self.inner.call(req),
                },
            },
            Err(Refused {
                provider,
                message,
                code,
            }) => {
                let response = crate::provider::error_response::<Bytes>(
                    provider,
                    ErrorKind::Auth,
                    message,
                    code,
                );
                ResponseFuture {
                    kind: Kind::Refused {
                        response: Some(response.map(ResponseBody::refusal)),
                    },
                }
            }
        }
    }
}

/// Marks auth headers sensitive, identifies the key, verifies it in gateway mode and
/// swaps in the provider key, and records a [`KeyContext`]. `Err` is the 401 to send.
fn check<B>(config: &Config, req: &mut Request<B>) -> Result<(), Refused> {
    let provider = config
        .provider
        .unwrap_or_else(|| Provider::detect(req.uri().path(), req.headers()).0);
    let exchange = req.extensions().get::<Exchange>().cloned();
    let headers = req.headers_mut();
    for (name, value) in headers.iter_mut() {
        if KEY_HEADERS.contains(&name.as_str()) {
            value.set_sensitive(true);
        }
    }
    let presented = presented_key(headers);
    let key_id = presented.map(|k| KeyId::of(&config.pepper, k));

    let mut gateway_tenant = None;
    let mut gateway_verified = false;
    if let Some(accepted) = &config.gateway {
        let refuse = |message, code| {
            if let Some(x) = &exchange {
                x.set_key(key_id.clone(), None);
                x.set_refusal(code);
            }
            event!(
                INFO,
                "veilgate::security",
                &stamp_for(exchange.as_ref(), Class::Security),
                "API key refused",
                code,
                api_key.id = key_id.as_ref().map(KeyId::as_str),
                http.response.status_code = 401u16,
            );
            Err(Refused {
                provider,
                message,
                code,
            })
        };
        let Some(key) = presented else {
            return refuse(
                "no API key was presented: send a veilgate key in `Authorization: Bearer`, `x-api-key` or `api-key`",
                "veilgate_missing_api_key",
            );
        };
        let digest: [u8; 32] = Sha256::digest(key).into();
        // Every configured hash is compared, and the match is selected without a branch.
        let mut found = usize::MAX;
        for (i, a) in accepted.iter().enumerate() {
            let mask = usize::from(constant_time_eq(&a.digest, &digest)).wrapping_neg();
            found = (i & mask) | (found & !mask);
        }
        let Some(entry) = accepted.get(found) else {
            return refuse(
                "the API key is not valid for this gateway",
                "veilgate_invalid_api_key",
            );
        };
        gateway_tenant = entry.tenant.clone();
        gateway_verified = true;
        for name in KEY_HEADERS {
            headers.remove(name);
        }
        if let Some(pk) = &config.provider_key {
            let name = match (&config.provider_key_header, provider) {
                (Some(h), _) => h.clone(),
                (None, Provider::Anthropic) => HeaderName::from_static("x-api-key"),
                (None, Provider::OpenAi | Provider::Generic) => AUTHORIZATION,
            };
            let prefix = if name == AUTHORIZATION { "Bearer " } else { "" };
            let value = pk.header_value(prefix);
            headers.insert(name, value);
        }
    }

    // Tenant resolution, first match wins: what the host application put in the
    // extensions, the gateway key's tenant, the key-id mapping, a trusted header, the
    // default.
    let header_tenant = config.tenant_header.as_ref().and_then(|h| {
        let v = req.headers_mut().remove(h)?;
        let v = v.to_str().ok()?.trim();
        // A tenant name, not free text: it lands in every record of the exchange.
        let name_like = (1..=128).contains(&v.len())
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
        name_like.then(|| Tenant::from(v))
    });
    let ext = req.extensions();
    let tenant = ext
        .get::<Tenant>()
        .cloned()
        .or_else(|| ext.get::<KeyContext>().and_then(|c| c.tenant.clone()))
        .or(gateway_tenant)
        .or_else(|| {
            key_id
                .as_ref()
                .and_then(|k| config.key_tenants.get(k.as_str()).cloned())
        })
        .or(header_tenant)
        .or_else(|| config.default_tenant.clone());
    if let Some(x) = &exchange {
        x.set_key(key_id.clone(), tenant.clone());
    }
    req.extensions_mut().insert(KeyContext {
        key_id,
        tenant,
        gateway_verified,
    });
    Ok(())
}

/// A 401 to send, in `provider`'s shape.
struct Refused {
    provider: Provider,
    message: &'static str,
    code: &'static str,
}

/// The first key found in `Authorization: Bearer`, `x-api-key`, `api-key`; surrounding
/// whitespace trimmed; empty values ignored.
fn presented_key(headers: &HeaderMap) -> Option<&[u8]> {
    let bearer = headers.get(AUTHORIZATION).and_then(|v| {
        let v = v.as_bytes();
        let scheme = v.get(..7)?;
        scheme
            .eq_ignore_ascii_case(b"bearer ")
            .then(|| v[7..].trim_ascii())
    });
    std::iter::once(bearer)
        .chain(
            KEY_HEADERS[1..]
                .iter()
                .map(|h| headers.get(*h).map(|v| v.as_bytes().trim_ascii())),
        )
        .flatten()
        .find(|k| !k.is_empty())
}

pin_project_lite::pin_project! {
    /// Response future of [`ApiKey`]: the inner service's, or a ready refusal.
    pub struct ResponseFuture<F, B> {
        #[pin]
        kind: Kind<F, B>,
    }
}

pin_project_lite::pin_project! {
    #[project = KindProj]
    enum Kind<F, B> {
        Inner { #[pin] future: F },
        Refused { response: Option<Response<ResponseBody<B>>> },
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Inner { future } => {
                let res = ready!(future.poll(cx))?;
                Poll::Ready(Ok(res.map(ResponseBody::inner)))
            }
            KindProj::Refused { response } => Poll::Ready(Ok(response
                .take()
                .expect("ResponseFuture polled after completion"))),
        }
    }
}

impl<F, B> std::fmt::Debug for ResponseFuture<F, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

pin_project_lite::pin_project! {
    /// The inner service's body, or the refusal the layer wrote.
    pub struct ResponseBody<B> {
        #[pin]
        kind: BodyKind<B>,
    }
}

pin_project_lite::pin_project! {
    #[project = BodyProj]
    enum BodyKind<B> {
        Inner { #[pin] body: B },
        Refusal { data: Option<Bytes> },
    }
}

impl<B> ResponseBody<B> {
    fn inner(body: B) -> Self {
        ResponseBody {
            kind: BodyKind::Inner { body },
        }
    }

    fn refusal(data: Bytes) -> Self {
        ResponseBody {
            kind: BodyKind::Refusal { data: Some(data) },
        }
    }
}

impl<B> std::fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.kind {
            BodyKind::Inner { .. } => "inner",
            BodyKind::Refusal { .. } => "refusal",
        };
        f.debug_struct("ResponseBody").field("kind", &kind).finish()
    }
}

impl<B: Body<Data = Bytes>> Body for ResponseBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        match self.project().kind.project() {
            BodyProj::Inner { body } => body.poll_frame(cx),
            BodyProj::Refusal { data } => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            BodyKind::Inner { body } => body.is_end_stream(),
            BodyKind::Refusal { data } => data.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            BodyKind::Inner { body } => body.size_hint(),
            BodyKind::Refusal { data } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
        }
    }
}
