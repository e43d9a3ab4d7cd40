//! [`RedactBody`]: the body type the redact layer hands on, and the incremental SSE
//! rewriter behind it.

use std::collections::HashMap;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use serde_json::Value;

use crate::engine::json::{self, Edit, Seg};
use crate::engine::sse::{self, ChannelRef};
use crate::engine::stream::{Channel, Mode};
use crate::engine::{Redactor, Session};
use crate::provider::{Direction, Endpoint, ErrorKind, Provider};

/// Longest SSE line accepted from upstream before the stream is cut (fail closed).
pub const MAX_SSE_LINE: usize = 4 << 20;

pin_project_lite::pin_project! {
    /// A body that is passed through, replaced by bytes the layer produced, or rewritten
    /// event by event (SSE).
    pub struct RedactBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project_lite::pin_project! {
    #[project = KindProj]
    enum Kind<B> {
        Passthrough { #[pin] inner: B },
        Full { data: Option<Bytes>, trailers: Option<http::HeaderMap> },
        Sse { #[pin] inner: B, state: Box<SseState> },
    }
}

impl<B> std::fmt::Debug for RedactBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.kind {
            Kind::Passthrough { .. } => "passthrough",
            Kind::Full { .. } => "full",
            Kind::Sse { .. } => "sse",
        };
        f.debug_struct("RedactBody").field("kind", &kind).finish()
    }
}

impl<B> RedactBody<B> {
    /// The inner body, untouched.
    pub fn passthrough(inner: B) -> Self {
        RedactBody {
            kind: Kind::Passthrough { inner },
        }
    }

    /// A complete body.
    pub fn full(data: Bytes) -> Self {
        Self::full_with_trailers(data, None)
    }

    pub(crate) fn full_with_trailers(data: Bytes, trailers: Option<http::HeaderMap>) -> Self {
        RedactBody {
            kind: Kind::Full {
                data: (!data.is_empty()).then_some(data),
                trailers,
            },
        }
    }

    pub(crate) fn sse(inner: B, state: SseState) -> Self {
        RedactBody {
            kind: Kind::Sse {
                inner,
                state: Box::new(state),
            },
        }
    }

    /// Bytes of redaction state this body holds (SSE: line buffer, pending events and
    /// channel holdback); constant for other kinds.
    pub fn state_bytes(&self) -> usize {
        match &self.kind {
            Kind::Sse { state, .. } => state.state_bytes(),
            _ => 0,
        }
    }
}

impl<B> From<Bytes> for RedactBody<B> {
    /// A complete body (how layers outside build their own answers).
    fn from(b: Bytes) -> Self {
        RedactBody::full(b)
    }
}

impl<B> Body for RedactBody<B>
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
            KindProj::Full { data, trailers } => {
                if let Some(d) = data.take() {
                    return Poll::Ready(Some(Ok(Frame::data(d))));
                }
                Poll::Ready(trailers.take().map(|t| Ok(Frame::trailers(t))))
            }
            KindProj::Sse { mut inner, state } => loop {
                if let Some(frame) = state.next_frame() {
                    return Poll::Ready(Some(Ok(frame)));
                }
                if state.done {
                    return Poll::Ready(None);
                }
                match ready!(inner.as_mut().poll_frame(cx)) {
                    Some(Ok(frame)) => match frame.into_data() {
                        Ok(data) => state.feed(&data),
                        Err(frame) => {
                            if let Ok(t) = frame.into_trailers() {
                                state.trailers = Some(t);
                            }
                        }
                    },
                    Some(Err(_)) => {
                        // The upstream failed mid-stream: end the answer with a
                        // provider-shaped error event, never with a partial value.
                        state.fail(
                            ErrorKind::Upstream,
                            "the upstream stream failed",
                            "veilgate_upstream_stream_error",
                        );
                    }
                    None => state.end(),
                }
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Passthrough { inner } => inner.is_end_stream(),
            Kind::Full { data, trailers } => data.is_none() && trailers.is_none(),
            Kind::Sse { state, .. } => {
                state.done && state.out.is_empty() && state.trailers.is_none()
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Passthrough { inner } => inner.size_hint(),
            Kind::Full { data, .. } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
            Kind::Sse { .. } => SizeHint::default(),
        }
    }
}

