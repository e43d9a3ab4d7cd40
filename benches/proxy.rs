//! End-to-end load over loopback: the veilgate sidecar against a bare hyper pass-through
//! proxy and against the upstream directly, in one process and one run, so the ratios
//! hold on a noisy or shared machine.
//!
//! Three servers start on `127.0.0.1:0`:
//!
//! - `direct`: a fast mock upstream. `POST /v1/chat/completions` answers a fixed ~500 B
//!   chat completion, or, when the body asks for `"stream":true`, a 50-event OpenAI SSE
//!   answer, each event its own body frame and its own write (the body yields between
//!   events; no timer, no delay);
//! - `bare`: a pass-through proxy written here with hyper and the pooled hyper-util legacy
//!   client: forwards the request as it comes, streams the answer back, touches no body;
//! - `veilgate`: the sidecar (`veilgate::sidecar::start`) pointed at the mock with the
//!   default redaction policy (pseudonymize requests, restore and redact answers).
//!
//! ```sh
//! cargo bench --bench proxy                      # the measurement below, ~50 s
//! cargo bench --bench proxy -- --duration 4 --connections 32 --streams 100
//! cargo bench --bench proxy -- --serve           # print the URLs, serve until stdin closes
//! cargo bench --bench proxy -- --print-body      # the 2 KB request body (for wrk)
//! ```
//!
//! The load generator is closed-loop: `--connections` keep-alive HTTP/1.1 connections per
//! target, each sending the next request as soon as the previous answer is read to the
//! end, for `--rounds` x `--duration` seconds per target (targets interleaved round by
//! round, a 1 s warm-up before each). It reports requests/s and p50/p99 latency for the 2 KB
//! chat body. An open-loop pass follows: the same connections send at a fixed rate (half the
//! slowest target's closed-loop requests/s, the same for all three) for `--duration` s, so
//! p50/p99 show the per-request cost without the queueing a saturated closed loop adds.
//! Then, one request at a time on one connection per target (interleaved), time to first
//! and to last body byte of the 50-event stream, median over `--streams` requests.
//! Last come the ratios veilgate/bare against the targets of the runbook in
//! `benches/README.md`. Everything is bounded (count and time) and stays on loopback; a
//! watchdog ends the process if the run overshoots its plan.
//!
//! Run without `--bench` (as `cargo test --benches` does) it is a smoke run of a few
//! seconds.

use std::convert::Infallible;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode, Uri};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Either, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};

/// The allocator of the `veilgate` binary, so that the bench measures what it runs (all
/// three targets share it).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

// ---------------------------------------------------------------------------------------
// Inputs

const PROSE: &str = "The quarterly report shows steady growth in the northern region, driven by \
    renewed demand for the mid-range product line and a shorter delivery time. Costs rose \
    slightly because of freight, but margins held. The team suggests keeping the current \
    pricing until the next review and investing the surplus in support staff. ";

/// The raw e-mail planted in the request (the probe checks it never reaches upstream).
const EMAIL: &str = "anna.kowalski@posteo.de";

/// A chat-completions request of about 2 KB: prose with a few personal values (name,
/// e-mail, phone, IBAN) in the user message.
fn chat_body(stream: bool) -> Bytes {
    let mut user = format!(
        "Hello, I am Anna Kowalski ({EMAIL}, phone +49 30 12345678, IBAN DE89 3704 0044 0532 \
         0130 00). Please summarise the following for my manager: "
    );
    while user.len() < 1800 {
        user.push_str(PROSE);
    }
    user.truncate(1800);
    let mut v = serde_json::json!({
        "model": "gpt-4o",
        "temperature": 0.2,
        "messages": [
            {"role": "system", "content": "You are a concise business analyst. Answer in plain English."},
            {"role": "user", "content": user},
        ],
    });
    if stream {
        v["stream"] = serde_json::Value::Bool(true);
    }
    let b = Bytes::from(v.to_string());
    assert!((1900..2200).contains(&b.len()), "{}", b.len());
    b
}

/// The mock's non-streamed answer (~500 B).
fn chat_answer() -> Bytes {
    let v = serde_json::json!({
        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "object": "chat.completion",
        "created": 1741569952,
        "model": "gpt-4o-2024-08-06",
        "choices": [{
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Growth was steady in the northern region, driven by mid-range demand \
                    and faster delivery. Freight raised costs slightly; margins held. Keep \
                    pricing until the next review and invest the surplus in support staff.",
                "refusal": null
            },
            "logprobs": null,
            "finish_reason": "stop"
        }],
        "usage": {"prompt_tokens": 431, "completion_tokens": 42, "total_tokens": 473},
        "system_fingerprint": "fp_fc9f1d7035"
    });
    Bytes::from(v.to_string())
}

