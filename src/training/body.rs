//! [`TrainingBody`]: the request body the training layer hands on.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

pin_project_lite::pin_project! {
    /// A request body passed through, replaced by the (rewritten or decoded) bytes the
    /// layer read, or the bytes the layer read to look at followed by the rest.
    pub struct TrainingBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project_lite::pin_project! {
    #[project = KindProj]
    enum Kind<B> {
        Passthrough { #[pin] inner: B },
        Full { data: Option<Bytes> },
        Prefixed { prefix: Option<Bytes>, inner: Pin<Box<B>> },
    }
}

impl<B> std::fmt::Debug for TrainingBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.kind {
            Kind::Passthrough { .. } => "passthrough",
            Kind::Full { .. } => "full",
            Kind::Prefixed { .. } => "prefixed",
        };
        f.debug_struct("TrainingBody").field("kind", &kind).finish()
    }
}

impl<B> TrainingBody<B> {
    /// The inner body, untouched.
    pub fn passthrough(inner: B) -> Self {
        TrainingBody {
            kind: Kind::Passthrough { inner },
        }
    }

    /// A complete body.
    pub fn full(data: Bytes) -> Self {
        TrainingBody {
            kind: Kind::Full {
                data: (!data.is_empty()).then_some(data),
            },
        }
    }

    /// `prefix`, then whatever `inner` has left.
    pub(crate) fn prefixed(prefix: Bytes, inner: Pin<Box<B>>) -> Self {
        TrainingBody {
            kind: Kind::Prefixed {
                prefix: (!prefix.is_empty()).then_some(prefix),
                inner,
            },
        }
    }
}

impl<B> Body for TrainingBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        match self.project().kind.project() {
            KindProj::Passthrough { inner } => inner.poll_frame(cx),
            KindProj::Full { data } => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            KindProj::Prefixed { prefix, inner } => {
                if let Some(p) = prefix.take() {
                    return Poll::Ready(Some(Ok(Frame::data(p))));
                }
                inner.as_mut().poll_frame(cx)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Passthrough { inner } => inner.is_end_stream(),
            Kind::Full { data } => data.is_none(),
            Kind::Prefixed { prefix, inner } => prefix.is_none() && inner.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Passthrough { inner } => inner.size_hint(),
            Kind::Full { data } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
            Kind::Prefixed { prefix, inner } => {
                let p = prefix.as_ref().map_or(0, |d| d.len() as u64);
                let h = inner.size_hint();
                let mut s = SizeHint::new();
                s.set_lower(h.lower() + p);
                if let Some(u) = h.upper() {
                    s.set_upper(u + p);
                }
                s
            }
        }
    }
}
