//! Issue 6 end to end through the sidecar: consent (tenant, DNT, GPC), training endpoints
//! refused, provider flags rewritten, upstream selection by `trains_on_data` and region,
//! the capture sink (opted-in only, redacted, hashed tenant, images cleaned, rotation),
//! and the property that no detected value and nothing opted out ever reaches the sink.

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use common::{MockUpstream, Recorded, Reply, chat_delta, chat_finish};
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use veilgate::sidecar::{Config, Handle, Overrides, start};

const SEEDED: &str =
    "I am Anna Kowalski, mail anna.kowalski@posteo.de, IBAN DE89 3704 0044 0532 0130 00";

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("veilgate-training-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

async fn sidecar(name: &str, config: &str) -> (Handle, PathBuf) {
    let d = dir(name);
    let p = d.join("veilgate.toml");
    std::fs::write(&p, config).unwrap();
    let h = start(Some(p), Overrides::default())
        .await
        .expect("sidecar starts");
    (h, d)
}

/// The common head of every test config: loopback listeners, a trusted tenant header,
/// tenants `in` (opted in) and `out` (opted out, the default).
fn head() -> String {
    r#"
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
watch = false
[redact]
key_env = "VEILGATE_TEST_KEY_UNSET"
[auth]
tenant_header = "x-tenant"
[tenants.in]
training = "opt-in"
[tenants.out]
training = "opt-out"
"#
    .to_string()
}

fn upstream(name: &str, url: &str, extra: &str) -> String {
    format!(
        "[[upstream]]\nname = \"{name}\"\nbase_url = \"{url}\"\nresponse_timeout_ms = 5000\n{extra}\n"
    )
}

fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

struct Answer {
    status: u16,
    headers: http::HeaderMap,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
    fn training(&self) -> &str {
        self.headers
            .get("x-veilgate-training")
            .map_or("", |v| v.to_str().unwrap())
    }
}

async fn send(
    method: &str,
    url: String,
    content_type: &str,
    body: impl Into<Bytes>,
    headers: &[(&str, &str)],
) -> Answer {
    let mut b = Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", content_type);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let req = b.body(Full::new(body.into())).unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(20), client().request(req))
        .await
        .expect("no hang")
        .expect("request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = tokio::time::timeout(Duration::from_secs(20), resp.into_body().collect())
        .await
        .expect("no hang")
        .unwrap()
        .to_bytes();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

async fn post_json(h: &Handle, path: &str, body: &Value, headers: &[(&str, &str)]) -> Answer {
    send(
        "POST",
        format!("http://{}{path}", h.addr),
        "application/json",
        body.to_string(),
        headers,
    )
    .await
}

fn chat(content: &str) -> Value {
    json!({"model":"gpt-4o","messages":[{"role":"user","content":content}]})
}

/// Answers chat completions with what it received, and everything else with `{}`.
async fn echo() -> MockUpstream {
    MockUpstream::start(|req: &Recorded| {
        let content = serde_json::from_slice::<Value>(&req.body)
            .ok()
            .and_then(|v| v["messages"][0]["content"].as_str().map(String::from))
            .unwrap_or_default();
        Reply::json(
            200,
            json!({"id":"c1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":format!("you said: {content}")},"finish_reason":"stop"}]}).to_string(),
        )
    })
    .await
}

// ---------------------------------------------------------------------------------------
// Security records: a subscriber for the whole test binary, writing to a buffer.

#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logs() -> Logs {
    static LOGS: OnceLock<Logs> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Logs::default();
        let w = logs.clone();
        let sub = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || w.clone())
            .finish();
        let _ = tracing::subscriber::set_global_default(sub);
        logs
    })
    .clone()
}

fn log_text() -> String {
    String::from_utf8_lossy(&logs().0.lock().unwrap()).into_owned()
}

// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opted_out_requests_get_store_false_and_the_header() {
    let mock = echo().await;
    let cfg = head() + &upstream("openai", &mock.url(), "");
    let (h, _) = sidecar("store", &cfg).await;

    // The default tenant is opted out: `store` forced to false, other bytes kept.
    let body = r#"{"model":"gpt-4o", "store": true,"messages":[{"role":"user","content":"hi"}]}"#;
    let a = send(
        "POST",
        format!("http://{}/v1/chat/completions", h.addr),
        "application/json",
        body,
        &[],
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.training(), "opted-out");
    assert_eq!(
        mock.requests()[0].body_str(),
        r#"{"model":"gpt-4o", "store": false,"messages":[{"role":"user","content":"hi"}]}"#
    );

    // The Responses API stores by default: the flag is inserted.
    let a = post_json(
        &h,
        "/v1/responses",
        &json!({"model":"gpt-4o","input":"hi"}),
        &[],
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(mock.requests()[1].json()["store"], false);

    // A gzip body is decoded, flagged and forwarded decoded (then redacted as usual).
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(chat(SEEDED).to_string().as_bytes()).unwrap();
    let a = send(
        "POST",
        format!("http://{}/v1/chat/completions", h.addr),
        "application/json",
        gz.finish().unwrap(),
        &[("content-encoding", "gzip"), ("x-tenant", "out")],
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let seen = &mock.requests()[2];
    assert!(seen.headers.get("content-encoding").is_none());
    assert_eq!(seen.json()["store"], false);
    assert!(!seen.body_str().contains("posteo"), "{}", seen.body_str());
    assert_eq!(
        a.json()["choices"][0]["message"]["content"],
        format!("you said: {SEEDED}")
    );

    // Fail closed: an opted-out body that cannot be parsed is not forwarded.
    let a = send(
        "POST",
        format!("http://{}/v1/chat/completions", h.addr),
        "application/json",
        "{\"model\": nope",
        &[],
    )
    .await;
    assert_eq!(a.status, 400);
    assert_eq!(a.json()["error"]["code"], "veilgate_invalid_json");
    assert_eq!(a.training(), "opted-out");
    let a = post_json(&h, "/v1/responses", &json!(["not", "an", "object"]), &[]).await;
    assert_eq!(a.status, 400);
    assert_eq!(a.json()["error"]["code"], "veilgate_training_invalid_body");
    assert_eq!(mock.requests().len(), 3);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dnt_and_gpc_opt_out_an_opted_in_tenant_and_nothing_opts_in() {
    let mock = echo().await;
    let cfg = head() + &upstream("openai", &mock.url(), "");
    let (h, _) = sidecar("dnt", &cfg).await;
    let body = json!({"model":"gpt-4o","store":true,"messages":[{"role":"user","content":"hi"}]});
    let cases: [(&[(&str, &str)], &str); 7] = [
        (&[("x-tenant", "in")], "opted-in"),
        (&[("x-tenant", "in"), ("dnt", "1")], "opted-out"),
        (&[("x-tenant", "in"), ("sec-gpc", "1")], "opted-out"),
        (&[("x-tenant", "in"), ("dnt", "0")], "opted-in"),
        (&[("x-tenant", "in"), ("sec-gpc", "0")], "opted-in"),
        (&[("x-tenant", "out"), ("dnt", "0")], "opted-out"),
        (&[("x-tenant", "out"), ("sec-gpc", "0")], "opted-out"),
    ];
    for (i, (headers, expect)) in cases.iter().enumerate() {
        let a = post_json(&h, "/v1/chat/completions", &body, headers).await;
        assert_eq!(a.status, 200, "{headers:?}: {}", a.body);
        assert_eq!(a.training(), *expect, "{headers:?}");
        let store = mock.requests()[i].json()["store"].clone();
        assert_eq!(store, *expect == "opted-in", "{headers:?}");
    }
    h.shutdown().await;
}

fn multipart(purpose: &str) -> (String, Vec<u8>) {
    let b = "----veilgateBoundary7";
    let body = format!(
        "--{b}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\n{purpose}\r\n--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"train.jsonl\"\r\nContent-Type: application/octet-stream\r\n\r\n{{\"messages\":[]}}\n\r\n--{b}--\r\n"
    );
    (
        format!("multipart/form-data; boundary={b}"),
        body.into_bytes(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn training_endpoints_are_refused_for_opted_out_requests() {
    let _ = logs();
    let mock = echo().await;
    let cfg = head()
        + &upstream("openai", &mock.url(), "")
        + "[training]\nrefuse_paths = [\"/v1/evals\", \"/v1/feedback\", \"/v1/custom-datasets\"]\n";
    let (h, _) = sidecar("endpoints", &cfg).await;
    let url = |p: &str| format!("http://{}{p}", h.addr);
    let job = json!({"training_file":"file-abc","model":"gpt-4o-mini"});

    for (path, who) in [
        ("/v1/fine_tuning/jobs", "out"),
        ("/v1/fine-tunes", "out"),
        ("/v1/evals", "out"),
        ("/v1/evals/eval_1/runs", "out"),
        ("/v1/custom-datasets", "out"),
        ("/openai/v1/fine_tuning/jobs", "out"),
    ] {
        let a = post_json(&h, path, &job, &[("x-tenant", who)]).await;
        assert_eq!(a.status, 403, "{path}: {}", a.body);
        assert_eq!(
            a.json()["error"]["code"],
            "veilgate_training_opted_out",
            "{path}"
        );
        assert_eq!(a.json()["error"]["type"], "permission_error");
        assert_eq!(a.training(), "opted-out");
    }
    // DNT makes an opted-in tenant's fine-tuning request a refusal too.
    let a = post_json(
        &h,
        "/v1/fine_tuning/jobs",
        &job,
        &[("x-tenant", "in"), ("dnt", "1")],
    )
    .await;
    assert_eq!(a.status, 403);
    assert!(
        mock.requests().is_empty(),
        "nothing refused reached the upstream"
    );
    let text = log_text();
    assert!(
        text.lines()
            .any(|l| l.contains("training refusal") && l.contains("training.reason=\"dnt\"")),
        "{text}"
    );

    // Uploads: purpose fine-tune refused, others forwarded byte for byte.
    let (ct, body) = multipart("fine-tune");
    let a = send("POST", url("/v1/files"), &ct, body, &[]).await;
    assert_eq!(a.status, 403, "{}", a.body);
    let a = send(
        "POST",
        url("/v1/uploads"),
        "application/json",
        json!({"purpose":"fine-tune","filename":"x.jsonl","bytes":10,"mime_type":"text/jsonl"})
            .to_string(),
        &[],
    )
    .await;
    assert_eq!(a.status, 403, "{}", a.body);
    assert!(mock.requests().is_empty());
    let (ct, body) = multipart("assistants");
    let a = send("POST", url("/v1/files"), &ct, body.clone(), &[]).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(mock.requests()[0].body, body);
    // A second `purpose` part (a backend keeping the last value would fine-tune) is
    // refused, never forwarded.
    let (ct, body) = multipart("assistants");
    let b = "----veilgateBoundary7";
    let twice = String::from_utf8(body).unwrap().replace(
        &format!("--{b}--\r\n"),
        &format!("--{b}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nfine-tune\r\n--{b}--\r\n"),
    );
    let a = send("POST", url("/v1/files"), &ct, twice, &[]).await;
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(
        a.body.contains("veilgate_training_duplicate_purpose"),
        "{}",
        a.body
    );
    assert_eq!(
        mock.requests().len(),
        1,
        "the duplicate never reached the upstream"
    );

    // Reads pass; opted-in tenants may fine-tune.
    let a = send(
        "GET",
        url("/v1/fine_tuning/jobs"),
        "application/json",
        "",
        &[],
    )
    .await;
    assert_eq!(a.status, 200);
    let a = post_json(&h, "/v1/fine_tuning/jobs", &job, &[("x-tenant", "in")]).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.training(), "opted-in");
    let (ct, body) = multipart("fine-tune");
    let a = send("POST", url("/v1/files"), &ct, body, &[("x-tenant", "in")]).await;
    assert_eq!(a.status, 200);
    assert_eq!(mock.requests().len(), 4);

    // Every refusal left a stamped security record, without body content.
    let text = log_text();
    let refusals: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("veilgate::security: training refusal"))
        .collect();
    assert!(refusals.len() >= 9, "{text}");
    for l in &refusals {
        assert!(
            (l.contains("code=\"veilgate_training_opted_out\"")
                || l.contains("code=\"veilgate_training_duplicate_purpose\""))
                && l.contains("retention.class=\"security\"")
                && l.contains("training.allowed=false"),
            "{l}"
        );
        assert!(!l.contains("file-abc"), "{l}");
    }
    // Records of other layers inside the exchange carry the decision too (span field).
    let a = send(
        "POST",
        url("/v1/embeddings"),
        "application/json",
        "{broken",
        &[],
    )
    .await;
    assert_eq!(a.status, 400);
    let text = log_text();
    assert!(
        text.lines().any(|l| l.contains("body refused")
            && l.contains("veilgate_invalid_json")
            && l.contains("training.allowed=false")),
        "{text}"
    );
    // The access records say so too.
    assert!(
        text.lines().any(|l| l.contains("veilgate::access")
            && l.contains("code=\"veilgate_training_opted_out\"")
            && l.contains("training.allowed=false")),
        "{text}"
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_follow_the_upstream_kind() {
    let openrouter = echo().await;
    let anthropic = MockUpstream::replying(Reply::json(
        200,
        r#"{"type":"message","content":[{"type":"text","text":"hi"}]}"#,
    ))
    .await;
    let cfg = head()
        + &upstream(
            "openrouter",
            &openrouter.url(),
            "training_flags = [\"data_collection\", \"zdr\"]",
        )
        + &upstream("anthropic", &anthropic.url(), "provider = \"anthropic\"")
        + "[[route]]\npath_prefix = \"/v1/messages\"\nupstream = \"anthropic\"\n"
        + "[[training.flag]]\nname = \"zdr\"\nendpoints = [\"/chat/completions\"]\npointer = \"/provider/zdr\"\nvalue = true\n";
    let (h, _) = sidecar("flags", &cfg).await;
    let body = json!({"model":"m","provider":{"order":["a","b"]},"messages":[{"role":"user","content":"hi"}]});
    let a = post_json(&h, "/v1/chat/completions", &body, &[]).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let seen = openrouter.requests()[0].json();
    assert_eq!(seen["provider"]["data_collection"], "deny");
    assert_eq!(seen["provider"]["zdr"], true);
    assert_eq!(seen["provider"]["order"], json!(["a", "b"]));
    assert!(
        seen.get("store").is_none(),
        "store is not an OpenRouter flag here"
    );
    // Opted in: untouched.
    let a = post_json(&h, "/v1/chat/completions", &body, &[("x-tenant", "in")]).await;
    assert_eq!(a.status, 200);
    assert_eq!(openrouter.requests()[1].json(), body);
    // Anthropic upstreams get no flags by default.
    let msg = json!({"model":"claude","max_tokens":5,"messages":[{"role":"user","content":"hi"}]});
    let a = post_json(&h, "/v1/messages", &msg, &[]).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.training(), "opted-out");
    assert_eq!(anthropic.requests()[0].json(), msg);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opted_out_requests_only_reach_upstreams_that_do_not_train() {
    let trainer = echo().await;
    let safe = echo().await;
    let cfg = head()
        + &upstream("trainer", &trainer.url(), "trains_on_data = true")
        + &upstream("safe", &safe.url(), "trains_on_data = false")
        + "[[route]]\npath_prefix = \"/v1/chat\"\nupstream = \"trainer\"\n"
        + "[[route]]\npath_prefix = \"/v1/embeddings\"\nupstreams = [\"trainer\"]\n";
    let (h, _) = sidecar("trains", &cfg).await;
    // Opted in: the route's own upstream.
    let a = post_json(
        &h,
        "/v1/chat/completions",
        &chat("hi"),
        &[("x-tenant", "in")],
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(trainer.requests().len(), 1);
    // Opted out (tenant, DNT, GPC): the upstream of the same kind that does not train.
    for headers in [
        vec![("x-tenant", "out")],
        vec![("x-tenant", "in"), ("dnt", "1")],
        vec![("x-tenant", "in"), ("sec-gpc", "1")],
    ] {
        let a = post_json(&h, "/v1/chat/completions", &chat("hi"), &headers).await;
        assert_eq!(a.status, 200, "{headers:?}");
    }
    assert_eq!(trainer.requests().len(), 1);
    assert_eq!(safe.requests().len(), 3);
    // An explicit list without a non-training upstream: 503, no fallback.
    let emb = json!({"model":"e","input":"hi"});
    let a = post_json(&h, "/v1/embeddings", &emb, &[]).await;
    assert_eq!(a.status, 503, "{}", a.body);
    assert_eq!(
        a.json()["error"]["code"],
        "veilgate_no_upstream_without_training"
    );
    assert!(
        a.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("train")
    );
    assert_eq!(a.training(), "opted-out");
    // The header cannot pick a training upstream for an opted-out request either.
    let a = post_json(
        &h,
        "/v1/chat/completions",
        &chat("hi"),
        &[("x-veilgate-upstream", "trainer")],
    )
    .await;
    assert_eq!(a.status, 503);
    assert_eq!(trainer.requests().len(), 1);
    // The metrics name the upstream that served.
    let m = client()
        .get(format!("http://{}/metrics", h.admin_addr).parse().unwrap())
        .await
        .unwrap();
    let m = String::from_utf8(m.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    assert!(m.contains("upstream=\"safe\",status=\"200\"} 3"), "{m}");
    assert!(m.contains("upstream=\"none\",status=\"503\"} 2"), "{m}");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_with_a_region_stay_in_it() {
    let us = echo().await;
    let eu = echo().await;
    let cfg = head()
        + "[tenants.bank]\nregion = \"eu\"\n"
        + &upstream("us", &us.url(), "region = \"us\"")
        + &upstream("azure-eu", &eu.url(), "region = \"EU\"")
        + "[[route]]\npath_prefix = \"/v1/embeddings\"\nupstreams = [\"us\"]\n";
    let claude = MockUpstream::replying(Reply::json(200, "{}")).await;
    let cfg =
        cfg + &upstream(
            "claude-us",
            &claude.url(),
            "provider = \"anthropic\"\nregion = \"us\"",
        ) + "[[route]]\npath_prefix = \"/v1/messages\"\nupstream = \"claude-us\"\n";
    let (h, _) = sidecar("region", &cfg).await;
    // Refusals speak the provider's error shape.
    let msg = json!({"model":"claude","max_tokens":5,"messages":[{"role":"user","content":"hi"}]});
    let a = post_json(&h, "/v1/messages", &msg, &[("x-tenant", "bank")]).await;
    assert_eq!(a.status, 503, "{}", a.body);
    assert_eq!(a.json()["type"], "error");
    assert_eq!(a.json()["error"]["code"], "veilgate_no_upstream_in_region");
    assert!(claude.requests().is_empty());
    let a = post_json(
        &h,
        "/v1/chat/completions",
        &chat("hi"),
        &[("x-tenant", "bank")],
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let a = post_json(
        &h,
        "/v1/chat/completions",
        &chat("hi"),
        &[("x-tenant", "in")],
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!((us.requests().len(), eu.requests().len()), (1, 1));
    // A route with only a US upstream: refused, and the reason says so.
    let a = post_json(
        &h,
        "/v1/embeddings",
        &json!({"model":"e","input":"x"}),
        &[("x-tenant", "bank")],
    )
    .await;
    assert_eq!(a.status, 503, "{}", a.body);
    assert_eq!(a.json()["error"]["code"], "veilgate_no_upstream_in_region");
    assert!(
        a.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("\"eu\"")
    );
    let a = post_json(
        &h,
        "/v1/chat/completions",
        &chat("hi"),
        &[("x-tenant", "bank"), ("x-veilgate-upstream", "us")],
    )
    .await;
    assert_eq!(a.status, 503);
    assert_eq!((us.requests().len(), eu.requests().len()), (1, 1));
    h.shutdown().await;
}

#[test]
fn config_check_validates_training_options() {
    let base = "[[upstream]]\nname = \"a\"\nbase_url = \"http://x\"\nregion = \"us\"\n";
    // (what follows the upstream, the line, the key, a word of the message)
    let cases: [(&str, Option<usize>, Option<&str>, &str); 8] = [
        (
            "[tenants.bank]\nregion = \"eu\"\n",
            Some(5),
            Some("tenants.bank.region"),
            "",
        ),
        (
            "training_flags = [\"nope\"]\n",
            Some(5),
            Some("upstream.training_flags"),
            "",
        ),
        (
            "[[training.flag]]\nname = \"f\"\nendpoints = [\"/x\"]\npointer = \"store\"\nvalue = 1\n",
            None,
            Some("training.flag"),
            "",
        ),
        (
            "[training]\nrefuse_paths = [\"v1/evals\"]\n",
            Some(6),
            Some("training.refuse_paths"),
            "",
        ),
        (
            "[training.capture]\npath = \"/tmp/x\"\nmax_bytes = 0\n",
            None,
            Some("training.capture"),
            "",
        ),
        ("[training.capture]\npth = \"/tmp/x\"\n", Some(6), None, ""),
        (
            "[[route]]\npath_prefix = \"/v1\"\n",
            None,
            Some("route.upstream"),
            "",
        ),
        (
            "[[route]]\npath_prefix = \"/v1\"\nupstreams = [\"a\", \"b\"]\n",
            None,
            None,
            "\"b\"",
        ),
    ];
    for (extra, line, key, word) in cases {
        let e = Config::parse("x.toml", &format!("{base}{extra}")).unwrap_err();
        if line.is_some() {
            assert_eq!(e.line, line, "{extra}: {e}");
        }
        if key.is_some() {
            assert_eq!(e.key.as_deref(), key, "{extra}: {e}");
        }
        assert!(e.message.contains(word), "{extra}: {e}");
    }
    Config::parse("x.toml", &format!("{base}[tenants.t]\nregion = \"US\"\ntraining = \"opt-in\"\nretention = {{ training = 30 }}\n[retention]\ntraining = 90\n")).unwrap();
}

// ---------------------------------------------------------------------------------------
// Capture.

fn capture_config(d: &Path, mock: &str, extra: &str) -> String {
    let key = d.join("capture.key");
    std::fs::write(&key, "capture-test-key\n").unwrap();
    head()
        + "[tenants.short]\ntraining = \"opt-in\"\nretention = { training = 0 }\n"
        + &upstream("openai", mock, "")
        + &format!(
            "[training.capture]\npath = \"{}\"\nkey_file = \"{}\"\n{extra}\n",
            d.join("capture.jsonl").display(),
            key.display()
        )
}

/// Every line of every capture file in `d`.
fn captured(d: &Path) -> Vec<Value> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("capture.jsonl"))
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

fn raw_capture(d: &Path) -> String {
    let mut s = String::new();
    for e in std::fs::read_dir(d).unwrap() {
        let p = e.unwrap().path();
        if p.to_string_lossy().contains("capture.jsonl") {
            s.push_str(&std::fs::read_to_string(p).unwrap());
        }
    }
    s
}

fn flush(h: &Handle) {
    h.state
        .current()
        .capture
        .as_ref()
        .expect("capture on")
        .flush();
}

/// A JPEG with an EXIF segment holding GPS data, base64.
fn exif_jpeg() -> String {
    let mut j = vec![0xFF, 0xD8];
    let exif = b"Exif\0\0MM\0*GPSLatitude=52.5200N;GPSLongitude=13.4050E";
    j.extend_from_slice(&[0xFF, 0xE1]);
    j.extend_from_slice(&((exif.len() + 2) as u16).to_be_bytes());
    j.extend_from_slice(exif);
    j.extend_from_slice(&[0xFF, 0xDB, 0x00, 0x04, 0x01, 0x02]);
    j.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x03, 0x01, 0x12, 0x34, 0xFF, 0xD9]);
    use std::fmt::Write as _;
    // base64 by hand (no dependency): 3 bytes -> 4 characters.
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in j.chunks(3) {
        let n = c
            .iter()
            .enumerate()
            .fold(0u32, |a, (i, &b)| a | (u32::from(b) << (16 - 8 * i)));
        for k in 0..4 {
            let _ = write!(
                s,
                "{}",
                if k <= c.len() {
                    A[((n >> (18 - 6 * k)) & 63) as usize] as char
                } else {
                    '='
                }
            );
        }
    }
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_writes_redacted_opted_in_exchanges_only() {
    let mock = MockUpstream::start(|req: &Recorded| {
        let v: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        let text = v["messages"][0]["content"][0]["text"]
            .as_str()
            .or(v["messages"][0]["content"].as_str())
            .unwrap_or("")
            .to_string();
        if v["stream"] == true {
            let mut events = vec![chat_delta("echo: "), chat_delta(&text)];
            events.extend(chat_finish("stop"));
            return Reply::sse(events);
        }
        // The model adds PII of its own.
        Reply::json(
            200,
            json!({"choices":[{"index":0,"message":{"role":"assistant","content":format!("you said: {text}; call me at +49 30 901820")}}]}).to_string(),
        )
    })
    .await;
    let d = dir("capture");
    let cfg = capture_config(&d, &mock.url(), "");
    let p = d.join("veilgate.toml");
    std::fs::write(&p, &cfg).unwrap();
    let h = start(Some(p), Overrides::default()).await.unwrap();

    let with_image = json!({"model":"gpt-4o","user":"anna.kowalski@posteo.de","metadata":{"ip":"203.0.113.9"},"messages":[{"role":"user","content":[
        {"type":"text","text":SEEDED},
        {"type":"image_url","image_url":{"url":format!("data:image/jpeg;base64,{}", exif_jpeg())}}
    ]}]});
    // Opted out in every way: nothing written.
    for headers in [
        vec![("x-tenant", "out")],
        vec![],
        vec![("x-tenant", "in"), ("dnt", "1")],
        vec![("x-tenant", "in"), ("sec-gpc", "1")],
        vec![("x-tenant", "short")],
    ] {
        let a = post_json(&h, "/v1/chat/completions", &with_image, &headers).await;
        assert_eq!(a.status, 200, "{headers:?}: {}", a.body);
    }
    flush(&h);
    assert!(captured(&d).is_empty(), "{}", raw_capture(&d));

    // Opted in: JSON and SSE answers, with a user agent and a key the sink must not keep.
    let meta = [
        ("x-tenant", "in"),
        ("user-agent", "SecretAgent/1.0"),
        ("authorization", "Bearer sk-live-capturetestkey0123456789"),
    ];
    let a = post_json(&h, "/v1/chat/completions", &with_image, &meta).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(
        a.body.contains("anna.kowalski@posteo.de"),
        "the client still gets its values back"
    );
    let mut streamed = chat(SEEDED);
    streamed["stream"] = json!(true);
    let a = post_json(&h, "/v1/chat/completions", &streamed, &meta).await;
    assert_eq!(a.status, 200);
    assert!(a.body.contains("Kowalski"), "{}", a.body);
    flush(&h);

    let lines = captured(&d);
    assert_eq!(lines.len(), 2, "{}", raw_capture(&d));
    if std::env::var_os("SHOW_CAPTURE").is_some() {
        eprintln!("{}", raw_capture(&d));
    }
    let raw = raw_capture(&d);
    for secret in [
        "Kowalski",
        "posteo",
        "0532 0130",
        "901820",
        "SecretAgent",
        "sk-live",
        "kid_",
        "203.0.113",
        "GPSLatitude",
        "\"in\"",
    ] {
        assert!(!raw.contains(secret), "{secret} in the capture: {raw}");
    }
    let first = &lines[0];
    assert_eq!(first["retention"]["class"], "training");
    assert_eq!(first["retention"]["days"], 365);
    assert!(
        first["retention"]["expires_at"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    let tenant = first["tenant"].as_str().unwrap();
    assert!(tenant.starts_with("t_") && tenant.len() == 22, "{tenant}");
    assert_eq!(
        lines[1]["tenant"], tenant,
        "the same tenant hashes the same"
    );
    assert_eq!(first["endpoint"], "chat_completions");
    assert!(first["request"].get("user").is_none() && first["request"].get("metadata").is_none());
    let text = first["request"]["messages"][0]["content"][0]["text"]
        .as_str()
        .unwrap();
    assert!(
        text.contains("<EMAIL_"),
        "the redacted request, as forwarded: {text}"
    );
    let url = first["request"]["messages"][0]["content"][1]["image_url"]["url"]
        .as_str()
        .unwrap();
    assert!(url.starts_with("data:image/jpeg;base64,/9j/"), "{url}");
    let answer = first["response"]["choices"][0]["message"]["content"]
        .as_str()
        .unwrap();
    assert!(
        answer.contains("<EMAIL_"),
        "the answer as the upstream sent it, never restored: {answer}"
    );
    let m = client()
        .get(format!("http://{}/metrics", h.admin_addr).parse().unwrap())
        .await
        .unwrap();
    let m = String::from_utf8(m.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    assert!(m.contains("veilgate_capture_records_total{retention_class=\"usage\",retention_days=\"365\",outcome=\"written\"} 2"), "{m}");
    let events = lines[1]["response"]["events"].as_array().unwrap();
    assert!(events.len() >= 3, "{events:?}");
    assert!(lines[1]["response"].to_string().contains("<EMAIL_"));
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_files_rotate_by_size() {
    let mock = echo().await;
    let d = dir("rotate");
    let cfg = capture_config(&d, &mock.url(), "max_bytes = 2048");
    let p = d.join("veilgate.toml");
    std::fs::write(&p, &cfg).unwrap();
    let h = start(Some(p), Overrides::default()).await.unwrap();
    for i in 0..12 {
        let a = post_json(
            &h,
            "/v1/chat/completions",
            &chat(&format!("message number {i} {}", "lorem ipsum ".repeat(20))),
            &[("x-tenant", "in")],
        )
        .await;
        assert_eq!(a.status, 200);
    }
    flush(&h);
    let files: Vec<_> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("capture.jsonl"))
        .collect();
    assert!(files.len() >= 3, "{files:?}");
    for f in &files {
        assert!(
            std::fs::metadata(f).unwrap().len() <= 2048,
            "{}",
            f.display()
        );
    }
    assert_eq!(captured(&d).len(), 12);
    // A reload keeps the same sink (one writer per file).
    let before = h.state.current().capture.clone().unwrap();
    h.state.reload().unwrap();
    assert!(Arc::ptr_eq(
        &before,
        h.state.current().capture.as_ref().unwrap()
    ));
    h.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// The property: no detected value ever reaches the sink; nothing opted out is written.

mod property {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::{Config as PtConfig, TestRunner};
    use veilgate::engine::Engine;

    const EMAILS: [&str; 4] = [
        "anna.kowalski@posteo.de",
        "j.smith@example-mail.org",
        "lars.berg@firma-nord.se",
        "m.rossi@azienda.it",
    ];
    const PHONES: [&str; 3] = ["+49 30 901820", "+44 20 7946 0958", "+1 415 555 0132"];
    const IBANS: [&str; 2] = ["DE89 3704 0044 0532 0130 00", "GB82 WEST 1234 5698 7654 32"];
    const CARDS: [&str; 2] = ["4111 1111 1111 1111", "5500 0000 0000 0004"];
    const FILLER: [&str; 6] = [
        "please summarise this",
        "the meeting moved to Tuesday",
        "order 12345 shipped",
        "version 2.4.1 is out",
        "thanks!",
        "see the attached notes",
    ];

    #[derive(Debug, Clone)]
    struct Case {
        /// 0: opted in; 1: tenant out; 2: opted in + DNT; 3: opted in + GPC; 4: default.
        who: u8,
        parts: Vec<(u8, usize)>,
        stream: bool,
        field: u8,
    }

    fn case() -> impl Strategy<Value = Case> {
        (
            0u8..5,
            proptest::collection::vec((0u8..5, 0usize..8), 1..6),
            any::<bool>(),
            0u8..3,
        )
            .prop_map(|(who, parts, stream, field)| Case {
                who,
                parts,
                stream,
                field,
            })
    }

    fn text(c: &Case) -> String {
        c.parts
            .iter()
            .map(|&(kind, i)| match kind {
                0 => EMAILS[i % EMAILS.len()],
                1 => PHONES[i % PHONES.len()],
                2 => IBANS[i % IBANS.len()],
                3 => CARDS[i % CARDS.len()],
                _ => FILLER[i % FILLER.len()],
            })
            .collect::<Vec<_>>()
            .join(" ; ")
    }

    #[test]
    fn no_detected_value_and_nothing_opted_out_reaches_the_sink() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let mock = rt.block_on(MockUpstream::start(|req: &Recorded| {
            let v: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
            let text = v["messages"][0]["content"]
                .as_str()
                .unwrap_or("")
                .to_string();
            if v["stream"] == true {
                let mut events = vec![chat_delta(&text)];
                events.extend(chat_finish("stop"));
                Reply::sse(events)
            } else {
                Reply::json(
                    200,
                    json!({"choices":[{"message":{"role":"assistant","content":text}}]})
                        .to_string(),
                )
            }
        }));
        let d = dir("property");
        let p = d.join("veilgate.toml");
        std::fs::write(&p, capture_config(&d, &mock.url(), "")).unwrap();
        let h = rt.block_on(start(Some(p), Overrides::default())).unwrap();
        let engine = Engine::builtin().unwrap();
        let detected = Mutex::new(Vec::<String>::new());
        let opted_in = Mutex::new(0usize);
        let mut runner = TestRunner::new(PtConfig {
            cases: 40,
            failure_persistence: None,
            ..PtConfig::default()
        });
        runner
            .run(&case(), |c| {
                let t = text(&c);
                for det in engine.detect(&t) {
                    detected
                        .lock()
                        .unwrap()
                        .push(t[det.start..det.end].to_string());
                }
                let mut body = chat(&t);
                match c.field {
                    1 => body["user"] = json!(EMAILS[c.parts[0].1 % EMAILS.len()]),
                    2 => body["messages"][0]["name"] = json!("Anna Kowalski"),
                    _ => {}
                }
                if c.stream {
                    body["stream"] = json!(true);
                }
                let headers: Vec<(&str, &str)> = match c.who {
                    0 => vec![("x-tenant", "in")],
                    1 => vec![("x-tenant", "out")],
                    2 => vec![("x-tenant", "in"), ("dnt", "1")],
                    3 => vec![("x-tenant", "in"), ("sec-gpc", "1")],
                    _ => vec![],
                };
                let a = rt.block_on(post_json(&h, "/v1/chat/completions", &body, &headers));
                prop_assert_eq!(a.status, 200, "{}", a.body);
                if c.who == 0 {
                    *opted_in.lock().unwrap() += 1;
                }
                Ok(())
            })
            .unwrap();
        flush(&h);
        let raw = raw_capture(&d);
        let lines = captured(&d);
        let opted_in = *opted_in.lock().unwrap();
        assert!(opted_in > 0 && opted_in < 40, "{opted_in}");
        assert_eq!(lines.len(), opted_in, "only opted-in exchanges are written");
        let detected = detected.into_inner().unwrap();
        assert!(!detected.is_empty());
        for v in detected.iter().chain(
            EMAILS
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .iter(),
        ) {
            assert!(!raw.contains(v.as_str()), "{v} reached the sink: {raw}");
        }
        assert!(!raw.contains("Kowalski"));
        rt.block_on(h.shutdown());
    }
}

// ---------------------------------------------------------------------------------------
// The same rules as Tower layers, without the sidecar: PrivacyLayer outside, the capture
// inside, next to the handler.

#[tokio::test]
async fn tower_stack_with_privacy_layer_and_capture() {
    use std::convert::Infallible;
    use tower::{Layer, Service, ServiceExt};
    use veilgate::api_key::Tenant;
    use veilgate::engine::{Engine, Redactor};
    use veilgate::policy::{Policy, Schedule, TenantConfig};
    use veilgate::redact::PrivacyLayer;
    use veilgate::training::{CaptureLayer, CaptureOptions, CaptureSink, TenantHasher};

    let d = dir("tower");
    let policy = Arc::new(Policy::new(Schedule::default()).tenant(
        "in",
        toml::from_str::<TenantConfig>("training = \"opt-in\"").unwrap(),
    ));
    let sink = Arc::new(
        CaptureSink::open(
            CaptureOptions::new(d.join("capture.jsonl")),
            TenantHasher::new(b"k".to_vec()),
            Redactor::new(Arc::new(Engine::builtin().unwrap())),
        )
        .unwrap(),
    );
    let seen = Arc::new(Mutex::new(Vec::<Bytes>::new()));
    let seen2 = seen.clone();
    let handler = tower::service_fn(move |req: Request<_>| {
        let seen = seen2.clone();
        async move {
            let body: Bytes = BodyExt::collect(req.into_body())
                .await
                .map_err(|_| ())
                .unwrap()
                .to_bytes();
            seen.lock().unwrap().push(body.clone());
            let v: Value = serde_json::from_slice(&body).unwrap();
            let text = v["messages"][0]["content"]
                .as_str()
                .unwrap_or("")
                .to_string();
            let answer = json!({"choices":[{"message":{"role":"assistant","content":text}}]});
            Ok::<_, Infallible>(
                http::Response::builder()
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from(answer.to_string())))
                    .unwrap(),
            )
        }
    });
    let capture = CaptureLayer::new(sink.clone(), policy.clone()).layer(handler);
    let mut svc = PrivacyLayer::new().policy(policy).layer(capture);
    for (tenant, dnt) in [("in", false), ("out", false), ("in", true)] {
        let mut b =
            Request::post("/v1/chat/completions").header("content-type", "application/json");
        if dnt {
            b = b.header("dnt", "1");
        }
        let mut req = b
            .body(Full::new(Bytes::from(chat(SEEDED).to_string())))
            .unwrap();
        req.extensions_mut().insert(Tenant::from(tenant));
        let resp = svc.ready().await.unwrap().call(req).await.unwrap();
        let expect = if tenant == "in" && !dnt {
            "opted-in"
        } else {
            "opted-out"
        };
        assert_eq!(resp.headers()["x-veilgate-training"], expect);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert!(
            String::from_utf8_lossy(&body).contains("Kowalski"),
            "restored for the client"
        );
    }
    sink.flush();
    let seen = seen.lock().unwrap();
    assert!(
        serde_json::from_slice::<Value>(&seen[0])
            .unwrap()
            .get("store")
            .is_none()
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&seen[1]).unwrap()["store"],
        false
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&seen[2]).unwrap()["store"],
        false
    );
    let lines = captured(&d);
    assert_eq!(lines.len(), 1, "{}", raw_capture(&d));
    assert!(!raw_capture(&d).contains("Kowalski"));
}
