//! End to end with the real Python SDKs: `openai` and `anthropic` (pinned in
//! `tests/sdk/requirements.txt`, installed into `.venv` by `bash .ci/run`) call the sidecar,
//! started in-process, which forwards to a mock upstream (tests/common) over loopback.
//!
//! Each scenario: the SDK sends a prompt seeded with a name, an e-mail, a phone number, a
//! card, an IBAN and an OpenAI project key; the mock records what it receives and echoes the
//! pseudonym tokens it got (in JSON, in SSE deltas cut across events and TCP writes, in
//! tool-call arguments), adding an e-mail of its own. Asserted:
//! - no seeded value reaches the upstream, and each arrives there as an `<ENTITY_...>` token;
//! - the SDK hands the application the original values, and the model's own e-mail as
//!   `[EMAIL]`; every answer parses in the SDK (the scripts fail on any SDK error);
//! - streams stream: the mock sleeps [`FINAL_DELAY`] before its closing event, and the first
//!   delta must reach the SDK well before the stream ends (ordering by events, and more than
//!   [`MIN_GAP`] between first delta and end, never an absolute latency).
//!
//! The Python interpreter is `$VEILGATE_PYTHON`; without it, `.venv` (made by `.ci/run`)
//! or a virtualenv this test makes under `target/` on first run. If none can be had, the
//! tests fail with a setup hint, unless `VEILGATE_SKIP_SDK_TESTS=1` is set.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{MockUpstream, Pace, Recorded, Reply, chat_finish, find_token, named_event, pieces};
use serde_json::{Value, json};
use tokio::time::timeout;

// ---------------------------------------------------------------------------------------
// Seeded values

const NAME: &str = "Anna Kowalski";
const EMAIL: &str = "anna.kowalski@posteo.de";
const PHONE: &str = "+49 30 901820";
const CARD: &str = "4111 1111 1111 1111";
const IBAN: &str = "DE89 3704 0044 0532 0130 00";
const API_KEY: &str = "sk-proj-BQvbbxX9aiYIvz5p4i4LwlzNqFhIH7NBONxdPlgO46BiZVtETsOy6IGmcN85Otpp";
/// An e-mail the "model" produces itself: must reach the client as `[EMAIL]`.
const MODEL_EMAIL: &str = "bob.smith@example-corp.net";

/// Entity of each seeded value, as its pseudonym token names it.
const SEEDED: [(&str, &str); 6] = [
    ("PERSON", NAME),
    ("EMAIL", EMAIL),
    ("PHONE", PHONE),
    ("CREDIT_CARD", CARD),
    ("IBAN", IBAN),
    ("API_KEY", API_KEY),
];

/// Fragments of the seeded values that must never reach the upstream.
const NEVER_UPSTREAM: &[&str] = &[
    "Kowalski",
    "anna.kowalski",
    "posteo",
    "901820",
    CARD,
    "4111111111111111",
    "1111 1111",
    IBAN,
    "DE89370400440532013000",
    "0532 0130",
    "sk-proj-",
    "BQvbbxX9aiYIvz5p",
    "IGmcN85Otpp",
];

fn prompt() -> String {
    format!(
        "Hi, I am {NAME}. Mail me at {EMAIL} or call {PHONE}. Charge my card {CARD} and \
         refund to IBAN {IBAN}. My key is {API_KEY}. Please confirm."
    )
}

/// The answer the mock "model" gives, with `v(entity)` for each seeded value.
fn answer(v: &dyn Fn(&str) -> String, model_email: &str) -> String {
    format!(
        "Noted, {}. I will write to {} and call {}; card {} and IBAN {} are on file, key {} \
         too. Copying {model_email} on it.",
        v("PERSON"),
        v("EMAIL"),
        v("PHONE"),
        v("CREDIT_CARD"),
        v("IBAN"),
        v("API_KEY"),
    )
}

/// Tool-call arguments the mock "model" produces.
fn tool_args(v: &dyn Fn(&str) -> String, model_email: &str) -> Value {
    json!({"to": v("EMAIL"), "subject": format!("Card {}", v("CREDIT_CARD")), "cc": model_email})
}

fn original(entity: &str) -> String {
    SEEDED
        .iter()
        .find(|(e, _)| *e == entity)
        .map(|(_, v)| v.to_string())
        .unwrap()
}

