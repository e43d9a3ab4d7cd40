//! End to end over loopback: the `axum_gateway` and `tower_stack` examples run as child
//! processes in front of a mock upstream (tests/common), and real HTTP goes through them.
//!
//! The examples are located next to this test (`target/<profile>/examples/<name>`) and
//! brought up to date by a nested `cargo build --example` once per run, since
//! `cargo test --test examples_e2e` alone does not build them.
//!
//! Every await has a timeout, so a hang fails fast. The only ordering assertion (streaming)
//! compares events, not durations: the mock holds its last event behind a gate until the
//! client has seen the first one.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use common::{Gate, MockUpstream, Recorded, Reply, chat_delta, chat_finish, named_event, pieces};
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::time::timeout;

const EXAMPLES: [&str; 2] = ["axum_gateway", "tower_stack"];
/// Upper bound for one step (a request, a frame): generous for a loaded 2-core machine.
const STEP: Duration = Duration::from_secs(30);

const EMAIL: &str = "anna.kowalski@posteo.de";
const NAME: &str = "Anna Kowalski";
const PHONE: &str = "+49 30 901820";
const CARD: &str = "4111 1111 1111 1111";
const IBAN: &str = "DE89 3704 0044 0532 0130 00";
const API_KEY: &str = "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";
/// What the model "produces" itself: redacted in answers.
const MODEL_EMAIL: &str = "bob.smith@example-corp.net";

/// Fragments of the seeded values that must never reach the upstream.
const NEVER_UPSTREAM: &[&str] = &[
    "anna.kowalski",
    "posteo",
    "Kowalski",
    "901820",
    CARD,
    "4111111111111111",
    IBAN,
    "DE89370400440532013000",
    "0532 0130",
    "KGpOyQNcdOyZbkBF",
    "svi34zWH",
];

// ---------------------------------------------------------------------------------------
// Child processes

/// A running example; killed (and reaped) on drop, also when the test panics.
struct Gateway {
    child: Child,
    addr: SocketAddr,
    name: &'static str,
    /// Kept open so the example's stdout never hits a closed pipe.
    _stdout: Option<BufReader<std::process::ChildStdout>>,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Gateway {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

/// `target/<profile>/examples/<name>`, next to this test's `target/<profile>/deps/`.
fn example_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps/<test>");
    profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

/// Builds (or confirms up to date) the example, once per test process: `cargo test
/// --test examples_e2e` does not build examples, and a stale binary would test old code.
/// A nested cargo in the same target directory is a no-op when the example is fresh.
fn ensure_built(name: &str) -> PathBuf {
    static BUILT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let path = example_path(name);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if built.iter().any(|b| b == name) {
        return path;
    }
    let profile_dir = path
        .parent()
        .and_then(|p| p.parent())
        .expect("target/<profile>");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "--quiet",
        "--example",
        name,
        "--features",
        "redact",
    ])
    .current_dir(env!("CARGO_MANIFEST_DIR"));
    if let Some(target_dir) = profile_dir.parent() {
        cmd.arg("--target-dir").arg(target_dir);
    }
    match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => {}
        Some("release") => {
            cmd.arg("--release");
        }
        Some(custom) => {
            cmd.args(["--profile", custom]);
        }
    }
    let out = cmd.output().expect("run cargo to build the example");
    assert!(
        out.status.success() && path.exists(),
        "could not build example {name} (try `cargo build --examples`):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    built.push(name.to_string());
    path
}

async fn spawn_gateway(name: &'static str, upstream: &str) -> Gateway {
    let path = tokio::task::spawn_blocking(move || ensure_built(name))
        .await
        .unwrap();
    let mut child = Command::new(&path)
        .env("LISTEN", "127.0.0.1:0")
        .env("UPSTREAM", upstream)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", path.display()));
    let stdout = child.stdout.take().unwrap();
    // The guard exists before the first await that could fail.
    let mut gw = Gateway {
        child,
        addr: "0.0.0.0:0".parse().unwrap(),
        name,
        _stdout: None,
    };
    let read = tokio::task::spawn_blocking(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let n = reader.read_line(&mut line);
        (n, line, reader)
    });
    let (n, line, reader) = timeout(Duration::from_secs(120), read)
        .await
        .unwrap_or_else(|_| panic!("{name} printed no address within 120 s"))
        .unwrap();
    assert!(
        matches!(n, Ok(k) if k > 0),
        "{name} exited before listening: {:?}",
        gw.child.try_wait()
    );
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{name}: unexpected first line {line:?}"));
    gw.addr = addr
        .parse()
        .unwrap_or_else(|e| panic!("{name}: bad address {addr:?}: {e}"));
    assert_ne!(gw.addr.port(), 0, "{name} must print the bound port");
    gw._stdout = Some(reader);
    gw
}