/// How to write the remaining text of a channel when it ends without a piece to carry it.
#[derive(Debug, Clone)]
struct Template {
    event_name: Option<String>,
    /// The JSON payload of the channel's latest event, parsed again only on a flush.
    payload: String,
    path: Vec<Seg>,
    /// Other channel strings in the template event, emptied in synthesized events.
    others: Vec<Vec<Seg>>,
}

/// The incremental SSE rewriter of one response stream.
pub(crate) struct SseState {
    redactor: Redactor,
    session: Session,
    provider: Provider,
    endpoint: Endpoint,
    /// Bytes of an incomplete line.
    line: Vec<u8>,
    /// Complete lines of the current event (with their terminators).
    event: Vec<u8>,
    channels: HashMap<String, (Channel, Template)>,
    /// Channel names in first-seen order (flush order).
    order: Vec<String>,
    out: BytesMut,
    trailers: Option<http::HeaderMap>,
    done: bool,
    observer: Option<std::sync::Arc<dyn super::Observer>>,
    /// Counts from the request, so the answer's own can be reported.
    request_counts: super::Counts,
    reported: bool,
}

impl Drop for SseState {
    fn drop(&mut self) {
        // The client went away mid-stream: what was detected so far still counts.
        self.report();
    }
}

impl std::fmt::Debug for SseState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SseState")
            .field("channels", &self.channels.len())
            .finish_non_exhaustive()
    }
}

impl SseState {
    pub(crate) fn new(
        redactor: Redactor,
        session: Session,
        provider: Provider,
        endpoint: Endpoint,
    ) -> SseState {
        SseState {
            redactor,
            session,
            provider,
            endpoint,
            line: Vec::new(),
            event: Vec::new(),
            channels: HashMap::new(),
            order: Vec::new(),
            out: BytesMut::new(),
            trailers: None,
            done: false,
            observer: None,
            request_counts: super::Counts::new(),
            reported: false,
        }
    }

    /// Reports the answer's detections and refusals to `observer`.
    pub(crate) fn observed(
        mut self,
        observer: Option<std::sync::Arc<dyn super::Observer>>,
    ) -> Self {
        self.request_counts = self.session.counts.clone();
        self.observer = observer;
        self
    }

    fn report(&mut self) {
        if self.reported {
            return;
        }
        self.reported = true;
        if let Some(o) = &self.observer {
            let d = super::delta(&self.request_counts, &self.session.counts);
            if !d.is_empty() {
                o.detections(Direction::Response, &d);
            }
        }
    }