/// What the SDK must hand the application.
fn expected_text() -> String {
    answer(&original, "[EMAIL]")
}

fn expected_args() -> Value {
    tool_args(&original, "[EMAIL]")
}

// ---------------------------------------------------------------------------------------
// Timing

/// Upper bound for one step (sidecar start, one SDK script run): generous for a loaded
/// 2-core machine.
const STEP: Duration = Duration::from_secs(120);
/// The mock sleeps this long before its closing event of a stream.
const FINAL_DELAY: Duration = Duration::from_millis(400);
/// The first delta must reach the SDK at least this long before the stream ends.
const MIN_GAP: f64 = 0.2;

// ---------------------------------------------------------------------------------------
// The Python side

const SETUP_HINT: &str = "\
tests/sdk_e2e.rs drives the sidecar with the real `openai` and `anthropic` Python SDKs.
Set them up with `bash .ci/run` (creates .venv, installs tests/sdk/requirements.txt, exports
VEILGATE_PYTHON and runs `cargo test`), or by hand:
    python3 -m venv .venv && .venv/bin/pip install -r tests/sdk/requirements.txt
    VEILGATE_PYTHON=$PWD/.venv/bin/python cargo test
To skip these tests knowingly: VEILGATE_SKIP_SDK_TESTS=1 cargo test";

