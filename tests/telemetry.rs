//! Telemetry out of the real `veilgate` binary: with `OTEL_EXPORTER_OTLP_ENDPOINT` at an
//! in-process OTLP/HTTP receiver, an end-to-end run seeded with PII, a secret and raw API
//! keys exports spans, logs and metrics that all carry their retention class with the
//! configured days, and nothing it exports, prints or serves on `/metrics` holds a seeded
//! value or a raw key. Without a collector the same records are JSON lines on stdout.
//!
//! Waits are bounded polls with generous caps (the machine may be slow and shared);
//! nothing asserts on timing.
#![cfg(feature = "otel")]

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use common::otlp::{Kind, OtlpReceiver, Record};
use common::{MockUpstream, Reply, chat_delta};
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

const EMAIL: &str = "anna.kowalski@posteo.de";
const PHONE: &str = "+44 20 7946 0958";
const CARD: &str = "4111 1111 1111 1111";
const SECRET: &str = "sk-proj-Q7vT2mXk9LpR4sW8nB1cY6dF3hJ0gZ5aE_KqUoIiVtNwMxCyPzAeSrDfGbHlJmN-T3BlbkFJ8xQ2wE4rT6yU1iO3pA5sD7fG9hJ0kL2zX4cV6bN8mQ1wE3rT5yU7iO9pA2sD4fG6hJ8kL0zX2cV4bN6mQ8";
/// The gateway key a client presents (raw; the config holds only its SHA-256).
const GATEWAY_KEY: &str = "vg_live_T9xQ2mP7kW4nR8sL1vB6cZ3h";
/// A key the gateway refuses.
const WRONG_KEY: &str = "sk-proj-WRONGkeyHq82LmZt5Xw3Nv7Pc1";
/// The provider key veilgate injects towards the upstream.
const PROVIDER_KEY: &str = "sk-proj-PROVIDERkey0Jd93KsQz7Tm2Wq5";
const PROVIDER_KEY_ENV: &str = "VEILGATE_TELEMETRY_TEST_PROVIDER_KEY";

/// Days per class in the test's `[retention]` (none of them a default).
const DAYS: [(&str, u64); 4] = [
    ("usage", 400),
    ("security", 200),
    ("billing", 3000),
    ("training", 100),
];

/// Every value that must never leave the process, with distinctive parts of them.
fn seeded() -> Vec<&'static str> {
    vec![
        EMAIL,
        "kowalski",
        PHONE,
        "7946 0958",
        CARD,
        "4111111111111111",
        SECRET,
        &SECRET[8..40],
        GATEWAY_KEY,
        &GATEWAY_KEY[8..],
        WRONG_KEY,
        &WRONG_KEY[8..],
        PROVIDER_KEY,
        &PROVIDER_KEY[8..],
    ]
}

fn leaks(text: &[u8]) -> Vec<&'static str> {
    seeded()
        .into_iter()
        .filter(|s| contains_bytes(text, s.as_bytes()))
        .collect()
}

fn contains_bytes(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn chat_body() -> String {
    let content = format!(
        "I am Anna, mail {EMAIL}, call {PHONE}, card {CARD}, and my key is {SECRET}. Hello!"
    );
    serde_json::json!({
        "model": "gpt-4o",
        "stream": true,
        "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": content}],
    })
    .to_string()
}

/// An OpenAI-style stream that ends with a `usage` chunk.
fn sse_with_usage() -> Reply {
    let usage = serde_json::json!({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[],"usage":{"prompt_tokens":31,"completion_tokens":5,"total_tokens":36}});
    Reply::sse(vec![
        chat_delta("Hello "),
        chat_delta("there."),
        format!("data: {usage}\n\n"),
        "data: [DONE]\n\n".to_string(),
    ])
}

fn config(dir: &PathBuf, upstream: &str) -> PathBuf {
    let hash = veilgate::api_key::hash(GATEWAY_KEY);
    let body = format!(
        r#"
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
drain_secs = 5
watch = false

[[upstream]]
name = "openai"
base_url = "{upstream}"
response_timeout_ms = 20000
api_key_env = "{PROVIDER_KEY_ENV}"

[auth]
default_tenant = "acme"

[[auth.gateway_key]]
sha256_hex = "{hash}"
tenant = "acme"
name = "acme-test"

[retention]
usage = {usage}
security = {security}
billing = {billing}
training = {training}

[redact]
key_env = "VEILGATE_TELEMETRY_TEST_KEY_UNSET"
"#,
        usage = DAYS[0].1,
        security = DAYS[1].1,
        billing = DAYS[2].1,
        training = DAYS[3].1,
    );
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join("veilgate.toml");
    std::fs::write(&p, body).unwrap();
    p
}