/// A 50-event OpenAI chat stream: 48 prose deltas of a few words (one e-mail address
/// split across two of them, so the sidecar's holdback works once), a `finish_reason`
/// event and `[DONE]`.
fn sse_events() -> Arc<Vec<Bytes>> {
    let words: Vec<&str> = PROSE.split_inclusive(' ').collect();
    let chunk = |v: serde_json::Value| Bytes::from(format!("data: {v}\n\n"));
    let delta = |text: &str| {
        chunk(
            serde_json::json!({"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_fc9f1d7035","choices":[{"index":0,"delta":{"content":text},"logprobs":null,"finish_reason":null}]}),
        )
    };
    let mut events = Vec::with_capacity(50);
    for i in 0..48 {
        let text: String = match i {
            20 => "Send questions to maria.sanche".into(),
            21 => "z@example.org before Friday. ".into(),
            _ => (0..4).map(|k| words[(i * 4 + k) % words.len()]).collect(),
        };
        events.push(delta(&text));
    }
    events.push(chunk(serde_json::json!({"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]})));
    events.push(Bytes::from_static(b"data: [DONE]\n\n"));
    assert_eq!(events.len(), 50);
    Arc::new(events)
}

// ---------------------------------------------------------------------------------------
// The mock upstream

/// Body frames from a list, one per poll, with a cooperative yield (`Pending` after a
/// self-wake) between them: hyper then writes each event with its own flush, as a real
/// provider streaming tokens does, but without any timer.
struct Events {
    events: Arc<Vec<Bytes>>,
    next: usize,
    yielded: bool,
}

impl Body for Events {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.next > 0 && !self.yielded && self.next < self.events.len() {
            self.yielded = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.yielded = false;
        let i = self.next;
        self.next += 1;
        Poll::Ready(self.events.get(i).cloned().map(|b| Ok(Frame::data(b))))
    }
}

type MockBody = Either<Full<Bytes>, Events>;

#[derive(Clone)]
struct Mock {
    answer: Bytes,
    events: Arc<Vec<Bytes>>,
    /// The last body received with an `x-bench-probe` header.
    probe: Arc<Mutex<Option<Bytes>>>,
}

/// A substring search that costs the mock next to nothing, so the proxies' own work
/// dominates what the load measures (a byte-window scan was ~40% of a bare request).
fn contains(hay: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(hay, needle).is_some()
}

async fn mock(m: Mock, req: Request<Incoming>) -> Result<Response<MockBody>, Infallible> {
    let probe = req.headers().contains_key("x-bench-probe");
    let body = match req.into_body().collect().await {
        Ok(c) => c.to_bytes(),
        Err(_) => Bytes::new(),
    };
    if probe {
        *m.probe.lock().unwrap() = Some(body.clone());
    }
    let stream = contains(&body, b"\"stream\":true") || contains(&body, b"\"stream\": true");
    let resp = if stream {
        Response::builder()
            .header(header::CONTENT_TYPE, "text/event-stream")
            .header(header::CACHE_CONTROL, "no-cache")
            .body(Either::Right(Events {
                events: m.events.clone(),
                next: 0,
                yielded: false,
            }))
    } else {
        Response::builder()
            .header(header::CONTENT_TYPE, "application/json")
            .body(Either::Left(Full::new(m.answer.clone())))
    };
    Ok(resp.expect("static response parts"))
}

/// Accepts on `listener` and serves each connection (HTTP/1 and HTTP/2, like the sidecar).
fn serve<F, Fut, B>(listener: TcpListener, handler: F)
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Response<B>, Infallible>> + Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            let _ = stream.set_nodelay(true);
            let h = handler.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(h);
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
}

// ---------------------------------------------------------------------------------------
// The bare pass-through proxy (the baseline)

type BareClient = Client<HttpConnector, Incoming>;
type BareBody = Either<Incoming, Full<Bytes>>;

async fn bare(
    client: BareClient,
    upstream: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<BareBody>, Infallible> {
    let (mut parts, body) = req.into_parts();
    let pq = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    parts.uri = match Uri::builder()
        .scheme("http")
        .authority(upstream.to_string())
        .path_and_query(pq)
        .build()
    {
        Ok(u) => u,
        Err(_) => return Ok(status(StatusCode::BAD_REQUEST)),
    };
    veilgate::redact::strip_hop_by_hop(&mut parts.headers);
    if let Ok(host) = HeaderValue::from_str(&upstream.to_string()) {
        parts.headers.insert(header::HOST, host);
    }
    parts.version = http::Version::HTTP_11;
    match client.request(Request::from_parts(parts, body)).await {
        Ok(resp) => {
            let (mut parts, body) = resp.into_parts();
            veilgate::redact::strip_hop_by_hop(&mut parts.headers);
            Ok(Response::from_parts(parts, Either::Left(body)))
        }
        Err(_) => Ok(status(StatusCode::BAD_GATEWAY)),
    }
}

fn status(s: StatusCode) -> Response<BareBody> {
    let mut r = Response::new(Either::Right(Full::new(Bytes::new())));
    *r.status_mut() = s;
    r
}

// ---------------------------------------------------------------------------------------
// Starting the three targets

struct Targets {
    direct: SocketAddr,
    bare: SocketAddr,
    veilgate: SocketAddr,
    probe: Arc<Mutex<Option<Bytes>>>,
    _sidecar: veilgate::sidecar::Handle,
    _dir: TempDir,
}

/// Removed on drop.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn loopback() -> TcpListener {
    TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0")
}

async fn start_targets() -> Result<Targets, String> {
    let probe = Arc::new(Mutex::new(None));
    let m = Mock {
        answer: chat_answer(),
        events: sse_events(),
        probe: probe.clone(),
    };
    let l = loopback().await;
    let direct = l.local_addr().map_err(|e| e.to_string())?;
    serve(l, move |req| mock(m.clone(), req));

    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    let client: BareClient = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .build(http);
    let l = loopback().await;
    let bare_addr = l.local_addr().map_err(|e| e.to_string())?;
    serve(l, move |req| bare(client.clone(), direct, req));

    // The sidecar from a file, as a user runs it: only addresses and the upstream are
    // set; [redact] is left at its defaults. A fixed key keeps pseudonyms stable.
    let dir = std::env::temp_dir().join(format!("veilgate-bench-proxy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let dir = TempDir(dir);
    let key = dir.0.join("key");
    std::fs::write(&key, "veilgate-bench-proxy-key").map_err(|e| e.to_string())?;
    let config = dir.0.join("veilgate.toml");
    let toml = format!(
        r#"listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
watch = false
drain_secs = 1

[[upstream]]
name = "openai"
provider = "openai"
base_url = "http://{direct}"

[redact]
key_file = "{}"
{}
"#,
        key.display(),
        // Diagnostics only: extra `[redact]` lines, e.g. `requests = false` and
        // `responses = false` to measure the plumbing without the scans.
        std::env::var("VEILGATE_BENCH_REDACT").unwrap_or_default(),
    );
    std::fs::write(&config, toml).map_err(|e| e.to_string())?;
    let handle = veilgate::sidecar::start(Some(config), veilgate::sidecar::Overrides::default())
        .await
        .map_err(|e| format!("sidecar: {e}"))?;
    Ok(Targets {
        direct,
        bare: bare_addr,
        veilgate: handle.addr,
        probe,
        _sidecar: handle,
        _dir: dir,
    })
}

// ---------------------------------------------------------------------------------------
// The load generator

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

const PATH: &str = "/v1/chat/completions";
/// Longest a single request may take before it counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

async fn connect(addr: SocketAddr) -> Result<Sender, String> {
    let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

fn request(addr: SocketAddr, body: &Bytes, probe: bool) -> Request<Full<Bytes>> {
    let mut b = Request::post(PATH)
        .header(header::HOST, addr.to_string())
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, "Bearer sk-bench-not-a-real-key");
    if probe {
        b = b.header("x-bench-probe", "1");
    }
    b.body(Full::new(body.clone()))
        .expect("static request parts")
}

/// One request, answer read to the end: (status, body, time to first body byte).
async fn exchange(
    sender: &mut Sender,
    req: Request<Full<Bytes>>,
) -> Result<(StatusCode, Vec<u8>, Option<Duration>), String> {
    let t0 = Instant::now();
    sender.ready().await.map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let mut body = resp.into_body();
    let mut out = Vec::new();
    let mut first = None;
    while let Some(f) = body.frame().await {
        let f = f.map_err(|e| e.to_string())?;
        if let Ok(d) = f.into_data() {
            if first.is_none() && !d.is_empty() {
                first = Some(t0.elapsed());
            }
            out.extend_from_slice(&d);
        }
    }
    Ok((status, out, first))
}

#[derive(Default)]
struct Load {
    ok: u64,
    errors: u64,
    /// Latency of each request completed inside the measured window, µs.
    micros: Vec<u32>,
    secs: f64,
}

impl Load {
    fn add(&mut self, o: Load) {
        self.ok += o.ok;
        self.errors += o.errors;
        self.micros.extend(o.micros);
        self.secs += o.secs;
    }
    fn rps(&self) -> f64 {
        self.ok as f64 / self.secs.max(1e-9)
    }
}

/// `conns` closed-loop connections against `addr` until `dur` has passed.
async fn closed_loop(addr: SocketAddr, conns: usize, dur: Duration, body: &Bytes) -> Load {
    let start = Instant::now();
    let deadline = start + dur;
    let mut tasks = Vec::with_capacity(conns);
    for _ in 0..conns {
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            let mut l = Load::default();
            let mut sender = None;
            while Instant::now() < deadline {
                let s = match sender.as_mut() {
                    Some(s) => s,
                    None => match connect(addr).await {
                        Ok(s) => sender.insert(s),
                        Err(_) => {
                            l.errors += 1;
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        }
                    },
                };
                let t0 = Instant::now();
                let r =
                    tokio::time::timeout(REQUEST_TIMEOUT, exchange(s, request(addr, &body, false)))
                        .await;
                let end = Instant::now();
                match r {
                    Ok(Ok((st, _, _))) if st == StatusCode::OK => {
                        if end <= deadline {
                            l.ok += 1;
                            l.micros
                                .push((end - t0).as_micros().min(u32::MAX as u128) as u32);
                        }
                    }
                    Ok(Ok(_)) => l.errors += 1,
                    _ => {
                        l.errors += 1;
                        sender = None;
                    }
                }
            }
            l
        }));
    }
    let mut total = Load::default();
    for t in tasks {
        if let Ok(l) = t.await {
            total.ok += l.ok;
            total.errors += l.errors;
            total.micros.extend(l.micros);
        }
    }
    total.secs = dur.as_secs_f64();
    total
}

/// Open loop: `conns` connections together sending `rate` requests/s on a fixed schedule
/// (each connection every `conns / rate` s, staggered) for `dur`. Latency counts from the
/// scheduled send time when a connection has fallen behind (no coordinated omission), else
/// from the actual send (tokio timers have a 1 ms grain).
async fn open_loop(addr: SocketAddr, conns: usize, rate: f64, dur: Duration, body: &Bytes) -> Load {
    let start = tokio::time::Instant::now() + Duration::from_millis(20);
    let deadline = start + dur;
    let interval = Duration::from_secs_f64(conns as f64 / rate);
    let mut tasks = Vec::with_capacity(conns);
    for c in 0..conns {
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            let mut l = Load::default();
            let mut sender = match connect(addr).await {
                Ok(s) => s,
                Err(_) => {
                    l.errors += 1;
                    return l;
                }
            };
            let mut next = start + interval.mul_f64(c as f64 / conns as f64);
            while next < deadline {
                tokio::time::sleep_until(next).await;
                let now = tokio::time::Instant::now();
                let from = if now > next + Duration::from_millis(2) {
                    next
                } else {
                    now
                };
                let r = tokio::time::timeout(
                    REQUEST_TIMEOUT,
                    exchange(&mut sender, request(addr, &body, false)),
                )
                .await;
                match r {
                    Ok(Ok((st, _, _))) if st == StatusCode::OK => {
                        l.ok += 1;
                        l.micros
                            .push(from.elapsed().as_micros().min(u32::MAX as u128) as u32);
                    }
                    Ok(Ok(_)) => l.errors += 1,
                    _ => {
                        l.errors += 1;
                        match connect(addr).await {
                            Ok(s) => sender = s,
                            Err(_) => return l,
                        }
                    }
                }
                next += interval;
            }
            l
        }));
    }
    let mut total = Load::default();
    for t in tasks {
        if let Ok(l) = t.await {
            total.ok += l.ok;
            total.errors += l.errors;
            total.micros.extend(l.micros);
        }
    }
    total.secs = dur.as_secs_f64();
    total
}