/// The interpreter to run the scripts with; `None`: skip (announced once, loudly).
/// Panics with a setup hint when the SDKs are not available and skipping was not asked.
fn python() -> Option<PathBuf> {
    static PY: OnceLock<Result<Option<PathBuf>, String>> = OnceLock::new();
    let r = PY.get_or_init(|| {
        if std::env::var("VEILGATE_SKIP_SDK_TESTS").as_deref() == Ok("1") {
            // Written to the real stderr, past the test harness's output capture.
            let _ = std::io::stderr().write_all(
                b"\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
                  !!! SKIPPED: tests/sdk_e2e.rs (VEILGATE_SKIP_SDK_TESTS=1): the sidecar was  !!!\n\
                  !!! NOT tested with the real openai/anthropic SDKs. `bash .ci/run` does it. !!!\n\
                  !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\n",
            );
            return Ok(None);
        }
        let py = match std::env::var_os("VEILGATE_PYTHON").filter(|p| !p.is_empty()) {
            Some(py) => PathBuf::from(py),
            None => provision_venv()?,
        };
        let out = Command::new(&py)
            .args([
                "-c",
                "import openai, anthropic; print(openai.__version__, anthropic.__version__)",
            ])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| {
                format!(
                    "cannot run VEILGATE_PYTHON={}: {e}\n{SETUP_HINT}",
                    py.display()
                )
            })?;
        if !out.status.success() {
            return Err(format!(
                "VEILGATE_PYTHON={} cannot import openai and anthropic:\n{}\n{SETUP_HINT}",
                py.display(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(Some(py))
    });
    match r {
        Ok(p) => p.clone(),
        Err(e) => panic!("{e}"),
    }
}

/// Without `$VEILGATE_PYTHON`: the `.venv` that `.ci/run` makes, else a virtualenv under
/// `target/` made here once (python3 -m venv, pip install the pinned SDKs), so a plain
/// `cargo test` on a fresh machine runs these tests too.
fn provision_venv() -> Result<PathBuf, String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let ci = root.join(".venv/bin/python");
    let imports = |py: &PathBuf| {
        Command::new(py)
            .args(["-c", "import openai, anthropic"])
            .stdin(Stdio::null())
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if imports(&ci) {
        return Ok(ci);
    }
    let dir = root.join("target/sdk-venv");
    let py = dir.join("bin/python");
    if imports(&py) {
        return Ok(py);
    }
    let run = |cmd: &mut Command| -> Result<(), String> {
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("{cmd:?}: {e}\n{SETUP_HINT}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{cmd:?} failed:\n{}\n{SETUP_HINT}",
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    };
    let _ = std::fs::remove_dir_all(&dir);
    run(Command::new("python3").args(["-m", "venv"]).arg(&dir))?;
    run(Command::new(&py)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-input",
            "-r",
        ])
        .arg(root.join("tests/sdk/requirements.txt")))?;
    Ok(py)
}

/// A child process, killed and reaped on drop (also when the test panics).
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `tests/sdk/<script>.py MODE PROMPT` against the sidecar at `addr` and returns the
/// JSON object the script printed last.
async fn run_script(py: &PathBuf, script: &str, mode: &str, addr: SocketAddr) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sdk")
        .join(format!("{script}.py"));
    let mut cmd = Command::new(py);
    cmd.arg(&path)
        .arg(mode)
        .arg(prompt())
        .env("OPENAI_BASE_URL", format!("http://{addr}/v1"))
        .env("ANTHROPIC_BASE_URL", format!("http://{addr}"))
        .env("OPENAI_API_KEY", "test-openai-key")
        .env("ANTHROPIC_API_KEY", "test-anthropic-key")
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost");
    for v in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "OPENAI_ORG_ID",
        "OPENAI_PROJECT_ID",
        "ANTHROPIC_AUTH_TOKEN",
    ] {
        cmd.env_remove(v);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = Reaped(
        cmd.spawn()
            .unwrap_or_else(|e| panic!("spawn {} {}: {e}", py.display(), path.display())),
    );
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let stdout = drain(child.0.stdout.take().map(|s| Box::new(s) as _));
    let stderr = drain(child.0.stderr.take().map(|s| Box::new(s) as _));
    let deadline = Instant::now() + STEP;
    let status = loop {
        if let Some(s) = child.0.try_wait().expect("wait for the SDK script") {
            break s;
        }
        if Instant::now() > deadline {
            drop(child); // kills it, so the pipes close and the readers end
            panic!(
                "{script} {mode}: no exit within {STEP:?}; stderr:\n{}",
                stderr.join().unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let out = stdout.join().unwrap_or_default();
    let err = stderr.join().unwrap_or_default();
    assert!(
        status.success(),
        "{script} {mode} failed ({status}): the SDK could not complete the call\n\
         --- stdout\n{out}\n--- stderr\n{err}"
    );
    let last = out
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    serde_json::from_str(last).unwrap_or_else(|e| {
        panic!("{script} {mode}: last stdout line is not JSON ({e}):\n{out}\n--- stderr\n{err}")
    })
}

// ---------------------------------------------------------------------------------------
// The sidecar

/// A sidecar started in-process with both upstreams at the mock; its config file is
/// removed on drop.
struct Sidecar {
    handle: Option<veilgate::sidecar::Handle>,
    config: PathBuf,
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.config);
    }
}

impl Sidecar {
    async fn start(mock: &MockUpstream, scenario: &str) -> Sidecar {
        let config = std::env::temp_dir().join(format!(
            "veilgate-sdk-e2e-{}-{}.toml",
            std::process::id(),
            scenario.replace(' ', "-")
        ));
        let url = mock.url();
        let text = format!(
            r#"listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
default_upstream = "openai"
watch = false
drain_secs = 1

[[upstream]]
name = "openai"
provider = "openai"
base_url = "{url}"

[[upstream]]
name = "anthropic"
provider = "anthropic"
base_url = "{url}"

[[route]]
path_prefix = "/v1/messages"
upstream = "anthropic"
"#
        );
        std::fs::write(&config, text).expect("write the sidecar config");
        let mut sidecar = Sidecar {
            handle: None,
            config,
        };
        let handle = timeout(
            STEP,
            veilgate::sidecar::start(Some(sidecar.config.clone()), Default::default()),
        )
        .await
        .expect("the sidecar did not start in time")
        .unwrap_or_else(|e| panic!("the sidecar did not start: {e}"));
        sidecar.handle = Some(handle);
        sidecar
    }

    fn addr(&self) -> SocketAddr {
        self.handle.as_ref().unwrap().addr
    }

    async fn stop(mut self) {
        if let Some(h) = self.handle.take() {
            timeout(STEP, h.shutdown())
                .await
                .expect("the sidecar did not shut down in time");
        }
    }
}

// ---------------------------------------------------------------------------------------
// The mock upstream's answers

/// The pseudonym tokens of one recorded request, by entity.
fn tokens(req: &Recorded) -> BTreeMap<String, String> {
    let body = req.body_str();
    SEEDED
        .iter()
        .filter_map(|(e, _)| find_token(&body, e).map(|t| (e.to_string(), t)))
        .collect()
}

/// `v(entity)` for the mock: the token it received (or a marker the assertions catch).
fn token_fn(req: &Recorded) -> impl Fn(&str) -> String {
    let t = tokens(req);
    move |e: &str| {
        t.get(e)
            .cloned()
            .unwrap_or_else(|| format!("(no {e} token)"))
    }
}

/// Delays the frame `from_end` places before the end of the reply by [`FINAL_DELAY`].
fn delay_final(mut reply: Reply, from_end: usize) -> Reply {
    let i = reply.frames.len() - from_end;
    reply.frames[i].0 = Pace::Delay(FINAL_DELAY);
    reply
}

/// An SSE reply from whole events, with the wire of the first `cut_events` events also cut
/// into TCP writes every `every` bytes (cuts fall inside lines, JSON strings, tokens).
fn sse_frames(events: Vec<String>, cut_events: usize, every: usize) -> Reply {
    let (head, tail) = events.split_at(cut_events.min(events.len()));
    let wire: String = head.concat();
    let cuts: Vec<usize> = (1..)
        .map(|k| k * every)
        .take_while(|&c| c < wire.len())
        .collect();
    let mut reply = Reply::sse_cut(&wire, &cuts);
    reply.frames.extend(Reply::sse(tail.to_vec()).frames);
    reply
}

fn chat_chunk(delta: Value, finish: Value) -> String {
    let v = json!({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o",
        "choices":[{"index":0,"delta":delta,"finish_reason":finish}]});
    format!("data: {v}\n\n")
}

fn chat_json(req: &Recorded) -> Reply {
    let v = token_fn(req);
    Reply::json(
        200,
        json!({"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o",
            "choices":[{"index":0,"message":{"role":"assistant","content":answer(&v, MODEL_EMAIL)},
                "logprobs":null,"finish_reason":"stop"}],
            "usage":{"prompt_tokens":40,"completion_tokens":40,"total_tokens":80}})
        .to_string(),
    )
}

fn chat_stream(req: &Recorded) -> Reply {
    let v = token_fn(req);
    let mut events = vec![chat_chunk(
        json!({"role":"assistant","content":""}),
        Value::Null,
    )];
    // ~6 characters per event: every token is cut across several events.
    for p in pieces(&answer(&v, MODEL_EMAIL), 30) {
        events.push(chat_chunk(json!({ "content": p }), Value::Null));
    }
    let n = events.len();
    events.extend(chat_finish("stop"));
    delay_final(sse_frames(events, n, 61), 2)
}

fn chat_tools_json(req: &Recorded) -> Reply {
    let v = token_fn(req);
    let args = tool_args(&v, MODEL_EMAIL).to_string();
    Reply::json(
        200,
        json!({"id":"chatcmpl-2","object":"chat.completion","created":1,"model":"gpt-4o",
            "choices":[{"index":0,"message":{"role":"assistant","content":null,
                "tool_calls":[{"id":"call_1","type":"function",
                    "function":{"name":"send_email","arguments":args}}]},
                "logprobs":null,"finish_reason":"tool_calls"}],
            "usage":{"prompt_tokens":40,"completion_tokens":40,"total_tokens":80}})
        .to_string(),
    )
}

fn chat_tools_stream(req: &Recorded) -> Reply {
    let v = token_fn(req);
    let args = tool_args(&v, MODEL_EMAIL).to_string();
    let mut events = vec![chat_chunk(
        json!({"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_1",
            "type":"function","function":{"name":"send_email","arguments":""}}]}),
        Value::Null,
    )];
    for p in pieces(&args, 20) {
        events.push(chat_chunk(
            json!({"tool_calls":[{"index":0,"function":{"arguments":p}}]}),
            Value::Null,
        ));
    }
    events.extend(chat_finish("tool_calls"));
    delay_final(Reply::sse(events), 2)
}