fn temp_dir(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("veilgate-telemetry-{}-{name}", std::process::id()))
}

/// The sidecar as a child process, its stdout and stderr read line by line.
struct Sidecar {
    child: Child,
    addr: SocketAddr,
    admin: SocketAddr,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Sidecar {
    fn spawn(config: &PathBuf, env: &[(&str, String)]) -> Sidecar {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_veilgate"));
        cmd.args(["proxy", "--config"])
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env(PROVIDER_KEY_ENV, PROVIDER_KEY)
            .env_remove("VEILGATE_LOG");
        // Nothing of the environment the tests run in decides where telemetry goes.
        for (k, _) in std::env::vars() {
            if k.starts_with("OTEL_") {
                cmd.env_remove(k);
            }
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("run the veilgate binary");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        let lines = stdout.clone();
        let a = std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(l);
            }
        });
        let lines = stderr.clone();
        let b = std::thread::spawn(move || {
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                // "veilgate listening on 127.0.0.1:P (admin on 127.0.0.1:Q)"
                if let Some(rest) = l.strip_prefix("veilgate listening on ") {
                    let mut parts = rest.split(" (admin on ");
                    let addr = parts.next().unwrap().parse::<SocketAddr>();
                    let admin = parts.next().unwrap().trim_end_matches(')').parse();
                    if let (Ok(a), Ok(b)) = (addr, admin) {
                        let _ = tx.send((a, b));
                    }
                }
                lines.lock().unwrap().push(l);
            }
        });
        let Ok((addr, admin)) = rx.recv_timeout(Duration::from_secs(120)) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the sidecar did not start; stderr: {:?}",
                stderr.lock().unwrap()
            );
        };
        Sidecar {
            child,
            addr,
            admin,
            stdout,
            stderr,
            readers: vec![a, b],
        }
    }

    /// SIGTERM, then waits (bounded) for a clean exit and for the output to be read.
    async fn terminate(mut self) -> (Vec<String>, Vec<String>) {
        let pid = self.child.id().to_string();
        let killed = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(killed.success());
        let start = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if start.elapsed() > Duration::from_secs(120) {
                let _ = self.child.kill();
                panic!("the sidecar did not exit after SIGTERM");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        for r in self.readers.drain(..) {
            r.join().unwrap();
        }
        let stderr = self.stderr.lock().unwrap().clone();
        assert!(status.success(), "exit {status}; stderr: {stderr:?}");
        (self.stdout.lock().unwrap().clone(), stderr)
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

async fn send(req: Request<Full<Bytes>>) -> (u16, String) {
    let client = Client::builder(TokioExecutor::new()).build_http();
    let resp = tokio::time::timeout(Duration::from_secs(60), client.request(req))
        .await
        .expect("no hang")
        .expect("request");
    let status = resp.status().as_u16();
    let body = tokio::time::timeout(Duration::from_secs(60), resp.into_body().collect())
        .await
        .expect("no hang")
        .unwrap()
        .to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn chat_request(addr: SocketAddr, key: &str, body: String) -> Request<Full<Bytes>> {
    Request::post(format!("http://{addr}/v1/chat/completions"))
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {key}"))
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

/// The seeded exchanges: a streamed answer with usage, a refused key, a bad body; then
/// the `/metrics` text.
async fn exercise(sc: &Sidecar, mock: &MockUpstream) -> String {
    let (status, body) = send(chat_request(sc.addr, GATEWAY_KEY, chat_body())).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("there."), "{body}");
    let (status, body) = send(chat_request(sc.addr, WRONG_KEY, chat_body())).await;
    assert_eq!(status, 401, "{body}");
    let bad = format!("{{\"messages\": [{{\"content\": \"{EMAIL} {CARD}\"");
    let (status, body) = send(chat_request(sc.addr, GATEWAY_KEY, bad)).await;
    assert!((400..500).contains(&status), "{status} {body}");
    // The upstream saw the one good request, redacted, with the provider key.
    let seen = mock.requests();
    assert!(!seen.is_empty());
    for r in &seen {
        assert!(
            leaks(r.body_str().as_bytes()).is_empty(),
            "{}",
            r.body_str()
        );
    }
    let (status, metrics) = send(
        Request::get(format!("http://{}/metrics", sc.admin))
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    metrics
}

fn days_for(class: &str) -> u64 {
    DAYS.iter()
        .find(|(c, _)| *c == class)
        .unwrap_or_else(|| panic!("retention.class {class:?} is not a class veilgate writes"))
        .1
}

/// Days since the Unix epoch of `YYYY-MM-DD` (H. Hinnant's days_from_civil).
fn days_from_civil(date: &str) -> Option<i64> {
    let mut it = date.split('-');
    let y: i64 = it.next()?.parse().ok()?;
    let m: i64 = it.next()?.parse().ok()?;
    let d: i64 = it.next()?.parse().ok()?;
    if it.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// Checks a record's retention: a known class with its configured days, and an expiry
/// (`YYYY-MM-DDTHH:MM:SSZ`, or the day alone for metrics) about that many days ahead.
fn check_retention(what: &str, get: impl Fn(&str) -> Option<String>, day_only: bool) {
    let class = get("retention.class").unwrap_or_else(|| panic!("{what}: no retention.class"));
    assert_ne!(class, "content", "{what}: content is never written");
    let days: u64 = get("retention.days")
        .and_then(|d| d.parse().ok())
        .unwrap_or_else(|| panic!("{what}: no numeric retention.days"));
    assert_eq!(days, days_for(&class), "{what}: days of class {class}");
    let expires = get("retention.expires_at").unwrap_or_else(|| panic!("{what}: no expiry"));
    let date = if day_only {
        assert_eq!(
            expires.len(),
            10,
            "{what}: metric expiry is a day: {expires}"
        );
        expires.as_str()
    } else {
        let b = expires.as_bytes();
        assert!(
            expires.len() == 20 && b[10] == b'T' && b[19] == b'Z',
            "{what}: expiry {expires:?} is not RFC 3339 UTC"
        );
        let hms: Vec<u32> = expires[11..19]
            .split(':')
            .filter_map(|p| p.parse().ok())
            .collect();
        assert!(
            hms.len() == 3 && hms[0] < 24 && hms[1] < 60 && hms[2] < 61,
            "{what}: {expires}"
        );
        &expires[..10]
    };
    let day = days_from_civil(date).unwrap_or_else(|| panic!("{what}: bad date {expires}"));
    let today = (SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 86_400) as i64;
    let ahead = day - today;
    assert!(
        (days as i64 - 1..=days as i64).contains(&ahead),
        "{what}: expires {expires}, {ahead} days ahead, class {class} keeps {days}"
    );
}

fn check_record(r: &Record) {
    let what = format!("{:?} {} {:?}", r.kind, r.name, r.attributes);
    check_retention(
        &what,
        |k| r.attr(k).map(str::to_owned),
        r.kind == Kind::Metric,
    );
    assert_eq!(
        r.resource.get("service.name").map(String::as_str),
        Some("veilgate"),
        "{what}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_export_carries_retention_and_no_seeded_value() {
    let otlp = OtlpReceiver::start().await;
    let mock = MockUpstream::replying(sse_with_usage()).await;
    let dir = temp_dir("otlp");
    let cfg = config(&dir, &mock.url());
    let sc = Sidecar::spawn(
        &cfg,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.endpoint()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100".into()),
            ("OTEL_BLRP_SCHEDULE_DELAY", "100".into()),
            ("OTEL_METRIC_EXPORT_INTERVAL", "300".into()),
        ],
    );
    let metrics_text = exercise(&sc, &mock).await;

    // Exports flow while the sidecar runs (the schedule delays above are short)...
    let running = otlp
        .wait_for(Duration::from_secs(120), |r| {
            r.iter().any(|r| r.kind == Kind::Span)
                && r.iter().any(|r| r.kind == Kind::Log)
                && r.iter().any(|r| r.kind == Kind::Metric)
        })
        .await;
    assert!(
        running,
        "no spans, logs and metrics while running: {:?}",
        otlp.records()
    );
    // ...and SIGTERM flushes the rest before the process exits.
    let (stdout, stderr) = sc.terminate().await;
    assert!(otlp.errors().is_empty(), "{:?}", otlp.errors());

    let records = otlp.records();
    for r in &records {
        check_record(r);
    }
    assert!(
        !records.iter().any(|r| r.kind == Kind::SpanEvent),
        "events go out as log records, not as span events too"
    );
    let spans: Vec<&Record> = records.iter().filter(|r| r.kind == Kind::Span).collect();
    let logs: Vec<&Record> = records.iter().filter(|r| r.kind == Kind::Log).collect();
    let points: Vec<&Record> = records.iter().filter(|r| r.kind == Kind::Metric).collect();

    // One request span per exchange, with the tenant and a key id (never the key).
    let requests: Vec<&&Record> = spans
        .iter()
        .filter(|s| s.name == "veilgate.request")
        .collect();
    assert!(requests.len() >= 3, "{spans:?}");
    for s in &requests {
        assert_eq!(s.attr("retention.class"), Some("usage"), "{s:?}");
    }
    let ok = requests
        .iter()
        .find(|s| s.attr("http.response.status_code") == Some("200"))
        .unwrap_or_else(|| panic!("no 200 span: {requests:?}"));
    assert_eq!(ok.attr("tenant.id"), Some("acme"));
    assert!(
        ok.attr("api_key.id").is_some_and(|k| k.starts_with("kid_")),
        "{ok:?}"
    );
    assert!(
        requests
            .iter()
            .any(|s| s.attr("http.response.status_code") == Some("401"))
    );

    // Access, security and billing records, each under its own class.
    let class_of = |target: &str| {
        logs.iter()
            .filter(|l| l.scope == target)
            .map(|l| l.attr("retention.class").unwrap_or_default().to_string())
            .collect::<Vec<_>>()
    };
    let access = class_of("veilgate::access");
    assert!(access.len() >= 3, "{logs:?}");
    assert!(access.iter().all(|c| c == "usage"));
    let security = class_of("veilgate::security");
    assert!(!security.is_empty(), "{logs:?}");
    assert!(security.iter().all(|c| c == "security"));
    let billing = class_of("veilgate::billing");
    assert!(!billing.is_empty(), "{logs:?}");
    assert!(billing.iter().all(|c| c == "billing"));
    assert!(
        logs.iter().all(|l| l.scope.starts_with("veilgate")),
        "only veilgate targets are exported: {logs:?}"
    );

    // Metrics from the metric events, with their classes; none printed or logged.
    let names: BTreeMap<&str, &str> = points
        .iter()
        .map(|p| (p.name.as_str(), p.attr("retention.class").unwrap()))
        .collect();
    assert_eq!(names.get("veilgate.requests"), Some(&"usage"), "{names:?}");
    assert_eq!(names.get("veilgate.request.duration"), Some(&"usage"));
    assert_eq!(names.get("veilgate.detections"), Some(&"security"));
    assert_eq!(names.get("veilgate.tokens"), Some(&"billing"));
    assert!(
        !logs.iter().any(|l| l
            .attributes
            .keys()
            .any(|k| k.starts_with("monotonic_counter"))),
        "metric events are not log records"
    );

    // Nothing seeded anywhere: OTLP payloads, stdout, stderr, /metrics.
    let payloads = otlp.payloads();
    assert!(payloads.iter().any(|p| p.path == "/v1/traces"));
    assert!(payloads.iter().any(|p| p.path == "/v1/logs"));
    assert!(payloads.iter().any(|p| p.path == "/v1/metrics"));
    for p in &payloads {
        let l = leaks(&p.body);
        assert!(l.is_empty(), "{} payload holds {l:?}", p.path);
    }
    let served = metrics_text.lines().map(str::to_owned);
    for line in stdout.iter().cloned().chain(stderr).chain(served) {
        let l = leaks(line.as_bytes());
        assert!(l.is_empty(), "{line:?} holds {l:?}");
    }
    // With a collector, stdout carries no log lines.
    assert!(
        stdout.iter().all(|l| !l.starts_with('{')),
        "logs went to the collector, not stdout: {stdout:?}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_collector_records_are_json_lines_on_stdout() {
    let mock = MockUpstream::replying(sse_with_usage()).await;
    let dir = temp_dir("stdout");
    let cfg = config(&dir, &mock.url());
    let sc = Sidecar::spawn(&cfg, &[]);
    let metrics_text = exercise(&sc, &mock).await;
    let (stdout, stderr) = sc.terminate().await;

    assert!(!stdout.is_empty());
    let mut targets = BTreeMap::<String, usize>::new();
    for line in &stdout {
        let l = leaks(line.as_bytes());
        assert!(l.is_empty(), "{line:?} holds {l:?}");
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}"));
        let obj = v.as_object().expect("one object per line");
        let target = obj["target"].as_str().unwrap();
        assert!(target.starts_with("veilgate"), "{line}");
        assert_ne!(target, "veilgate::metrics", "metric events are not printed");
        let text = |k: &str| {
            obj.get(k).map(|v| match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        };
        check_retention(line, text, false);
        *targets.entry(target.to_string()).or_default() += 1;
    }
    assert!(
        targets.get("veilgate::access").is_some_and(|n| *n >= 3),
        "{targets:?}"
    );
    assert!(targets.contains_key("veilgate::security"), "{targets:?}");
    assert!(targets.contains_key("veilgate::billing"), "{targets:?}");
    for line in stderr
        .into_iter()
        .chain(metrics_text.lines().map(str::to_owned))
    {
        let l = leaks(line.as_bytes());
        assert!(l.is_empty(), "{line:?} holds {l:?}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Stdout lines that are JSON records (all of them must be).
fn json_records(stdout: &[String]) -> Vec<serde_json::Value> {
    stdout
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_per_signal_endpoint_exports_that_signal_and_logs_stay_on_stdout() {
    let otlp = OtlpReceiver::start().await;
    let mock = MockUpstream::replying(sse_with_usage()).await;
    let dir = temp_dir("traces-only");
    let cfg = config(&dir, &mock.url());
    let sc = Sidecar::spawn(
        &cfg,
        &[
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                format!("{}/v1/traces", otlp.endpoint()),
            ),
            ("OTEL_SERVICE_NAME", "veilgate-edge".into()),
            ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "gzip".into()),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "deployment.environment=test".into(),
            ),
        ],
    );
    exercise(&sc, &mock).await;
    let (stdout, _) = sc.terminate().await;
    let records = otlp.records();
    assert!(records.iter().any(|r| r.kind == Kind::Span), "{records:?}");
    assert!(records.iter().all(|r| r.kind == Kind::Span), "{records:?}");
    assert!(
        otlp.payloads().iter().all(|p| p.gzip),
        "compression honoured"
    );
    for p in otlp.payloads() {
        assert!(leaks(&p.body).is_empty());
    }
    for r in &records {
        let what = format!("{r:?}");
        check_retention(&what, |k| r.attr(k).map(str::to_owned), false);
        assert_eq!(r.resource["service.name"], "veilgate-edge");
        assert_eq!(r.resource["deployment.environment"], "test");
    }
    let lines = json_records(&stdout);
    assert!(lines.iter().any(|v| v["target"] == "veilgate::access"));
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otel_sdk_disabled_exports_nothing() {
    let otlp = OtlpReceiver::start().await;
    let mock = MockUpstream::replying(sse_with_usage()).await;
    let dir = temp_dir("disabled");
    let cfg = config(&dir, &mock.url());
    let sc = Sidecar::spawn(
        &cfg,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.endpoint()),
            ("OTEL_SDK_DISABLED", "true".into()),
        ],
    );
    exercise(&sc, &mock).await;
    let (stdout, _) = sc.terminate().await;
    assert!(otlp.payloads().is_empty(), "{:?}", otlp.records());
    let lines = json_records(&stdout);
    assert!(lines.iter().any(|v| v["target"] == "veilgate::access"));
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_alone_still_come_out() {
    // Only a metrics endpoint, logs turned off: no span or log layer wants the exchange's
    // records, the metric events must still be emitted and exported.
    let otlp = OtlpReceiver::start().await;
    let mock = MockUpstream::replying(sse_with_usage()).await;
    let dir = temp_dir("metrics-only");
    let cfg = config(&dir, &mock.url());
    let sc = Sidecar::spawn(
        &cfg,
        &[
            (
                "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
                format!("{}/v1/metrics", otlp.endpoint()),
            ),
            ("OTEL_LOGS_EXPORTER", "none".into()),
        ],
    );
    exercise(&sc, &mock).await;
    let (stdout, _) = sc.terminate().await;
    assert!(stdout.is_empty(), "logs are off: {stdout:?}");
    let records = otlp.records();
    assert!(
        records.iter().all(|r| r.kind == Kind::Metric),
        "{records:?}"
    );
    for name in [
        "veilgate.requests",
        "veilgate.detections",
        "veilgate.tokens",
    ] {
        assert!(
            records.iter().any(|r| r.name == name),
            "no {name}: {records:?}"
        );
    }
    for r in &records {
        check_record(r);
    }
    let _ = std::fs::remove_dir_all(dir);
}