    fn state_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.line.capacity()
            + self.event.capacity()
            + self.out.capacity()
            + self
                .channels
                .iter()
                .map(|(k, (c, _))| k.capacity() + c.state_bytes() + 256)
                .sum::<usize>()
    }

    fn next_frame(&mut self) -> Option<Frame<Bytes>> {
        if !self.out.is_empty() {
            return Some(Frame::data(self.out.split().freeze()));
        }
        if self.done {
            return self.trailers.take().map(Frame::trailers);
        }
        None
    }

    /// Takes bytes from upstream; complete events are rewritten into `out`.
    pub(crate) fn feed(&mut self, mut data: &[u8]) {
        // A `\r` that ended the previous chunk: a `\n` now belongs to the same terminator.
        if self.line.last() == Some(&b'\r') && !data.is_empty() {
            if data[0] == b'\n' {
                self.line.push(b'\n');
                data = &data[1..];
            }
            self.complete_line();
        }
        while !data.is_empty() && !self.done {
            let Some(i) = memchr::memchr2(b'\n', b'\r', data) else {
                self.line.extend_from_slice(data);
                if self.line.len() > MAX_SSE_LINE {
                    self.fail(
                        ErrorKind::Upstream,
                        "an upstream event line is too long",
                        "veilgate_sse_line_too_long",
                    );
                }
                return;
            };
            let term = match (data[i], data.get(i + 1)) {
                (b'\r', None) => {
                    self.line.extend_from_slice(data);
                    return;
                }
                (b'\r', Some(b'\n')) => 2,
                _ => 1,
            };
            self.line.extend_from_slice(&data[..i + term]);
            data = &data[i + term..];
            self.complete_line();
        }
    }

    /// A complete line (with its terminator) is in `self.line`.
    fn complete_line(&mut self) {
        let line = std::mem::take(&mut self.line);
        let blank = line.iter().all(|&b| b == b'\n' || b == b'\r');
        self.event.extend_from_slice(&line);
        if blank {
            self.dispatch();
        }
    }

    /// The current event (ending with its blank line) is complete.
    fn dispatch(&mut self) {
        let event = std::mem::take(&mut self.event);
        let Ok(text) = std::str::from_utf8(&event) else {
            self.fail(
                ErrorKind::Upstream,
                "the upstream stream is not valid UTF-8",
                "veilgate_invalid_utf8",
            );
            return;
        };
        match self.rewrite_event(text) {
            Ok(()) => {}
            Err(e) => self.fail_engine(&e),
        }
    }

    fn rewrite_event(&mut self, text: &str) -> Result<(), crate::engine::Error> {
        let lines = sse::lines(text.as_bytes());
        let mut event_name = None;
        let mut data_lines = Vec::new();
        for (i, l) in lines.iter().enumerate() {
            let (name, value) = sse::field(&text[l.start..l.end]);
            match name {
                "event" => event_name = Some(value.to_string()),
                "data" => data_lines.push(i),
                _ => {}
            }
        }
        if data_lines.is_empty() {
            self.out.extend_from_slice(text.as_bytes());
            return Ok(());
        }
        let payload = data_lines
            .iter()
            .map(|&i| sse::field(&text[lines[i].start..lines[i].end]).1)
            .collect::<Vec<_>>()
            .join("\n");
        if payload.trim() == "[DONE]" {
            self.flush_all()?;
            self.out.extend_from_slice(text.as_bytes());
            return Ok(());
        }
        let Ok(json_value) = serde_json::from_str::<Value>(&payload) else {
            // Not JSON: the payload is text.
            let new = self
                .redactor
                .respond_str(&payload, &mut self.session)?
                .into_owned();
            self.write_event(text, &lines, &data_lines, (new != payload).then_some(new));
            return Ok(());
        };
        let refs = sse::channels(&json_value);
        for c in &refs {
            if !self.channels.contains_key(&c.channel) {
                self.order.push(c.channel.clone());
                let template = Template {
                    event_name: event_name.clone(),
                    payload: String::new(),
                    path: c.path.clone(),
                    others: Vec::new(),
                };
                self.channels.insert(
                    c.channel.clone(),
                    (Channel::with_mode(Mode::Response), template),
                );
            }
        }
        let ended = ended_channels(&json_value, &self.order);
        // Channels that end here without a piece in this event are flushed before it.
        for name in &ended {
            if !refs.iter().any(|c| c.channel == *name) {
                self.flush(name)?;
            }
        }
        // Channel pieces go through the holdback.
        let mut replace: Vec<(Vec<Seg>, String)> = Vec::new();
        for c in &refs {
            let ChannelRef {
                channel,
                path,
                text: piece,
            } = c;
            let (ch, template) = self.channels.get_mut(channel).expect("inserted above");
            template.payload.clone_from(&payload);
            template.others = refs
                .iter()
                .filter(|o| o.path != *path)
                .map(|o| o.path.clone())
                .collect();
            let mut out = ch.push(&self.redactor, &mut self.session, piece)?;
            if ended.contains(channel) {
                out.push_str(&ch.finish(&self.redactor, &mut self.session)?);
            }
            if out != *piece {
                replace.push((path.clone(), out));
            }
        }
        let channel_paths: Vec<&Vec<Seg>> = refs.iter().map(|c| &c.path).collect();
        let (provider, endpoint) = (self.provider, self.endpoint);
        let redactor = &self.redactor;
        let session = &mut self.session;
        let new = json::rewrite(payload.as_bytes(), |lit, s| {
            if lit.is_key {
                return Ok(Vec::new());
            }
            if channel_paths.iter().any(|p| p.as_slice() == lit.path) {
                return Ok(replace
                    .iter()
                    .find(|(p, _)| p.as_slice() == lit.path)
                    .map(|(_, t)| {
                        vec![Edit {
                            range: 0..s.len(),
                            text: t.clone(),
                        }]
                    })
                    .unwrap_or_default());
            }
            if !provider.is_content(endpoint, Direction::Response, lit.path) || json::is_blob(s) {
                return Ok(Vec::new());
            }
            let out = redactor.respond_str(s, session)?;
            Ok(if out == s {
                Vec::new()
            } else {
                vec![Edit {
                    range: 0..s.len(),
                    text: out.into_owned(),
                }]
            })
        })?
        .map(|b| String::from_utf8(b).expect("rewriting keeps UTF-8"));
        self.write_event(text, &lines, &data_lines, new);
        Ok(())
    }

    /// Writes an event: unchanged lines byte-identical, data lines carrying `new`.
    fn write_event(
        &mut self,
        text: &str,
        lines: &[sse::Line],
        data_lines: &[usize],
        new: Option<String>,
    ) {
        let Some(new) = new else {
            self.out.extend_from_slice(text.as_bytes());
            return;
        };
        let mut parts = new.split('\n');
        let same_shape = new.matches('\n').count() + 1 == data_lines.len();
        for (i, l) in lines.iter().enumerate() {
            let raw = &text[l.start..l.end];
            let term = &text[l.end..l.next];
            match data_lines.iter().position(|&d| d == i) {
                Some(k) if same_shape || k == 0 => {
                    let prefix = raw.len() - sse::field(raw).1.len();
                    self.out.extend_from_slice(&raw.as_bytes()[..prefix]);
                    if same_shape {
                        self.out
                            .extend_from_slice(parts.next().unwrap_or_default().as_bytes());
                    } else {
                        self.out
                            .extend_from_slice(new.replace('\n', "\ndata: ").as_bytes());
                    }
                    self.out.extend_from_slice(term.as_bytes());
                }
                Some(_) => {}
                None => {
                    self.out.extend_from_slice(raw.as_bytes());
                    self.out.extend_from_slice(term.as_bytes());
                }
            }
        }
    }

    /// Flushes one channel; its remaining text goes out in a synthesized event.
    fn flush(&mut self, name: &str) -> Result<(), crate::engine::Error> {
        let Some((ch, template)) = self.channels.get_mut(name) else {
            return Ok(());
        };
        let rest = ch.finish(&self.redactor, &mut self.session)?;
        if rest.is_empty() {
            return Ok(());
        }
        let Ok(mut v) = serde_json::from_str::<Value>(&template.payload) else {
            return Ok(());
        };
        for p in &template.others {
            set_string(&mut v, p, "");
        }
        set_string(&mut v, &template.path, &rest);
        strip_tool_call_identity(&mut v, &template.path);
        if let Some(e) = &template.event_name {
            self.out.extend_from_slice(b"event: ");
            self.out.extend_from_slice(e.as_bytes());
            self.out.extend_from_slice(b"\n");
        }
        self.out.extend_from_slice(b"data: ");
        self.out.extend_from_slice(v.to_string().as_bytes());
        self.out.extend_from_slice(b"\n\n");
        Ok(())
    }

    fn flush_all(&mut self) -> Result<(), crate::engine::Error> {
        for name in self.order.clone() {
            self.flush(&name)?;
        }
        Ok(())
    }

    /// Upstream ended.
    pub(crate) fn end(&mut self) {
        if self.line.last() == Some(&b'\r') {
            self.complete_line();
        }
        if !self.event.is_empty() || !self.line.is_empty() {
            // A final event without its blank line: complete it.
            let mut rest = std::mem::take(&mut self.line);
            self.event.append(&mut rest);
            self.event.extend_from_slice(b"\n\n");
            self.dispatch();
        }
        if !self.done {
            if let Err(e) = self.flush_all() {
                self.fail_engine(&e);
            }
        }
        self.done = true;
        self.report();
    }

    fn fail_engine(&mut self, e: &crate::engine::Error) {
        match e {
            crate::engine::Error::Blocked { .. } => self.fail(
                ErrorKind::Permission,
                "the answer contains data that policy blocks",
                "veilgate_blocked",
            ),
            _ => self.fail(
                ErrorKind::Upstream,
                "the upstream stream could not be processed",
                "veilgate_stream_error",
            ),
        }
    }

    /// Ends the stream with a provider-shaped error event; nothing pending is released.
    pub(crate) fn fail(&mut self, kind: ErrorKind, message: &str, code: &str) {
        if self.done {
            return;
        }
        if let Some(o) = &self.observer {
            o.refused(Direction::Response, kind.status().as_u16(), code);
        }
        self.line.clear();
        self.event.clear();
        self.channels.clear();
        self.out
            .extend_from_slice(&self.provider.error_event(kind, message, code));
        self.done = true;
    }
}

