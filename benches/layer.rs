//! Overhead of the redact layer around an in-process echo service (no network), against
//! the same service under `tower::layer::util::Identity`, measured in the same run so a
//! noisy machine still compares:
//!
//! - a 2 KB chat-completions JSON body, request scanned and answer restored;
//! - a 50-event OpenAI SSE answer of prose: added time per event (target < 20 µs);
//! - redaction state per in-flight stream after 1 and after 10,000 events (must not grow
//!   with the answer's length).
//!
//! ```sh
//! cargo bench --bench layer
//! ```
//!
//! Criterion prints its usual statistics; a summary with ratios against identity follows.

use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput};
use http::{Request, Response};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Full};
use tower::layer::util::Identity;
use tower::{Layer, Service, ServiceExt};
use veilgate::engine::{Engine, Key, Redactor};
use veilgate::redact::RedactLayer;

// ---------------------------------------------------------------------------------------
// The in-process upstream

/// A body that yields pre-built frames one by one (an upstream's TCP chunks).
struct Frames {
    frames: Arc<Vec<Bytes>>,
    next: usize,
}

impl Body for Frames {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let i = self.next;
        self.next += 1;
        Poll::Ready(self.frames.get(i).cloned().map(|b| Ok(Frame::data(b))))
    }
}

#[derive(Clone)]
enum Answer {
    /// Echo the request body back as `application/json`.
    Echo,
    /// Answer with these SSE frames.
    Sse(Arc<Vec<Bytes>>),
}

/// Reads the whole request body, then answers: what a provider does.
#[derive(Clone)]
struct Upstream(Answer);

impl<B> Service<Request<B>> for Upstream
where
    B: Body<Data = Bytes> + Send + 'static,
{
    type Response = Response<Frames>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Frames>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let answer = self.0.clone();
        Box::pin(async move {
            let body = match req.into_body().collect().await {
                Ok(c) => c.to_bytes(),
                Err(_) => Bytes::new(),
            };
            let (ct, frames) = match answer {
                Answer::Echo => ("application/json", Arc::new(vec![body])),
                Answer::Sse(frames) => ("text/event-stream", frames),
            };
            Ok(Response::builder()
                .header("content-type", ct)
                .body(Frames { frames, next: 0 })
                .unwrap())
        })
    }
}

// ---------------------------------------------------------------------------------------
// Inputs

const PROSE: &str = "The quarterly report shows steady growth in the northern region, driven by \
    renewed demand for the mid-range product line and a shorter delivery time. Costs rose \
    slightly because of freight, but margins held. The team suggests keeping the current \
    pricing until the next review and investing the surplus in support staff. ";

/// A chat-completions request of about 2 KB: mostly prose, one e-mail to pseudonymize.
fn chat_json_2k() -> Bytes {
    let mut user = String::from("Please summarise this for anna.kowalski@posteo.de: ");
    while user.len() < 1850 {
        user.push_str(PROSE);
    }
    user.truncate(1850);
    let v = serde_json::json!({
        "model": "gpt-4o",
        "temperature": 0.2,
        "messages": [
            {"role": "system", "content": "You are a concise business analyst. Answer in plain English."},
            {"role": "user", "content": user},
        ],
    });
    let b = Bytes::from(v.to_string());
    assert!((1900..2200).contains(&b.len()), "{}", b.len());
    b
}

const STREAM_REQUEST: &str = r#"{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"Summarise the quarterly report."}]}"#;