// ---------------------------------------------------------------------------------------
// Client

fn client(h2: bool) -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new())
        .http2_only(h2)
        .build_http()
}

async fn send(
    client: &Client<HttpConnector, Full<Bytes>>,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (StatusCode, HeaderMap, Incoming) {
    let mut req = Request::post(url).header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(Bytes::from(body.to_string()))).unwrap();
    let resp = timeout(STEP, client.request(req))
        .await
        .unwrap_or_else(|_| panic!("no answer from {url} within {STEP:?} (a gateway that buffers a streamed answer also fails here)"))
        .unwrap_or_else(|e| panic!("request to {url} failed: {e}"));
    let (parts, body) = resp.into_parts();
    (parts.status, parts.headers, body)
}

async fn read_all(body: Incoming) -> String {
    let bytes = timeout(STEP, body.collect())
        .await
        .expect("the answer body did not end in time")
        .expect("the answer body failed")
        .to_bytes();
    String::from_utf8(bytes.to_vec()).expect("the answer is UTF-8")
}

/// `(event name, data)` of each event of an SSE body.
fn sse_events(body: &str) -> Vec<(Option<String>, String)> {
    let body = body.replace("\r\n", "\n");
    let mut out = Vec::new();
    for block in body.split("\n\n") {
        let mut name = None;
        let mut data: Vec<&str> = Vec::new();
        for line in block.lines() {
            if let Some(v) = line.strip_prefix("event:") {
                name = Some(v.trim_start().to_string());
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push(v.strip_prefix(' ').unwrap_or(v));
            }
        }
        if !data.is_empty() {
            out.push((name, data.join("\n")));
        }
    }
    out
}

fn sse_json(body: &str) -> Vec<Value> {
    sse_events(body)
        .into_iter()
        .filter(|(_, d)| d != "[DONE]")
        .map(|(_, d)| {
            serde_json::from_str(&d).unwrap_or_else(|e| panic!("event is not JSON ({e}): {d}"))
        })
        .collect()
}

fn assert_clean_upstream(gw: &Gateway, reqs: &[Recorded]) {
    assert!(
        !reqs.is_empty(),
        "{}: nothing reached the upstream",
        gw.name
    );
    for r in reqs {
        let body = r.body_str();
        for bad in NEVER_UPSTREAM {
            assert!(
                !body.contains(bad),
                "{}: {bad:?} reached the upstream: {body}",
                gw.name
            );
        }
    }
}

fn assert_no_tokens(name: &str, text: &str) {
    for t in ["<EMAIL_", "<PERSON_", "<PHONE_"] {
        assert!(
            !text.contains(t),
            "{name}: a pseudonym reached the client: {text}"
        );
    }
    for leaked in ["bob.smith", "example-corp"] {
        assert!(
            !text.contains(leaked),
            "{name}: model-produced PII reached the client: {text}"
        );
    }
}

fn seeded_prompt() -> String {
    format!(
        "I am {NAME}, mail {EMAIL}, phone {PHONE}, card {CARD}, IBAN {IBAN}, my key is {API_KEY} pls help"
    )
}

// ---------------------------------------------------------------------------------------
// Scenarios (each runs against both examples)