/// Channels that end with this event: an OpenAI choice with a `finish_reason`, an
/// Anthropic `content_block_stop`, a Responses API `*.done` event.
fn ended_channels(v: &Value, order: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    match v.get("type").and_then(Value::as_str) {
        Some("content_block_stop") => {
            let i = v.get("index").map(Value::to_string).unwrap_or_default();
            let prefix = format!("anthropic:{i}:");
            out.extend(order.iter().filter(|c| c.starts_with(&prefix)).cloned());
        }
        Some("message_stop")
        | Some("response.completed")
        | Some("response.failed")
        | Some("response.incomplete") => {
            out.extend(order.iter().cloned());
        }
        Some(t) if t.starts_with("response.") && t.ends_with(".done") => {
            let delta = format!("{}.delta", t.trim_end_matches(".done"));
            out.extend(
                order
                    .iter()
                    .filter(|c| c.starts_with(&format!("{delta}:")))
                    .cloned(),
            );
        }
        _ => {
            if let Some(Value::Array(choices)) = v.get("choices") {
                for (i, c) in choices.iter().enumerate() {
                    if c.get("finish_reason").is_some_and(|f| !f.is_null()) {
                        let idx = c
                            .get("index")
                            .map_or_else(|| i.to_string(), Value::to_string);
                        for p in [format!("chat:{idx}:"), format!("cmpl:{idx}")] {
                            out.extend(order.iter().filter(|c| c.starts_with(&p)).cloned());
                        }
                    }
                }
            }
        }
    }
    out
}

fn set_string(v: &mut Value, path: &[Seg], s: &str) {
    let mut cur = v;
    for seg in path {
        let next = match seg {
            Seg::Key(k) => cur.get_mut(k.as_str()),
            Seg::Index(i) => cur.get_mut(*i),
        };
        let Some(next) = next else { return };
        cur = next;
    }
    *cur = Value::String(s.to_string());
}

/// A synthesized tool-call delta carries only its index and arguments: repeating the
/// call's id, type or name would make clients append them twice.
fn strip_tool_call_identity(v: &mut Value, path: &[Seg]) {
    let Some(pos) = path
        .iter()
        .position(|s| *s == Seg::Key("tool_calls".into()))
    else {
        return;
    };
    let mut cur = &mut *v;
    for seg in &path[..pos + 2] {
        let next = match seg {
            Seg::Key(k) => cur.get_mut(k.as_str()),
            Seg::Index(i) => cur.get_mut(*i),
        };
        let Some(next) = next else { return };
        cur = next;
    }
    if let Some(obj) = cur.as_object_mut() {
        obj.remove("id");
        obj.remove("type");
        if let Some(Value::Object(f)) = obj.get_mut("function") {
            f.remove("name");
        }
    }
}
