use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Response;

use super::body::RedactBody;

type Inner<B, E> = Pin<Box<dyn Future<Output = Result<Response<RedactBody<B>>, E>> + Send>>;

/// Response future of [`Redact`](super::Redact): reads and scans the request body, calls
/// the inner service, and prepares the answer.
pub struct ResponseFuture<B, E> {
    inner: Inner<B, E>,
}

impl<B, E> ResponseFuture<B, E> {
    pub(crate) fn new(
        f: impl Future<Output = Result<Response<RedactBody<B>>, E>> + Send + 'static,
    ) -> Self {
        ResponseFuture { inner: Box::pin(f) }
    }
}

impl<B, E> Future for ResponseFuture<B, E> {
    type Output = Result<Response<RedactBody<B>>, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl<B, E> std::fmt::Debug for ResponseFuture<B, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
