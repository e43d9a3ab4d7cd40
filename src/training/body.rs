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
        Prefixed { prefix: Option<Bytes>, inner: Pin<Box<B>>, guard: Option<PurposeGuard> },
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

    /// `prefix`, then whatever `inner` has left; with a `guard`, the stream ends before
    /// any later frame that names a second `purpose` part.
    pub(crate) fn prefixed(prefix: Bytes, inner: Pin<Box<B>>, guard: Option<PurposeGuard>) -> Self {
        TrainingBody {
            kind: Kind::Prefixed {
                prefix: (!prefix.is_empty()).then_some(prefix),
                inner,
                guard,
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
            KindProj::Prefixed {
                prefix,
                inner,
                guard,
            } => {
                if let Some(p) = prefix.take() {
                    return Poll::Ready(Some(Ok(Frame::data(p))));
                }
                if guard.as_ref().is_some_and(|g| g.tripped) {
                    return Poll::Ready(None);
                }
                let frame = std::task::ready!(inner.as_mut().poll_frame(cx));
                if let (Some(g), Some(Ok(f))) = (guard.as_mut(), &frame) {
                    if let Some(d) = f.data_ref() {
                        if g.trips(d) {
                            // The upstream gets a multipart body without its closing
                            // delimiter (and short of its Content-Length): a broken
                            // request, never one with a second `purpose`.
                            return Poll::Ready(None);
                        }
                    }
                }
                Poll::Ready(frame)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Passthrough { inner } => inner.is_end_stream(),
            Kind::Full { data } => data.is_none(),
            Kind::Prefixed {
                prefix,
                inner,
                guard,
            } => {
                prefix.is_none()
                    && (inner.is_end_stream() || guard.as_ref().is_some_and(|g| g.tripped))
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Passthrough { inner } => inner.size_hint(),
            Kind::Full { data } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
            Kind::Prefixed { prefix, inner, .. } => {
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

/// Watches the rest of a multipart upload for a second `purpose` part (a backend that
/// keeps the last value would otherwise see one the layer never checked).
#[derive(Debug, Default)]
pub(crate) struct PurposeGuard {
    /// The last bytes seen, lower-cased, for a needle cut between frames.
    carry: Vec<u8>,
    tripped: bool,
}

const NEEDLES: [&[u8]; 2] = [b"name=\"purpose\"", b"name=purpose"];

impl PurposeGuard {
    /// Starts after `seen`, the bytes already checked.
    pub(crate) fn after(seen: &[u8]) -> PurposeGuard {
        let keep = seen.len().saturating_sub(NEEDLES[0].len());
        PurposeGuard {
            carry: seen[keep..].to_ascii_lowercase(),
            tripped: false,
        }
    }

    /// `true` if `data` (with what came before) names a `purpose` part.
    fn trips(&mut self, data: &[u8]) -> bool {
        let mut hay = std::mem::take(&mut self.carry);
        hay.extend(data.iter().map(u8::to_ascii_lowercase));
        self.tripped = NEEDLES
            .iter()
            .any(|n| memchr::memmem::find(&hay, n).is_some());
        let keep = hay.len().saturating_sub(NEEDLES[0].len());
        self.carry = hay.split_off(keep);
        self.tripped
    }

    /// How many `purpose` parts `body` names.
    pub(crate) fn count(body: &[u8]) -> usize {
        let lower = body.to_ascii_lowercase();
        NEEDLES
            .iter()
            .map(|n| memchr::memmem::find_iter(&lower, n).count())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_purpose_part_is_seen_across_frames() {
        let first =
            b"--b\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nassistants\r\n";
        assert_eq!(PurposeGuard::count(first), 1);
        let mut g = PurposeGuard::after(first);
        assert!(!g.trips(b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jsonl\"\r\n\r\n{}\r\n"));
        assert!(!g.trips(b"--b\r\nContent-Disposition: form-data; NAME=\"pur"));
        assert!(g.trips(b"pose\"\r\n\r\nfine-tune\r\n--b--\r\n"));
    }
}