fn responses_message(text: &str, status: &str) -> Value {
    json!({"id":"msg_1","type":"message","status":status,"role":"assistant",
        "content": if status == "completed" {
            json!([{"type":"output_text","text":text,"annotations":[]}])
        } else { json!([]) }})
}

fn responses_call(args: &str, status: &str) -> Value {
    json!({"id":"fc_1","type":"function_call","status":status,"call_id":"call_1",
        "name":"send_email","arguments":args})
}

fn responses_object(status: &str, output: Vec<Value>) -> Value {
    json!({"id":"resp_1","object":"response","created_at":1,"status":status,"model":"gpt-4o",
        "output":output,"parallel_tool_calls":true,"tool_choice":"auto","tools":[],
        "temperature":1.0,"top_p":1.0,"error":null,"incomplete_details":null,
        "instructions":null,"metadata":{},
        "usage":{"input_tokens":40,"input_tokens_details":{"cached_tokens":0},
            "output_tokens":40,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":80}})
}

fn responses_json(req: &Recorded) -> Reply {
    let v = token_fn(req);
    let text = answer(&v, MODEL_EMAIL);
    let args = tool_args(&v, MODEL_EMAIL).to_string();
    Reply::json(
        200,
        responses_object(
            "completed",
            vec![
                responses_message(&text, "completed"),
                responses_call(&args, "completed"),
            ],
        )
        .to_string(),
    )
}

fn responses_stream(req: &Recorded) -> Reply {
    let v = token_fn(req);
    let text = answer(&v, MODEL_EMAIL);
    let args = tool_args(&v, MODEL_EMAIL).to_string();
    let mut seq = 0;
    let mut events = Vec::new();
    let mut ev = |name: &str, mut data: Value| {
        data["type"] = json!(name);
        data["sequence_number"] = json!(seq);
        seq += 1;
        events.push(named_event(name, &data));
    };
    ev(
        "response.created",
        json!({"response": responses_object("in_progress", vec![])}),
    );
    ev(
        "response.in_progress",
        json!({"response": responses_object("in_progress", vec![])}),
    );
    ev(
        "response.output_item.added",
        json!({"output_index":0,"item":responses_message("", "in_progress")}),
    );
    ev(
        "response.content_part.added",
        json!({"item_id":"msg_1","output_index":0,"content_index":0,
            "part":{"type":"output_text","text":"","annotations":[]}}),
    );
    for p in pieces(&text, 30) {
        ev(
            "response.output_text.delta",
            json!({"item_id":"msg_1","output_index":0,"content_index":0,"delta":p,"logprobs":[]}),
        );
    }
    ev(
        "response.output_text.done",
        json!({"item_id":"msg_1","output_index":0,"content_index":0,"text":text,"logprobs":[]}),
    );
    ev(
        "response.content_part.done",
        json!({"item_id":"msg_1","output_index":0,"content_index":0,
            "part":{"type":"output_text","text":text,"annotations":[]}}),
    );
    ev(
        "response.output_item.done",
        json!({"output_index":0,"item":responses_message(&text, "completed")}),
    );
    ev(
        "response.output_item.added",
        json!({"output_index":1,"item":responses_call("", "in_progress")}),
    );
    for p in pieces(&args, 15) {
        ev(
            "response.function_call_arguments.delta",
            json!({"item_id":"fc_1","output_index":1,"delta":p}),
        );
    }
    ev(
        "response.function_call_arguments.done",
        json!({"item_id":"fc_1","output_index":1,"arguments":args}),
    );
    ev(
        "response.output_item.done",
        json!({"output_index":1,"item":responses_call(&args, "completed")}),
    );
    ev(
        "response.completed",
        json!({"response": responses_object("completed", vec![
            responses_message(&text, "completed"),
            responses_call(&args, "completed"),
        ])}),
    );
    delay_final(Reply::sse(events), 1)
}

fn anthropic_json(req: &Recorded) -> Reply {
    let v = token_fn(req);
    Reply::json(
        200,
        json!({"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5",
            "content":[
                {"type":"text","text":answer(&v, MODEL_EMAIL)},
                {"type":"tool_use","id":"toolu_1","name":"send_email","input":tool_args(&v, MODEL_EMAIL)}
            ],
            "stop_reason":"tool_use","stop_sequence":null,
            "usage":{"input_tokens":40,"output_tokens":40}})
        .to_string(),
    )
}

fn anthropic_stream(req: &Recorded) -> Reply {
    let v = token_fn(req);
    let text = answer(&v, MODEL_EMAIL);
    let args = tool_args(&v, MODEL_EMAIL).to_string();
    let mut events = vec![
        named_event(
            "message_start",
            &json!({"type":"message_start","message":{"id":"msg_1","type":"message",
                "role":"assistant","model":"claude-sonnet-4-5","content":[],"stop_reason":null,
                "stop_sequence":null,"usage":{"input_tokens":40,"output_tokens":1}}}),
        ),
        named_event(
            "content_block_start",
            &json!({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}),
        ),
        named_event("ping", &json!({"type":"ping"})),
    ];
    for p in pieces(&text, 30) {
        events.push(named_event(
            "content_block_delta",
            &json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":p}}),
        ));
    }
    events.push(named_event(
        "content_block_stop",
        &json!({"type":"content_block_stop","index":0}),
    ));
    events.push(named_event(
        "content_block_start",
        &json!({"type":"content_block_start","index":1,"content_block":{"type":"tool_use",
            "id":"toolu_1","name":"send_email","input":{}}}),
    ));
    for p in pieces(&args, 15) {
        events.push(named_event(
            "content_block_delta",
            &json!({"type":"content_block_delta","index":1,
                "delta":{"type":"input_json_delta","partial_json":p}}),
        ));
    }
    events.push(named_event(
        "content_block_stop",
        &json!({"type":"content_block_stop","index":1}),
    ));
    let n = events.len();
    events.push(named_event(
        "message_delta",
        &json!({"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},
            "usage":{"output_tokens":40}}),
    ));
    events.push(named_event("message_stop", &json!({"type":"message_stop"})));
    // The text block's events are also cut into odd TCP writes.
    delay_final(sse_frames(events, n, 53), 2)
}

// ---------------------------------------------------------------------------------------
// Running a scenario

/// Starts mock and sidecar, runs the script, checks what reached the upstream, and returns
/// the script's result (None: skipped). Stream modes make a warm-up call first (see
/// tests/sdk/_harness.py), so the upstream sees two requests there.
async fn scenario(
    name: &str,
    script: &str,
    mode: &str,
    path: &str,
    reply: fn(&Recorded) -> Reply,
) -> Option<Value> {
    let py = python()?;
    let mock = MockUpstream::start(reply).await;
    let sidecar = Sidecar::start(&mock, name).await;
    let result = run_script(&py, script, mode, sidecar.addr()).await;
    sidecar.stop().await;
    eprintln!("{name}: the SDK got {result}");

    let calls = if mode.contains("stream") { 2 } else { 1 };
    let reqs = mock.requests();
    assert_eq!(
        reqs.len(),
        calls,
        "{name}: {calls} request(s) upstream expected, got {}",
        reqs.len()
    );
    for up in &reqs {
        assert_eq!(
            (up.method.as_str(), up.path.as_str()),
            ("POST", path),
            "{name}: upstream request"
        );
        let body = up.body_str();
        up.json(); // still valid JSON
        for bad in NEVER_UPSTREAM {
            assert!(
                !body.contains(bad),
                "{name}: seeded value fragment {bad:?} reached the upstream: {body}"
            );
        }
        let got = tokens(up);
        for (entity, _) in SEEDED {
            assert!(
                got.contains_key(entity),
                "{name}: no <{entity}_...> pseudonym token reached the upstream: {body}"
            );
        }
    }
    // The same value maps to the same token from one request to the next.
    assert!(
        reqs.windows(2).all(|w| tokens(&w[0]) == tokens(&w[1])),
        "{name}: pseudonyms changed between two identical requests: {:?}",
        reqs.iter().map(tokens).collect::<Vec<_>>()
    );
    // The warm-up call got the same answer as the measured one.
    if let Some(w) = result.get("warmup") {
        for k in ["text", "tool_calls", "arguments", "content", "partial_json"] {
            assert_eq!(
                w.get(k),
                result.get(k),
                "{name}: warm-up and measured call differ in {k:?}"
            );
        }
    }
    Some(result)
}

fn text_of(result: &Value, key: &str) -> String {
    result[key]
        .as_str()
        .unwrap_or_else(|| panic!("no string {key:?} in the SDK result: {result}"))
        .to_string()
}

fn assert_restored(name: &str, what: &str, got: &str) {
    assert_eq!(
        got,
        expected_text(),
        "{name}: {what}: the SDK must get the original values back and the model's own \
         e-mail as [EMAIL]"
    );
}

fn assert_args(name: &str, what: &str, got: &Value) {
    assert_eq!(
        got,
        &expected_args(),
        "{name}: {what}: tool-call arguments as the SDK parsed them"
    );
}

/// The first delta reached the SDK well before the stream ended.
fn assert_streamed(name: &str, result: &Value) {
    let deltas = result["deltas"].as_array().expect("deltas");
    assert!(
        deltas.len() >= 2,
        "{name}: expected several deltas: {result}"
    );
    let first = result["first_delta_at"].as_f64().expect("first_delta_at");
    let end = result["end_at"].as_f64().expect("end_at");
    assert!(
        end - first > MIN_GAP,
        "{name}: the first delta arrived {first:.3}s after the request and the stream ended at \
         {end:.3}s: the sidecar held the stream back instead of streaming it (the upstream paused \
         {FINAL_DELAY:?} before its last event)"
    );
    // Deltas themselves kept flowing as they came: some arrived before the pause.
    let before_pause = deltas
        .iter()
        .filter(|d| d[0].as_f64().unwrap_or(f64::MAX) < end - MIN_GAP)
        .count();
    assert!(
        before_pause >= 1,
        "{name}: no delta before the upstream's pause: {result}"
    );
}

fn assert_event_order(name: &str, result: &Value, first: &str, last: &str) {
    let types: Vec<&str> = result["event_types"]
        .as_array()
        .expect("event_types")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let f = types.iter().position(|t| *t == first);
    let l = types.iter().rposition(|t| *t == last);
    assert!(
        matches!((f, l), (Some(f), Some(l)) if f < l),
        "{name}: expected {first} before {last}: {types:?}"
    );
}

// ---------------------------------------------------------------------------------------
// The scenarios

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_chat_json() {
    let name = "openai chat json";
    let Some(r) = scenario(
        name,
        "openai_chat",
        "json",
        "/v1/chat/completions",
        chat_json,
    )
    .await
    else {
        return;
    };
    assert_restored(name, "message.content", &text_of(&r, "text"));
    assert_eq!(r["finish_reason"], "stop", "{name}: {r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_chat_stream() {
    let name = "openai chat stream";
    let Some(r) = scenario(
        name,
        "openai_chat",
        "stream",
        "/v1/chat/completions",
        chat_stream,
    )
    .await
    else {
        return;
    };
    assert_restored(name, "concatenated content deltas", &text_of(&r, "text"));
    assert_eq!(r["finish_reason"], "stop", "{name}: {r}");
    assert_streamed(name, &r);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_chat_tool_calls_json() {
    let name = "openai chat tools json";
    let Some(r) = scenario(
        name,
        "openai_chat",
        "tools",
        "/v1/chat/completions",
        chat_tools_json,
    )
    .await
    else {
        return;
    };
    let calls = r["tool_calls"].as_array().expect("tool_calls");
    assert_eq!(calls.len(), 1, "{name}: {r}");
    assert_eq!(calls[0]["name"], "send_email", "{name}: {r}");
    assert_eq!(calls[0]["id"], "call_1", "{name}: {r}");
    assert_args(name, "function.arguments", &calls[0]["parsed"]);
    assert_eq!(r["finish_reason"], "tool_calls", "{name}: {r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_chat_tool_calls_stream() {
    let name = "openai chat tools stream";
    let Some(r) = scenario(
        name,
        "openai_chat",
        "tools_stream",
        "/v1/chat/completions",
        chat_tools_stream,
    )
    .await
    else {
        return;
    };
    let calls = r["tool_calls"].as_array().expect("tool_calls");
    assert_eq!(
        calls.len(),
        1,
        "{name}: the SDK must see one tool call (ids and names not repeated): {r}"
    );
    assert_eq!(calls[0]["name"], "send_email", "{name}: {r}");
    assert_eq!(calls[0]["id"], "call_1", "{name}: {r}");
    assert_args(name, "concatenated argument deltas", &calls[0]["parsed"]);
    assert_eq!(r["finish_reason"], "tool_calls", "{name}: {r}");
    assert_streamed(name, &r);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_responses_json() {
    let name = "openai responses json";
    let Some(r) = scenario(
        name,
        "openai_responses",
        "json",
        "/v1/responses",
        responses_json,
    )
    .await
    else {
        return;
    };
    assert_restored(name, "response.output_text", &text_of(&r, "text"));
    let calls = r["tool_calls"].as_array().expect("tool_calls");
    assert_eq!(calls.len(), 1, "{name}: {r}");
    assert_args(name, "function_call.arguments", &calls[0]["parsed"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_responses_stream() {
    let name = "openai responses stream";
    let Some(r) = scenario(
        name,
        "openai_responses",
        "stream",
        "/v1/responses",
        responses_stream,
    )
    .await
    else {
        return;
    };
    assert_restored(
        name,
        "concatenated response.output_text.delta",
        &text_of(&r, "text"),
    );
    assert_restored(
        name,
        "response.output_text.done text",
        &text_of(&r, "done_text"),
    );
    assert_restored(
        name,
        "response.completed output_text",
        &text_of(&r, "final_text"),
    );
    assert_args(
        name,
        "concatenated function_call_arguments.delta",
        &r["arguments"],
    );
    let calls = r["final_tool_calls"].as_array().expect("final_tool_calls");
    assert_eq!(calls.len(), 1, "{name}: {r}");
    assert_args(
        name,
        "response.completed function_call",
        &calls[0]["parsed"],
    );
    assert_event_order(name, &r, "response.output_text.delta", "response.completed");
    assert_streamed(name, &r);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_messages_json() {
    let name = "anthropic messages json";
    let Some(r) = scenario(
        name,
        "anthropic_messages",
        "json",
        "/v1/messages",
        anthropic_json,
    )
    .await
    else {
        return;
    };
    let content = r["content"].as_array().expect("content");
    assert_eq!(content.len(), 2, "{name}: {r}");
    assert_restored(
        name,
        "text block",
        content[0]["text"].as_str().unwrap_or(""),
    );
    assert_eq!(content[1]["name"], "send_email", "{name}: {r}");
    assert_args(name, "tool_use input", &content[1]["input"]);
    assert_eq!(r["stop_reason"], "tool_use", "{name}: {r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_messages_stream() {
    let name = "anthropic messages stream";
    let Some(r) = scenario(
        name,
        "anthropic_messages",
        "stream",
        "/v1/messages",
        anthropic_stream,
    )
    .await
    else {
        return;
    };
    assert_restored(name, "concatenated text_delta", &text_of(&r, "text"));
    let partial: Value = serde_json::from_str(&text_of(&r, "partial_json"))
        .unwrap_or_else(|e| panic!("{name}: input_json_delta pieces are not JSON ({e}): {r}"));
    assert_args(name, "concatenated input_json_delta", &partial);
    let content = r["content"].as_array().expect("content");
    assert_eq!(content.len(), 2, "{name}: get_final_message(): {r}");
    assert_restored(
        name,
        "final message text block",
        content[0]["text"].as_str().unwrap_or(""),
    );
    assert_args(name, "final message tool_use input", &content[1]["input"]);
    assert_eq!(r["stop_reason"], "tool_use", "{name}: {r}");
    assert_event_order(name, &r, "content_block_delta", "message_stop");
    assert_streamed(name, &r);
}

/// The mock's stream replies really cut tokens across events (else the streaming
/// scenarios would prove less than they claim).
#[test]
fn stream_replies_cut_tokens_across_events() {
    let body = json!({"messages":[{"role":"user","content":
        "<PERSON_AAAAAA> <EMAIL_BBBBBB> <PHONE_CCCCCC> <CREDIT_CARD_DDDDDD> <IBAN_EEEEEE> <API_KEY_FFFFFF>"}]});
    let req = Recorded {
        method: http::Method::POST,
        path: "/".into(),
        headers: Default::default(),
        body: Bytes::from(body.to_string()),
    };
    for (name, reply) in [
        ("chat", chat_stream(&req)),
        ("chat tools", chat_tools_stream(&req)),
        ("responses", responses_stream(&req)),
        ("anthropic", anthropic_stream(&req)),
    ] {
        let frames: Vec<String> = reply
            .frames
            .iter()
            .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
            .collect();
        assert!(frames.concat().contains("BBBB"), "{name}: {frames:?}");
        for f in &frames {
            let delta = f.contains("delta");
            assert!(
                !(delta && f.contains("<EMAIL_BBBBBB>")),
                "{name}: the e-mail token must be cut across delta events: {f}"
            );
        }
        assert!(
            reply
                .frames
                .iter()
                .any(|(p, _)| matches!(p, Pace::Delay(d) if *d == FINAL_DELAY)),
            "{name}: the closing event must come after the pause"
        );
    }
}