async fn json_answer(name: &'static str, h2: bool) {
    // The upstream echoes the user's message back as the assistant's answer.
    let mock = MockUpstream::start(|req| {
        let v = req.json();
        let content = v["messages"][0]["content"].as_str().unwrap_or_default().to_string();
        let answer = json!({"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o",
            "choices":[{"index":0,"message":{"role":"assistant","content":format!("You said: {content}")},"finish_reason":"stop"}],
            "usage":{"prompt_tokens":10,"completion_tokens":10,"total_tokens":20}});
        Reply::json(200, answer.to_string())
    })
    .await;
    let gw = spawn_gateway(name, &mock.url()).await;
    let body = json!({"model":"gpt-4o","messages":[{"role":"user","content":seeded_prompt()}]})
        .to_string();
    let (status, headers, resp) =
        send(&client(h2), &gw.url("/v1/chat/completions"), &[], &body).await;
    let text = read_all(resp).await;
    assert_eq!(status, 200, "{name}: {text}");
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );

    let reqs = mock.requests();
    assert_clean_upstream(&gw, &reqs);
    let up = &reqs[0];
    assert_eq!(
        (up.method.as_str(), up.path.as_str()),
        ("POST", "/v1/chat/completions"),
        "{name}"
    );
    assert_eq!(
        up.headers
            .get("accept-encoding")
            .map(|v| v.to_str().unwrap()),
        Some("identity"),
        "{name}"
    );
    let sent = up.body_str();
    assert!(
        sent.contains("<EMAIL_") && sent.contains("\"model\":\"gpt-4o\""),
        "{name}: {sent}"
    );
    if let Some(len) = up.headers.get("content-length") {
        assert_eq!(
            len.to_str().unwrap(),
            up.body.len().to_string(),
            "{name}: Content-Length matches the redacted body"
        );
    }

    let v: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{name}: answer is not JSON ({e}): {text}"));
    let answer = v["choices"][0]["message"]["content"].as_str().unwrap();
    for restored in [EMAIL, NAME, PHONE] {
        assert!(
            answer.contains(restored),
            "{name}: {restored:?} not restored in {answer}"
        );
    }
    assert!(
        !answer.contains(API_KEY) && !answer.contains(CARD),
        "{name}: secrets are redacted, not restored: {answer}"
    );
    assert_no_tokens(name, answer);
    assert_eq!(v["usage"]["total_tokens"], 20, "{name}: structure kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_answer_is_restored_and_upstream_sees_no_pii() {
    for name in EXAMPLES {
        json_answer(name, false).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_answer_over_http2() {
    for name in EXAMPLES {
        json_answer(name, true).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_host_tenant_gets_its_policy() {
    let mock = MockUpstream::start(|_| {
        Reply::json(
            200,
            json!({"id":"c","object":"chat.completion","choices":[]}).to_string(),
        )
    })
    .await;
    let gw = spawn_gateway("axum_gateway", &mock.url()).await;
    let body = json!({"model":"gpt-4o","messages":[{"role":"user","content":seeded_prompt()}]})
        .to_string();
    let url = gw.url("/v1/chat/completions");
    for tenant in [Some("acme"), None] {
        let headers: Vec<(&str, &str)> = tenant.map(|t| ("x-demo-tenant", t)).into_iter().collect();
        let (status, _, resp) = send(&client(false), &url, &headers, &body).await;
        assert_eq!(status, 200, "{}", read_all(resp).await);
    }
    let reqs = mock.requests();
    assert_clean_upstream(&gw, &reqs);
    let (acme, default) = (reqs[0].body_str(), reqs[1].body_str());
    assert!(
        acme.contains("[EMAIL:") && !acme.contains("<EMAIL_"),
        "the host-named tenant's action (hash): {acme}"
    );
    assert!(default.contains("<EMAIL_"), "the default action: {default}");
    assert!(reqs[0].headers.get("x-demo-tenant").is_none());
}

async fn chat_stream(name: &'static str) {
    let gate = Gate::new(Duration::from_secs(60));
    let g = gate.clone();
    let mock = MockUpstream::start(move |req| {
        let token = req.token("EMAIL").expect("the upstream sees a pseudonym");
        let (a, b) = token.split_at(token.len() / 2);
        let mut events = vec![
            ": keep-alive\n\n".to_string(),
            chat_delta("Sure! I wrote to "),
            // The pseudonym is cut across events, and so is the model's own e-mail.
            chat_delta(a),
            chat_delta(&format!("{b} and to bob.smith@exa")),
            chat_delta("mple-corp.net; bye."),
        ];
        events.extend(chat_finish("stop"));
        Reply::sse(events).gate_last(&g)
    })
    .await;
    let gw = spawn_gateway(name, &mock.url()).await;
    let body = json!({"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":seeded_prompt()}]}).to_string();
    let (status, headers, mut resp) =
        send(&client(false), &gw.url("/v1/chat/completions"), &[], &body).await;
    assert_eq!(status, 200, "{name}");
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"),
        "{name}"
    );

    // The first event must reach the client while the upstream still holds its last one.
    let mut got = String::new();
    while !got.contains("data:") {
        let frame = timeout(STEP, resp.frame())
            .await
            .unwrap_or_else(|_| panic!("{name}: no SSE event reached the client while the upstream held its last event: the answer is buffered"))
            .unwrap_or_else(|| panic!("{name}: the stream ended early: {got}"))
            .unwrap();
        if let Ok(data) = frame.into_data() {
            got.push_str(std::str::from_utf8(&data).unwrap());
        }
    }
    let total = 7;
    let sent = mock.frames_sent();
    assert!(
        sent < total,
        "{name}: client's first event came only after the upstream sent all {total} frames ({sent})"
    );
    gate.open();

    let rest = read_all(resp).await;
    let wire = format!("{got}{rest}");
    let text: String = sse_json(&wire)
        .iter()
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    assert_eq!(
        text,
        format!("Sure! I wrote to {EMAIL} and to [EMAIL]; bye."),
        "{name}: {wire}"
    );
    assert_no_tokens(name, &wire);
    assert!(
        wire.starts_with(": keep-alive\n\n"),
        "{name}: comments pass byte-identical: {wire}"
    );
    assert!(wire.ends_with("data: [DONE]\n\n"), "{name}: {wire}");
    assert_clean_upstream(&gw, &mock.requests());
    assert_eq!(mock.frames_sent(), total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_answer_streams_and_restores_cut_tokens() {
    for name in EXAMPLES {
        chat_stream(name).await;
    }
}

async fn anthropic_stream(name: &'static str) {
    let mock = MockUpstream::start(|req| {
        let token = req.token("EMAIL").expect("the upstream sees a pseudonym");
        let delta = |i: usize, d: Value| named_event("content_block_delta", &json!({"type":"content_block_delta","index":i,"delta":d}));
        let mut ev = vec![
            named_event("message_start", &json!({"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"output_tokens":1}}})),
            named_event("content_block_start", &json!({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})),
            named_event("ping", &json!({"type":"ping"})),
        ];
        let text = format!("I will email {token} now; cc {MODEL_EMAIL}.");
        for p in pieces(&text, 9) {
            ev.push(delta(0, json!({"type":"text_delta","text":p})));
        }
        ev.push(named_event("content_block_stop", &json!({"type":"content_block_stop","index":0})));
        ev.push(named_event("content_block_start", &json!({"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_1","name":"send_email","input":{}}})));
        let args = format!(r#"{{"to": "{token}", "subject": "Summary"}}"#);
        for p in pieces(&args, 7) {
            ev.push(delta(1, json!({"type":"input_json_delta","partial_json":p})));
        }
        ev.push(named_event("content_block_stop", &json!({"type":"content_block_stop","index":1})));
        ev.push(named_event("message_delta", &json!({"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":42}})));
        ev.push(named_event("message_stop", &json!({"type":"message_stop"})));
        Reply::sse(ev)
    })
    .await;
    let gw = spawn_gateway(name, &mock.url()).await;
    let body = json!({"model":"claude-sonnet-4-5","max_tokens":256,"stream":true,
        "system":"You are a mail assistant.",
        "messages":[{"role":"user","content":[{"type":"text","text":seeded_prompt()}]}]})
    .to_string();
    let (status, _, resp) = send(
        &client(false),
        &gw.url("/v1/messages"),
        &[("anthropic-version", "2023-06-01")],
        &body,
    )
    .await;
    let wire = read_all(resp).await;
    assert_eq!(status, 200, "{name}: {wire}");
    let reqs = mock.requests();
    assert_clean_upstream(&gw, &reqs);
    assert_eq!(reqs[0].path, "/v1/messages");
    assert_eq!(reqs[0].headers["anthropic-version"], "2023-06-01");

    let events = sse_json(&wire);
    let mut text = String::new();
    let mut args = String::new();
    for v in &events {
        if v["type"] != "content_block_delta" {
            continue;
        }
        match (v["index"].as_u64(), v["delta"]["type"].as_str()) {
            (Some(0), Some("text_delta")) => text.push_str(v["delta"]["text"].as_str().unwrap()),
            (Some(1), Some("input_json_delta")) => {
                args.push_str(v["delta"]["partial_json"].as_str().unwrap())
            }
            other => panic!("{name}: unexpected delta {other:?}: {v}"),
        }
    }
    assert_eq!(
        text,
        format!("I will email {EMAIL} now; cc [EMAIL]."),
        "{name}: {wire}"
    );
    let input: Value = serde_json::from_str(&args)
        .unwrap_or_else(|e| panic!("{name}: tool input is not JSON ({e}): {args}"));
    assert_eq!(input, json!({"to": EMAIL, "subject": "Summary"}), "{name}");
    assert_no_tokens(name, &wire);
    assert!(
        wire.contains("event: ping\ndata: {\"type\":\"ping\"}\n\n"),
        "{name}: other events pass byte-identical"
    );
    assert_eq!(events.last().unwrap()["type"], "message_stop", "{name}");
    // Every delta precedes its block's stop.
    let stop0 = events
        .iter()
        .position(|v| v["type"] == "content_block_stop" && v["index"] == 0)
        .unwrap();
    assert!(
        events[stop0..]
            .iter()
            .all(|v| !(v["type"] == "content_block_delta" && v["index"] == 0)),
        "{name}: {wire}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_messages_stream_text_and_tool_input() {
    for name in EXAMPLES {
        anthropic_stream(name).await;
    }
}

async fn openai_tool_call_stream(name: &'static str) {
    let mock = MockUpstream::start(|req| {
        let token = req.token("EMAIL").expect("the upstream sees a pseudonym");
        let chunk = |delta: Value, finish: Value| {
            let v = json!({"id":"chatcmpl-2","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":delta,"finish_reason":finish}]});
            format!("data: {v}\n\n")
        };
        let mut ev = vec![chunk(
            json!({"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_abc","type":"function","function":{"name":"send_email","arguments":""}}]}),
            Value::Null,
        )];
        let args = format!(r#"{{"to":"{token}","cc":"{MODEL_EMAIL}","body":"hello"}}"#);
        for p in pieces(&args, 8) {
            ev.push(chunk(json!({"tool_calls":[{"index":0,"function":{"arguments":p}}]}), Value::Null));
        }
        ev.push(chunk(json!({}), json!("tool_calls")));
        ev.push("data: [DONE]\n\n".into());
        Reply::sse(ev)
    })
    .await;
    let gw = spawn_gateway(name, &mock.url()).await;
    let body = json!({"model":"gpt-4o","stream":true,
        "messages":[{"role":"user","content":seeded_prompt()}],
        "tools":[{"type":"function","function":{"name":"send_email","description":"Send an e-mail","parameters":{"type":"object","properties":{"to":{"type":"string"},"cc":{"type":"string"},"body":{"type":"string"}}}}}]})
    .to_string();
    let (status, _, resp) = send(&client(false), &gw.url("/v1/chat/completions"), &[], &body).await;
    let wire = read_all(resp).await;
    assert_eq!(status, 200, "{name}: {wire}");
    assert_clean_upstream(&gw, &mock.requests());
    let sent = mock.requests()[0].json();
    assert_eq!(
        sent["tools"][0]["function"]["name"], "send_email",
        "{name}: structure is not content"
    );

    let mut args = String::new();
    let (mut ids, mut names) = (0, 0);
    for v in sse_json(&wire) {
        for call in v["choices"][0]["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            assert_eq!(call["index"], 0);
            ids += usize::from(call.get("id").is_some());
            names += usize::from(call["function"].get("name").is_some());
            if let Some(a) = call["function"]["arguments"].as_str() {
                args.push_str(a);
            }
        }
    }
    assert_eq!(
        (ids, names),
        (1, 1),
        "{name}: the call's id and name appear once: {wire}"
    );
    let parsed: Value = serde_json::from_str(&args)
        .unwrap_or_else(|e| panic!("{name}: arguments are not JSON ({e}): {args}"));
    assert_eq!(
        parsed,
        json!({"to": EMAIL, "cc": "[EMAIL]", "body": "hello"}),
        "{name}: {wire}"
    );
    assert_no_tokens(name, &wire);
    assert!(wire.ends_with("data: [DONE]\n\n"), "{name}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_tool_call_argument_deltas() {
    for name in EXAMPLES {
        openai_tool_call_stream(name).await;
    }
}

async fn responses_stream(name: &'static str) {
    let mock = MockUpstream::start(|req| {
        let token = req.token("EMAIL").expect("the upstream sees a pseudonym");
        let full = format!("Done: wrote to {token}, and to {MODEL_EMAIL}.");
        let item = json!({"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"output_text","text":full,"annotations":[]}]});
        let mut ev = vec![
            named_event("response.created", &json!({"type":"response.created","sequence_number":0,"response":{"id":"resp_1","object":"response","status":"in_progress","output":[]}})),
            named_event("response.output_item.added", &json!({"type":"response.output_item.added","sequence_number":1,"output_index":0,"item":{"type":"message","id":"msg_1","status":"in_progress","role":"assistant","content":[]}})),
        ];
        for (i, p) in pieces(&full, 10).into_iter().enumerate() {
            ev.push(named_event("response.output_text.delta", &json!({"type":"response.output_text.delta","sequence_number":2 + i,"item_id":"msg_1","output_index":0,"content_index":0,"delta":p})));
        }
        ev.push(named_event("response.output_text.done", &json!({"type":"response.output_text.done","sequence_number":20,"item_id":"msg_1","output_index":0,"content_index":0,"text":full})));
        ev.push(named_event("response.output_item.done", &json!({"type":"response.output_item.done","sequence_number":21,"output_index":0,"item":item})));
        ev.push(named_event("response.completed", &json!({"type":"response.completed","sequence_number":22,"response":{"id":"resp_1","object":"response","status":"completed","output":[item],"usage":{"input_tokens":30,"output_tokens":12,"total_tokens":42}}})));
        Reply::sse(ev)
    })
    .await;
    let gw = spawn_gateway(name, &mock.url()).await;
    let body = json!({"model":"gpt-4o","stream":true,"input":seeded_prompt()}).to_string();
    let (status, _, resp) = send(&client(false), &gw.url("/v1/responses"), &[], &body).await;
    let wire = read_all(resp).await;
    assert_eq!(status, 200, "{name}: {wire}");
    assert_clean_upstream(&gw, &mock.requests());
    assert_eq!(mock.requests()[0].path, "/v1/responses");

    let expected = format!("Done: wrote to {EMAIL}, and to [EMAIL].");
    let events = sse_json(&wire);
    let deltas: String = events
        .iter()
        .filter(|v| v["type"] == "response.output_text.delta")
        .map(|v| v["delta"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(deltas, expected, "{name}: {wire}");
    let done = events
        .iter()
        .find(|v| v["type"] == "response.output_text.done")
        .unwrap();
    assert_eq!(
        done["text"],
        expected.as_str(),
        "{name}: the done event's full text"
    );
    let completed = events
        .iter()
        .find(|v| v["type"] == "response.completed")
        .unwrap();
    assert_eq!(
        completed["response"]["output"][0]["content"][0]["text"],
        expected.as_str(),
        "{name}"
    );
    assert_eq!(completed["response"]["usage"]["total_tokens"], 42, "{name}");
    assert_no_tokens(name, &wire);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_api_output_text_deltas() {
    for name in EXAMPLES {
        responses_stream(name).await;
    }
}

async fn invalid_json(name: &'static str) {
    let mock = MockUpstream::replying(Reply::json(200, "{}")).await;
    let gw = spawn_gateway(name, &mock.url()).await;
    let c = client(false);
    let broken = format!(r#"{{"model":"gpt-4o","messages":[{{"role":"user","content":"{EMAIL}"}}"#);

    let (status, headers, resp) = send(&c, &gw.url("/v1/chat/completions"), &[], &broken).await;
    let text = read_all(resp).await;
    assert_eq!(status, 400, "{name}: {text}");
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"),
        "{name}"
    );
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        v["error"]["type"], "invalid_request_error",
        "{name}: OpenAI shape: {text}"
    );
    assert_eq!(
        v["error"]["code"], "veilgate_invalid_json",
        "{name}: {text}"
    );
    assert!(
        v["error"]["message"].is_string() && v.get("type").is_none(),
        "{name}: {text}"
    );
    assert!(
        !text.contains("posteo"),
        "{name}: the error never quotes the body"
    );

    let (status, _, resp) = send(
        &c,
        &gw.url("/v1/messages"),
        &[("anthropic-version", "2023-06-01")],
        &broken,
    )
    .await;
    let text = read_all(resp).await;
    assert_eq!(status, 400, "{name}: {text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["type"], "error", "{name}: Anthropic shape: {text}");
    assert_eq!(
        v["error"]["type"], "invalid_request_error",
        "{name}: {text}"
    );
    assert!(v["error"]["message"].is_string(), "{name}: {text}");
    assert!(!text.contains("posteo"), "{name}");

    assert!(
        mock.requests().is_empty(),
        "{name}: refused requests must not reach the upstream: {:?}",
        mock.requests()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_json_is_refused_in_the_providers_shape() {
    for name in EXAMPLES {
        invalid_json(name).await;
    }
}

async fn cut_anywhere(name: &'static str, crlf: bool) {
    let mock = MockUpstream::start(move |req| {
        let token = req.token("EMAIL").expect("the upstream sees a pseudonym");
        let text = format!("Grüße 😀 — {token} wrote; IBAN {IBAN} and card 5555 5555 5555 4444 belong to {MODEL_EMAIL}, ok.");
        let mut wire = String::from(": ping\n\n");
        for p in pieces(&text, 12) {
            wire.push_str(&chat_delta(&p));
        }
        wire.extend(chat_finish("stop"));
        if crlf {
            wire = wire.replace('\n', "\r\n");
        }
        // TCP-like chunks: every 13 bytes, cutting lines, JSON strings and UTF-8 characters.
        let cuts: Vec<usize> = (1..wire.len() / 13).map(|i| i * 13).collect();
        Reply::sse_cut(&wire, &cuts)
    })
    .await;
    let gw = spawn_gateway(name, &mock.url()).await;
    let body = json!({"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":seeded_prompt()}]}).to_string();
    let (status, _, resp) = send(&client(false), &gw.url("/v1/chat/completions"), &[], &body).await;
    let wire = read_all(resp).await;
    assert_eq!(status, 200, "{name}: {wire}");
    let text: String = sse_json(&wire)
        .iter()
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    assert_eq!(
        text,
        format!(
            "Grüße 😀 — {EMAIL} wrote; IBAN [IBAN] and card [CREDIT_CARD] belong to [EMAIL], ok."
        ),
        "{name} (crlf: {crlf}): {wire}"
    );
    for leaked in ["5555 4444", "0130 00", "DE89 3704"] {
        assert!(!wire.contains(leaked), "{name}: {leaked} leaked: {wire}");
    }
    assert_no_tokens(name, &wire);
    assert_clean_upstream(&gw, &mock.requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_cut_at_any_byte_over_the_network() {
    for name in EXAMPLES {
        cut_anywhere(name, false).await;
        cut_anywhere(name, true).await;
    }
}

/// A request with any method; `content_type` None sends no Content-Type.
async fn send_raw(
    client: &Client<HttpConnector, Full<Bytes>>,
    method: &str,
    url: &str,
    content_type: Option<&str>,
    body: &str,
) -> (StatusCode, String) {
    let mut req = Request::builder().method(method).uri(url);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let req = req.body(Full::new(Bytes::from(body.to_string()))).unwrap();
    let resp = timeout(STEP, client.request(req))
        .await
        .unwrap_or_else(|_| panic!("no answer from {method} {url} within {STEP:?}"))
        .unwrap_or_else(|e| panic!("{method} {url} failed: {e}"));
    let (parts, body) = resp.into_parts();
    (parts.status, read_all(body).await)
}

async fn bodyless(name: &'static str, with_json_content_type: bool) {
    let mock = MockUpstream::replying(Reply::json(200, r#"{"object":"list","data":[]}"#)).await;
    let gw = spawn_gateway(name, &mock.url()).await;
    let c = client(false);
    // The OpenAI and Anthropic SDKs send `Content-Type: application/json` on every request
    // with a body-capable method, also when there is no body: `files.delete`,
    // `responses.cancel`, `batches.cancel`, `fine_tuning.jobs.cancel`.
    let ct = with_json_content_type.then_some("application/json");
    let calls = [
        ("GET", "/v1/models"),
        ("DELETE", "/v1/files/file-abc123"),
        ("POST", "/v1/responses/resp_123/cancel"),
        ("POST", "/v1/batches/batch_123/cancel"),
    ];
    for (method, path) in calls {
        let (status, text) = send_raw(&c, method, &gw.url(path), ct, "").await;
        assert_eq!(
            status, 200,
            "{name}: {method} {path} (content-type {ct:?}): {text}"
        );
    }
    let reqs = mock.requests();
    assert_eq!(reqs.len(), calls.len(), "{name}");
    for (r, (method, path)) in reqs.iter().zip(calls) {
        assert_eq!(
            (r.method.as_str(), r.path.as_str(), r.body.len()),
            (method, path, 0),
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodyless_requests_pass() {
    for name in EXAMPLES {
        bodyless(name, false).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodyless_requests_with_json_content_type_pass() {
    for name in EXAMPLES {
        bodyless(name, true).await;
    }
}
