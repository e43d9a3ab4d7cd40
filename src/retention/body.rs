use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use http_body::{Body, Frame, SizeHint};

use super::service::Pending;
use super::usage::UsageTap;

pin_project_lite::pin_project! {
    /// Answer body of [`Retention`](super::Retention): passes every frame through
    /// unchanged, reads token usage on the way, and writes the exchange's records when
    /// the body ends, fails, or is dropped before its end (the client went away).
    pub struct RetentionBody<B> {
        #[pin]
        inner: B,
        pending: Option<Pending>,
        tap: Option<UsageTap>,
        // Set when the inner body said it has ended (servers stop polling then).
        ended: AtomicBool,
    }

    impl<B> PinnedDrop for RetentionBody<B> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(p) = this.pending.take() {
                let outcome = if this.ended.load(Ordering::Relaxed) { "complete" } else { "cancelled" };
                p.write(outcome, this.tap.as_ref().map(|t| &t.usage));
            }
        }
    }
}

impl<B> RetentionBody<B> {
    pub(crate) fn new(inner: B, pending: Pending, tap: Option<UsageTap>) -> Self {
        RetentionBody {
            inner,
            pending: Some(pending),
            tap,
            ended: AtomicBool::new(false),
        }
    }
}

impl<B> std::fmt::Debug for RetentionBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetentionBody").finish_non_exhaustive()
    }
}

impl<B: Body> Body for RetentionBody<B>
where
    B::Data: AsRef<[u8]>,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = std::task::ready!(this.inner.poll_frame(cx));
        let outcome = match &frame {
            Some(Ok(f)) => {
                if let (Some(tap), Some(d)) = (this.tap.as_mut(), f.data_ref()) {
                    tap.feed(d.as_ref());
                }
                None
            }
            Some(Err(_)) => Some("error"),
            None => Some("complete"),
        };
        if let Some(outcome) = outcome {
            if let Some(p) = this.pending.take() {
                p.write(outcome, this.tap.as_ref().map(|t| &t.usage));
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        let end = self.inner.is_end_stream();
        if end {
            self.ended.store(true, Ordering::Relaxed);
        }
        end
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