/// An OpenAI chat SSE answer of `n` prose deltas (a few words each), each event its own
/// frame, closed by a `finish_reason` chunk and `[DONE]`.
fn sse_frames(n: usize) -> Arc<Vec<Bytes>> {
    let words: Vec<&str> = PROSE.split_inclusive(' ').collect();
    let mut frames = Vec::with_capacity(n + 2);
    for i in 0..n {
        let piece: String = (0..4).map(|k| words[(i * 4 + k) % words.len()]).collect();
        let v = serde_json::json!({"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_fc9f1d7035","choices":[{"index":0,"delta":{"content":piece},"logprobs":null,"finish_reason":null}]});
        frames.push(Bytes::from(format!("data: {v}\n\n")));
    }
    let fin = serde_json::json!({"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]});
    frames.push(Bytes::from(format!("data: {fin}\n\n")));
    frames.push(Bytes::from_static(b"data: [DONE]\n\n"));
    Arc::new(frames)
}

fn redact_layer() -> RedactLayer {
    let engine = Arc::new(Engine::builtin().expect("built-in filters"));
    RedactLayer::with_redactor(Redactor::new(engine).with_key(Key::new(b"bench-layer")))
}

fn post(body: Bytes) -> Request<Full<Bytes>> {
    Request::post("/v1/chat/completions")
        .header("content-type", "application/json")
        .body(Full::new(body))
        .unwrap()
}

/// One request through `svc`, answer read to the end; returns the answer's length.
async fn roundtrip<S, B>(svc: &S, body: Bytes) -> usize
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>, Error = Infallible> + Clone,
    B: Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    let resp = svc.clone().oneshot(post(body)).await.unwrap();
    let out = resp.into_body().collect().await.unwrap().to_bytes();
    out.len()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------------------------
// Criterion

fn bench_json(c: &mut Criterion, layer: &RedactLayer) {
    let rt = rt();
    let body = chat_json_2k();
    let redacted = layer.layer(Upstream(Answer::Echo));
    let identity = Identity::new().layer(Upstream(Answer::Echo));
    let mut g = c.benchmark_group("json_2k");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("identity", |b| {
        b.iter(|| rt.block_on(roundtrip(&identity, black_box(body.clone()))))
    });
    g.bench_function("redact", |b| {
        b.iter(|| rt.block_on(roundtrip(&redacted, black_box(body.clone()))))
    });
    g.finish();
}

fn bench_sse(c: &mut Criterion, layer: &RedactLayer) {
    let rt = rt();
    let frames = sse_frames(50);
    let redacted = layer.layer(Upstream(Answer::Sse(frames.clone())));
    let identity = Identity::new().layer(Upstream(Answer::Sse(frames)));
    let req = Bytes::from_static(STREAM_REQUEST.as_bytes());
    let mut g = c.benchmark_group("sse_50_events");
    g.throughput(Throughput::Elements(50));
    g.bench_function("identity", |b| {
        b.iter(|| rt.block_on(roundtrip(&identity, black_box(req.clone()))))
    });
    g.bench_function("redact", |b| {
        b.iter(|| rt.block_on(roundtrip(&redacted, black_box(req.clone()))))
    });
    g.finish();
}

// ---------------------------------------------------------------------------------------
// Summary: ratios measured in this run

/// Median time per call of `f` over `rounds` rounds of `per_round` calls.
fn per_call(rounds: usize, per_round: usize, mut f: impl FnMut()) -> Duration {
    let mut samples: Vec<Duration> = (0..rounds)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..per_round {
                f();
            }
            t.elapsed() / per_round as u32
        })
        .collect();
    samples.sort_unstable();
    samples[samples.len() / 2]
}