/// Time to first and last body byte of one streamed answer, ms.
async fn one_stream(sender: &mut Sender, addr: SocketAddr, body: &Bytes) -> Option<(f64, f64)> {
    let t0 = Instant::now();
    let r = tokio::time::timeout(
        REQUEST_TIMEOUT,
        exchange(sender, request(addr, body, false)),
    )
    .await;
    let last = t0.elapsed();
    match r {
        Ok(Ok((st, out, Some(first))))
            if st == StatusCode::OK && out.ends_with(b"data: [DONE]\n\n") =>
        {
            Some((first.as_secs_f64() * 1e3, last.as_secs_f64() * 1e3))
        }
        _ => None,
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

// ---------------------------------------------------------------------------------------
// Options

struct Opts {
    serve: bool,
    print_body: bool,
    connections: usize,
    duration: u64,
    rounds: usize,
    streams: usize,
    smoke: bool,
}

fn opts() -> Result<Opts, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let bench = args.iter().any(|a| a == "--bench");
    let smoke = !bench;
    let mut o = Opts {
        serve: false,
        print_body: false,
        connections: if smoke { 4 } else { 64 },
        duration: if smoke { 1 } else { 4 },
        rounds: if smoke { 1 } else { 2 },
        streams: if smoke { 5 } else { 200 },
        smoke,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut num = |name: &str, max: u64| -> Result<u64, String> {
            let v = it
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .filter(|v| (1..=max).contains(v))
                .ok_or_else(|| format!("{name} takes a number from 1 to {max}"))?;
            Ok(v)
        };
        match a.as_str() {
            "--serve" => o.serve = true,
            "--print-body" => o.print_body = true,
            "--connections" => o.connections = num(a, 512)? as usize,
            "--duration" => o.duration = num(a, 60)?,
            "--rounds" => o.rounds = num(a, 5)? as usize,
            "--streams" => o.streams = num(a, 5000)? as usize,
            // cargo passes `--bench`; criterion-style filters and flags are ignored.
            _ => {}
        }
    }
    Ok(o)
}

// ---------------------------------------------------------------------------------------
// Main

fn main() {
    let o = match opts() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("proxy bench: {e}");
            std::process::exit(2);
        }
    };
    if o.print_body {
        std::io::stdout().write_all(&chat_body(false)).unwrap();
        return;
    }
    // Servers (mock, bare proxy, sidecar) on one runtime, the load generator on another:
    // two worker threads each, the machine's two cores shared by all.
    let servers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("bench-server")
        .enable_all()
        .build()
        .expect("server runtime");
    let targets = match servers.block_on(start_targets()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("proxy bench: {e}");
            std::process::exit(1);
        }
    };
    if o.serve {
        println!(
            "direct=http://{} bare=http://{} veilgate=http://{}",
            targets.direct, targets.bare, targets.veilgate
        );
        let _ = std::io::stdout().flush();
        servers.block_on(until_stdin_closes_or_signal());
        drop(targets);
        servers.shutdown_timeout(Duration::from_secs(1));
        return;
    }
    // Plan: per target, rounds x (1 s warm-up + duration), then the streams. The watchdog
    // ends the process if the run takes three times that (plus a minute).
    let planned = Duration::from_secs(3 * o.rounds as u64 * (1 + o.duration) + 3 * o.duration)
        + Duration::from_millis(3 * o.streams as u64 * 20);
    let limit = planned * 3 + Duration::from_secs(60);
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        eprintln!("proxy bench: watchdog: still running after {limit:?}, giving up");
        std::process::exit(3);
    });
    let load = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("bench-load")
        .enable_all()
        .build()
        .expect("load runtime");
    let ok = load.block_on(run(&o, &targets));
    drop(load);
    drop(targets); // removes the temporary config directory
    servers.shutdown_timeout(Duration::from_secs(1));
    if !ok {
        std::process::exit(1);
    }
}

