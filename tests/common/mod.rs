//! A mock AI-provider upstream for loopback tests: an in-process hyper server on
//! `127.0.0.1:0` that records every request it receives (method, path, headers, body) and
//! answers as the test says, with JSON or with an SSE stream sent as separate body frames.
//!
//! ```ignore
//! let mock = MockUpstream::start(|req: &Recorded| {
//!     let token = req.token("EMAIL").unwrap();
//!     Reply::sse(vec![chat_delta("hello "), chat_delta(&token[..5]), chat_delta(&token[5..])])
//! })
//! .await;
//! // point the gateway at mock.url(), send requests, then:
//! assert!(!mock.requests()[0].body_str().contains("posteo"));
//! ```
//!
//! SSE frames go out one by one with a small pause between them (so a client can observe
//! streaming), and a frame can be held behind a [`Gate`] until the test opens it: "the
//! client saw the first event before the upstream sent the last one" is then an ordering
//! fact, not a timing guess.

#![allow(dead_code)]

pub mod otlp;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::sync::{Notify, mpsc};

/// One request as the upstream received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: Method,
    /// Path and query.
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Recorded {
    /// The body as text (lossy).
    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON (panics if it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("upstream got invalid JSON ({e}): {}", self.body_str()))
    }

    /// The first pseudonym token of `entity` in the body, e.g. `<EMAIL_7QK2M4>`.
    pub fn token(&self, entity: &str) -> Option<String> {
        find_token(&self.body_str(), entity)
    }
}

/// The first `<ENTITY_xxx>` token in `text`.
pub fn find_token(text: &str, entity: &str) -> Option<String> {
    let start = text.find(&format!("<{entity}_"))?;
    let len = text[start..].find('>')? + 1;
    Some(text[start..start + len].to_string())
}

/// Holds an SSE frame back until the test opens it (or `max_wait` passes, so a broken
/// test cannot hang the upstream forever).
#[derive(Debug, Clone)]
pub struct Gate {
    notify: Arc<Notify>,
    pub max_wait: Duration,
}

impl Gate {
    pub fn new(max_wait: Duration) -> Gate {
        Gate {
            notify: Arc::new(Notify::new()),
            max_wait,
        }
    }

    /// Lets the held frame go (also when called before the upstream reaches it).
    pub fn open(&self) {
        self.notify.notify_one();
    }
}

/// What happens before a frame is sent.
#[derive(Debug, Clone)]
pub enum Pace {
    Delay(Duration),
    Gate(Gate),
}

/// The upstream's answer to one request.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: Vec<(String, String)>,
    /// Body frames, each sent after its pace.
    pub frames: Vec<(Pace, Bytes)>,
}

/// Default pause between SSE frames: long enough that frames are separate writes.
pub const FRAME_GAP: Duration = Duration::from_millis(15);
/// Pause between the byte chunks of [`Reply::sse_cut`] (there are many of them).
pub const CHUNK_GAP: Duration = Duration::from_millis(2);

impl Reply {
    /// A JSON answer in one frame.
    pub fn json(status: u16, body: impl Into<String>) -> Reply {
        Reply {
            status: StatusCode::from_u16(status).unwrap(),
            headers: vec![("content-type".into(), "application/json".into())],
            frames: vec![(Pace::Delay(Duration::ZERO), Bytes::from(body.into()))],
        }
    }

    /// An SSE answer: each string is one complete event (with its blank line), sent as
    /// its own body frame [`FRAME_GAP`] after the previous one.
    pub fn sse<S: Into<String>>(events: impl IntoIterator<Item = S>) -> Reply {
        Reply {
            status: StatusCode::OK,
            headers: vec![
                ("content-type".into(), "text/event-stream".into()),
                ("cache-control".into(), "no-cache".into()),
            ],
            frames: events
                .into_iter()
                .map(|e| (Pace::Delay(FRAME_GAP), Bytes::from(e.into())))
                .collect(),
        }
    }

    /// An SSE answer whose wire bytes are cut at the given byte offsets (cuts may fall
    /// inside an event, a line, a JSON string or a UTF-8 character).
    pub fn sse_cut(wire: &str, cuts: &[usize]) -> Reply {
        let mut points: Vec<usize> = cuts.iter().map(|&c| c.min(wire.len())).collect();
        points.sort_unstable();
        points.dedup();
        let bytes = wire.as_bytes();
        let mut frames = Vec::new();
        let mut last = 0;
        for p in points.into_iter().chain([bytes.len()]) {
            if p > last {
                frames.push((
                    Pace::Delay(CHUNK_GAP),
                    Bytes::copy_from_slice(&bytes[last..p]),
                ));
                last = p;
            }
        }
        Reply {
            frames,
            ..Reply::sse(Vec::<String>::new())
        }
    }