/// Identity and layer, interleaved round by round so drift hits both alike.
fn paired(
    rounds: usize,
    per_round: usize,
    mut base: impl FnMut(),
    mut layer: impl FnMut(),
) -> (Duration, Duration) {
    let (mut b, mut l) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        b.push(per_call(1, per_round, &mut base));
        l.push(per_call(1, per_round, &mut layer));
    }
    b.sort_unstable();
    l.sort_unstable();
    (b[b.len() / 2], l[l.len() / 2])
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn summary(layer: &RedactLayer) {
    let rt = rt();
    println!();
    println!("== redact layer overhead (ratios against identity, same run) ==");

    let body = chat_json_2k();
    let redacted = layer.layer(Upstream(Answer::Echo));
    let identity = Identity::new().layer(Upstream(Answer::Echo));
    let (bi, bl) = paired(
        15,
        200,
        || {
            black_box(rt.block_on(roundtrip(&identity, body.clone())));
        },
        || {
            black_box(rt.block_on(roundtrip(&redacted, body.clone())));
        },
    );
    println!(
        "json 2 KB ({} B) request+answer: identity {:.2} µs, redact {:.2} µs, ratio {:.1}x, added {:.1} µs",
        body.len(),
        us(bi),
        us(bl),
        bl.as_secs_f64() / bi.as_secs_f64(),
        us(bl.saturating_sub(bi)),
    );

    let req = Bytes::from_static(STREAM_REQUEST.as_bytes());
    let mut sse = Vec::new();
    for n in [1usize, 50] {
        let frames = sse_frames(n);
        let redacted = layer.layer(Upstream(Answer::Sse(frames.clone())));
        let identity = Identity::new().layer(Upstream(Answer::Sse(frames)));
        let per_round = if n == 1 { 200 } else { 20 };
        let (si, sl) = paired(
            15,
            per_round,
            || {
                black_box(rt.block_on(roundtrip(&identity, req.clone())));
            },
            || {
                black_box(rt.block_on(roundtrip(&redacted, req.clone())));
            },
        );
        sse.push((n, si, sl));
    }
    let (_, i1, l1) = sse[0];
    let (_, i50, l50) = sse[1];
    println!(
        "sse 50 events: identity {:.1} µs, redact {:.1} µs, ratio {:.1}x; added per event {:.2} µs (whole answer incl. request / 50)",
        us(i50),
        us(l50),
        l50.as_secs_f64() / i50.as_secs_f64(),
        (us(l50) - us(i50)) / 50.0,
    );
    let marginal = ((us(l50) - us(i50)) - (us(l1) - us(i1))) / 49.0;
    println!(
        "sse marginal cost per event (50-event minus 1-event answer, / 49): {marginal:.2} µs (target < 20 µs) -> {}",
        if marginal < 20.0 { "ok" } else { "OVER BUDGET" }
    );

    // State per in-flight stream.
    // 100 and 1,000 show where the buffers settle: they grow to the largest event seen,
    // not with the number of events.
    let mut first = 0;
    for n in [1usize, 100, 1_000, 10_000] {
        let (max, last) = rt.block_on(stream_state(layer, n));
        println!(
            "state bytes per in-flight stream after {n:>5} event(s): {last} B (max while streaming {max} B)"
        );
        if n == 1 {
            first = last;
        } else if n == 10_000 {
            println!(
                "state growth from 1 to 10,000 events: {:+} B ({:.2}x)",
                last as i64 - first as i64,
                last as f64 / first.max(1) as f64
            );
        }
    }
}

/// Streams an `n`-event answer through the layer frame by frame; returns the largest
/// `state_bytes()` seen and the value after the last content event (before the end).
async fn stream_state(layer: &RedactLayer, n: usize) -> (usize, usize) {
    let frames = sse_frames(n);
    let svc = layer.layer(Upstream(Answer::Sse(frames.clone())));
    let resp = svc
        .oneshot(post(Bytes::from_static(STREAM_REQUEST.as_bytes())))
        .await
        .unwrap();
    let mut body = resp.into_body();
    let (mut max, mut last) = (body.state_bytes(), 0);
    // The upstream's frames are its `n` content events, then finish and [DONE].
    for _ in 0..n {
        let f = body.frame().await.expect("a frame").unwrap();
        black_box(f);
        let s = body.state_bytes();
        max = max.max(s);
        last = s;
    }
    while let Some(f) = body.frame().await {
        black_box(f.unwrap());
        max = max.max(body.state_bytes());
    }
    (max, last)
}

fn main() {
    let layer = redact_layer();
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(800))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
        .configure_from_args();
    bench_json(&mut c, &layer);
    bench_sse(&mut c, &layer);
    c.final_summary();
    summary(&layer);
}