async fn until_stdin_closes_or_signal() {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 256];
        let mut stdin = std::io::stdin();
        while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
        let _ = tx.send(());
    });
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = rx => {}
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

fn tick(ok: bool) -> &'static str {
    if ok { "PASS" } else { "MISS" }
}

async fn run(o: &Opts, t: &Targets) -> bool {
    let body = chat_body(false);
    let stream_body = chat_body(true);
    let names = ["direct", "bare", "veilgate"];
    let addrs = [t.direct, t.bare, t.veilgate];

    // Sanity: each target answers both shapes, and the sidecar really pseudonymizes.
    for (name, &addr) in names.iter().zip(&addrs) {
        let mut s = match connect(addr).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("{name}: cannot connect: {e}");
                return false;
            }
        };
        match exchange(&mut s, request(addr, &body, *name == "veilgate")).await {
            Ok((st, out, _)) if st == StatusCode::OK && out.len() > 400 => {}
            other => {
                eprintln!(
                    "{name}: bad chat answer: {:?}",
                    other.map(|(s, b, _)| (s, b.len()))
                );
                return false;
            }
        }
        // The sidecar may re-cut events (text held back at a possible match moves to the
        // next event; the carry is flushed at the channel's end), so count at least 50.
        match exchange(&mut s, request(addr, &stream_body, false)).await {
            Ok((st, out, _))
                if st == StatusCode::OK
                    && out.ends_with(b"data: [DONE]\n\n")
                    && out.windows(6).filter(|w| w == b"data: ").count() >= 50 => {}
            other => {
                eprintln!(
                    "{name}: bad stream answer: {:?}",
                    other.map(|(s, b, _)| (
                        s,
                        b.len(),
                        b.windows(6).filter(|w| w == b"data: ").count()
                    ))
                );
                return false;
            }
        }
    }
    let seen = t.probe.lock().unwrap().clone().unwrap_or_default();
    let seen = String::from_utf8_lossy(&seen);
    let mut tokens: Vec<&str> = seen
        .match_indices('<')
        .filter_map(|(i, _)| {
            let rest = &seen[i + 1..];
            let end = rest.find('>')?;
            let tok = &rest[..end];
            let (entity, _) = tok.rsplit_once('_')?;
            entity
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b == b'_')
                .then_some(entity)
        })
        .collect();
    tokens.sort_unstable();
    if seen.contains(EMAIL) || tokens.is_empty() {
        eprintln!("veilgate: the upstream saw the raw request; the sidecar did not redact it");
        return false;
    }
    println!(
        "veilgate probe: upstream saw {} pseudonym(s) ({}) and no raw e-mail",
        tokens.len(),
        tokens.join(", ")
    );

    let dur = Duration::from_secs(o.duration);
    println!(
        "load: {} connections, {} x {} s per target (1 s warm-up each), {} B chat body, loopback{}",
        o.connections,
        o.rounds,
        o.duration,
        body.len(),
        if o.smoke {
            " [smoke run: pass --bench for the real one]"
        } else {
            ""
        }
    );
    let mut loads: [Load; 3] = Default::default();
    for round in 0..o.rounds {
        for (i, &addr) in addrs.iter().enumerate() {
            let _ = closed_loop(addr, o.connections, Duration::from_secs(1), &body).await;
            let l = closed_loop(addr, o.connections, dur, &body).await;
            eprintln!(
                "  round {} {:<8} {:>9.0} req/s  errors {}",
                round + 1,
                names[i],
                l.rps(),
                l.errors
            );
            loads[i].add(l);
        }
    }

    // Open loop at one offered rate all three sustain: half of the slowest target's
    // closed-loop requests/s. Latency here is per-request cost, not queueing.
    let slowest = loads.iter().map(Load::rps).fold(f64::INFINITY, f64::min);
    let rate = (slowest * 0.5).max(10.0);
    let mut open: [Load; 3] = Default::default();
    for (i, &addr) in addrs.iter().enumerate() {
        open[i] = open_loop(addr, o.connections, rate, dur, &body).await;
        eprintln!(
            "  open loop {:<8} {:>9.0} req/s offered, {} done, errors {}",
            names[i], rate, open[i].ok, open[i].errors
        );
    }

    // Streams: one at a time per target, targets interleaved request by request.
    let mut streams: [(Vec<f64>, Vec<f64>, u64); 3] = Default::default();
    let mut senders = Vec::new();
    for &addr in &addrs {
        match connect(addr).await {
            Ok(s) => senders.push(s),
            Err(e) => {
                eprintln!("stream connect {addr}: {e}");
                return false;
            }
        }
    }
    for _ in 0..o.streams {
        for (i, &addr) in addrs.iter().enumerate() {
            match one_stream(&mut senders[i], addr, &stream_body).await {
                Some((f, l)) => {
                    streams[i].0.push(f);
                    streams[i].1.push(l);
                }
                None => {
                    streams[i].2 += 1;
                    if let Ok(s) = connect(addr).await {
                        senders[i] = s;
                    }
                }
            }
        }
    }

    println!();
    println!(
        "{:<9} {:>9} {:>10} {:>9} {:>9} {:>7}",
        "target", "requests", "req/s", "p50 ms", "p99 ms", "errors"
    );
    let mut p = [(0.0, 0.0, 0.0); 3];
    for (i, l) in loads.iter_mut().enumerate() {
        let mut v: Vec<f64> = l.micros.iter().map(|&u| u as f64 / 1e3).collect();
        v.sort_by(f64::total_cmp);
        p[i] = (l.rps(), percentile(&v, 0.50), percentile(&v, 0.99));
        println!(
            "{:<9} {:>9} {:>10.0} {:>9.3} {:>9.3} {:>7}",
            names[i], l.ok, p[i].0, p[i].1, p[i].2, l.errors
        );
    }
    println!();
    println!(
        "open loop at {rate:.0} req/s offered (half the slowest target's req/s), {} s per target:",
        o.duration
    );
    println!(
        "{:<9} {:>9} {:>9} {:>9} {:>7}",
        "target", "requests", "p50 ms", "p99 ms", "errors"
    );
    let mut q = [(0.0, 0.0); 3];
    for (i, l) in open.iter_mut().enumerate() {
        let mut v: Vec<f64> = l.micros.iter().map(|&u| u as f64 / 1e3).collect();
        v.sort_by(f64::total_cmp);
        q[i] = (percentile(&v, 0.50), percentile(&v, 0.99));
        println!(
            "{:<9} {:>9} {:>9.3} {:>9.3} {:>7}",
            names[i], l.ok, q[i].0, q[i].1, l.errors
        );
    }
    println!();
    println!(
        "50-event stream, {} requests per target, one at a time: time to first / last body byte",
        o.streams
    );
    println!(
        "{:<9} {:>11} {:>11} {:>11} {:>11} {:>7}",
        "target", "first p50", "last p50", "first p99", "last p99", "errors"
    );
    let mut s = [(0.0, 0.0); 3];
    for (i, (f, l, errors)) in streams.iter_mut().enumerate() {
        f.sort_by(f64::total_cmp);
        l.sort_by(f64::total_cmp);
        s[i] = (percentile(f, 0.5), percentile(l, 0.5));
        println!(
            "{:<9} {:>8.3} ms {:>8.3} ms {:>8.3} ms {:>8.3} ms {:>7}",
            names[i],
            s[i].0,
            s[i].1,
            percentile(f, 0.99),
            percentile(l, 0.99),
            errors
        );
    }
    let (rps, p99) = (p[2].0 / p[1].0, p[2].2 / p[1].2);
    let first = s[2].0 - s[1].0;
    let last = s[2].1 - s[1].1;
    println!();
    println!("veilgate against bare (same run):");
    println!(
        "  req/s       {rps:>7.3} x bare    target >= 0.85 x    {}",
        tick(rps >= 0.85)
    );
    println!(
        "  p99         {p99:>7.3} x bare    target <= 1.20 x    {}",
        tick(p99 <= 1.20)
    );
    println!(
        "  first byte  {first:>+7.3} ms        target <= +1 ms     {}",
        tick(first <= 1.0)
    );
    println!("  last byte   {last:>+7.3} ms        (no target)");
    println!(
        "  open loop   p50 {:+.3} ms, p99 {:.3} x bare ({:+.3} ms)   (no target)",
        q[2].0 - q[1].0,
        q[2].1 / q[1].1,
        q[2].1 - q[1].1
    );
    println!(
        "  (bare against direct: req/s {:.3} x, p99 {:.3} x, first byte {:+.3} ms)",
        p[1].0 / p[0].0,
        p[1].2 / p[0].2,
        s[1].0 - s[0].0
    );
    let errors: u64 = loads.iter().chain(&open).map(|l| l.errors).sum::<u64>()
        + streams.iter().map(|x| x.2).sum::<u64>();
    if errors > 0 {
        eprintln!("proxy bench: {errors} failed request(s): see the errors columns");
    }
    true
}