    /// Holds the last frame behind `gate`.
    pub fn gate_last(mut self, gate: &Gate) -> Reply {
        if let Some(last) = self.frames.last_mut() {
            last.0 = Pace::Gate(gate.clone());
        }
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// An OpenAI chat-completions SSE event carrying a content delta.
pub fn chat_delta(text: &str) -> String {
    let v = serde_json::json!({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":text},"finish_reason":null}]});
    format!("data: {v}\n\n")
}

/// The closing OpenAI chat-completions events: a `finish_reason` chunk and `[DONE]`.
pub fn chat_finish(reason: &str) -> Vec<String> {
    let v = serde_json::json!({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{},"finish_reason":reason}]});
    vec![format!("data: {v}\n\n"), "data: [DONE]\n\n".to_string()]
}

/// A named SSE event (Anthropic, Responses API) with a JSON payload.
pub fn named_event(name: &str, data: &serde_json::Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

/// Cuts `s` into `n` pieces of about equal length on character boundaries.
pub fn pieces(s: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    let per = chars.len().div_ceil(n.max(1)).max(1);
    chars.chunks(per).map(|c| c.iter().collect()).collect()
}

type Handler = dyn Fn(&Recorded) -> Reply + Send + Sync;

/// The running mock. Dropping it stops accepting connections.
pub struct MockUpstream {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Recorded>>>,
    frames_sent: Arc<AtomicUsize>,
    accept: tokio::task::JoinHandle<()>,
}

impl MockUpstream {
    /// Starts the mock on `127.0.0.1:0` (HTTP/1 and HTTP/2); `handler` answers each request.
    pub async fn start<F>(handler: F) -> MockUpstream
    where
        F: Fn(&Recorded) -> Reply + Send + Sync + 'static,
    {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the mock upstream");
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let frames_sent = Arc::new(AtomicUsize::new(0));
        let handler: Arc<Handler> = Arc::new(handler);
        let (reqs, sent) = (requests.clone(), frames_sent.clone());
        let accept = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (reqs, sent, handler) = (reqs.clone(), sent.clone(), handler.clone());
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let (reqs, sent, handler) = (reqs.clone(), sent.clone(), handler.clone());
                    async move { Ok::<_, Infallible>(serve(req, &reqs, sent, &*handler).await) }
                });
                tokio::spawn(async move {
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        MockUpstream {
            addr,
            requests,
            frames_sent,
            accept,
        }
    }

    /// A mock that answers every request with the same reply.
    pub async fn replying(reply: Reply) -> MockUpstream {
        MockUpstream::start(move |_| reply.clone()).await
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    /// Body frames handed to the connection so far, over all answers.
    pub fn frames_sent(&self) -> usize {
        self.frames_sent.load(Ordering::SeqCst)
    }
}

impl Drop for MockUpstream {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn serve(
    req: Request<Incoming>,
    reqs: &Mutex<Vec<Recorded>>,
    sent: Arc<AtomicUsize>,
    handler: &Handler,
) -> Response<ChannelBody> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(c) => c.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let rec = Recorded {
        method: parts.method,
        path: parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string(),
        headers: parts.headers,
        body,
    };
    reqs.lock().unwrap().push(rec.clone());
    let reply = handler(&rec);
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        for (pace, frame) in reply.frames {
            match pace {
                Pace::Delay(d) if d.is_zero() => {}
                Pace::Delay(d) => tokio::time::sleep(d).await,
                Pace::Gate(g) => {
                    let _ = tokio::time::timeout(g.max_wait, g.notify.notified()).await;
                }
            }
            if tx.send(frame).await.is_err() {
                return; // the client went away
            }
            sent.fetch_add(1, Ordering::SeqCst);
        }
    });
    let mut resp = Response::new(ChannelBody { rx });
    *resp.status_mut() = reply.status;
    for (k, v) in reply.headers {
        resp.headers_mut().append(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            http::HeaderValue::from_str(&v).unwrap(),
        );
    }
    resp
}

/// A response body fed frame by frame from a channel.
pub struct ChannelBody {
    rx: mpsc::Receiver<Bytes>,
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.rx.poll_recv(cx).map(|f| f.map(|b| Ok(Frame::data(b))))
    }
}
