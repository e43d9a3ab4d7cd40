//! The sidecar over loopback: proxying, routing, headers, upstream failures, admin
//! endpoints, hot reload and graceful shutdown.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use common::{Gate, MockUpstream, Reply, chat_delta, chat_finish};
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use veilgate::sidecar::{Config, Handle, Overrides, start};

const SEEDED: &str =
    "I am Anna Kowalski, mail anna.kowalski@posteo.de, IBAN DE89 3704 0044 0532 0130 00";

fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

fn temp_config(name: &str, body: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("veilgate-sidecar-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("veilgate.toml");
    std::fs::write(&p, body).unwrap();
    p
}

fn config_for(openai: &str, anthropic: &str) -> String {
    format!(
        r#"
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
[[upstream]]
name = "openai"
base_url = "{openai}"
response_timeout_ms = 2000
[[upstream]]
name = "anthropic"
provider = "anthropic"
base_url = "{anthropic}"
response_timeout_ms = 2000
[[route]]
path_prefix = "/v1/messages"
upstream = "anthropic"
[redact]
key_env = "VEILGATE_TEST_KEY_UNSET"
"#
    )
}

async fn sidecar(name: &str, config: &str) -> (Handle, PathBuf) {
    let path = temp_config(name, config);
    let h = start(Some(path.clone()), Overrides::default())
        .await
        .expect("sidecar starts");
    (h, path)
}

async fn post(url: String, body: &str, headers: &[(&str, &str)]) -> (u16, http::HeaderMap, String) {
    let mut b = Request::post(url).header("content-type", "application/json");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let req = b.body(Full::new(Bytes::from(body.to_string()))).unwrap();
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
    (status, headers, String::from_utf8(body.to_vec()).unwrap())
}

async fn get(url: String) -> (u16, String) {
    let resp = client().get(url.parse().unwrap()).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

fn chat(content: &str) -> String {
    serde_json::json!({"model":"gpt-4o","messages":[{"role":"user","content":content}]}).to_string()
}

/// An upstream that answers with what it received, as the assistant's message.
async fn echo() -> MockUpstream {
    MockUpstream::start(|req| {
        let content = req.json()["messages"][0]["content"].as_str().unwrap_or("").to_string();
        Reply::json(
            200,
            serde_json::json!({"id":"c1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":format!("you said: {content}")},"finish_reason":"stop"}]}).to_string(),
        )
    })
    .await
}

#[test]
fn example_and_builtin_configs_are_valid() {
    let c = Config::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/veilgate.toml"
    )))
    .expect("examples/veilgate.toml is valid");
    assert_eq!(c.upstreams.len(), 4);
    let b = Config::builtin();
    assert_eq!(b.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(
        b.upstream("anthropic").unwrap().base_url,
        "https://api.anthropic.com"
    );
}

#[test]
fn config_check_reports_line_key_and_reason() {
    let p = temp_config(
        "check",
        "listen = \"127.0.0.1:1\"\n\n[[upstream]]\nname = \"a\"\nbase_url = \"https://x\"\nretries = 3\n",
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_veilgate"))
        .args(["config", "check"])
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(":6") && text.contains("retries") && text.contains("unknown field"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxies_with_pseudonyms_restored_and_headers_fixed() {
    let mock = echo().await;
    let (h, _) = sidecar("proxy", &config_for(&mock.url(), &mock.url())).await;
    let (status, headers, body) = post(
        format!("http://{}/v1/chat/completions", h.addr),
        &chat(SEEDED),
        &[
            ("connection", "x-hop"),
            ("x-hop", "secret-hop"),
            ("authorization", "Bearer sk-test"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(headers.get("connection").is_none());
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["choices"][0]["message"]["content"],
        format!("you said: {SEEDED}")
    );
    let seen = &mock.requests()[0];
    let sent = seen.body_str();
    for secret in ["Kowalski", "posteo", "0532 0130"] {
        assert!(
            !sent.contains(secret),
            "{secret} reached the upstream: {sent}"
        );
    }
    assert!(
        seen.token("EMAIL").is_some() && seen.token("IBAN").is_some(),
        "{sent}"
    );
    assert_eq!(seen.headers["host"], mock.addr().to_string().as_str());
    assert!(
        seen.headers.get("x-hop").is_none(),
        "hop-by-hop header forwarded"
    );
    assert_eq!(seen.headers["authorization"], "Bearer sk-test");
    assert_eq!(seen.headers["accept-encoding"], "identity");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_by_path_and_by_header() {
    let openai = echo().await;
    let anthropic = MockUpstream::replying(Reply::json(
        200,
        r#"{"type":"message","content":[{"type":"text","text":"hi"}]}"#,
    ))
    .await;
    let (h, _) = sidecar("routes", &config_for(&openai.url(), &anthropic.url())).await;
    let body =
        r#"{"model":"claude","max_tokens":10,"messages":[{"role":"user","content":"hello"}]}"#;
    let (s, _, _) = post(format!("http://{}/v1/messages", h.addr), body, &[]).await;
    assert_eq!(s, 200);
    assert_eq!(anthropic.requests().len(), 1);
    let (s, _, _) = post(
        format!("http://{}/v1/chat/completions", h.addr),
        &chat("x"),
        &[("x-veilgate-upstream", "anthropic")],
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(anthropic.requests().len(), 2);
    assert!(
        anthropic.requests()[1]
            .headers
            .get("x-veilgate-upstream")
            .is_none()
    );
    assert_eq!(openai.requests().len(), 0);
    let (s, _, body) = post(
        format!("http://{}/v1/chat/completions", h.addr),
        &chat("x"),
        &[("x-veilgate-upstream", "nope")],
    )
    .await;
    assert_eq!(s, 400, "{body}");
    assert!(body.contains("veilgate_unknown_upstream"));
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_failures_are_provider_shaped() {
    // Nothing listens here.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    // Accepts, never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_url = format!("http://{}", silent.local_addr().unwrap());
    let keep = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let (h, _) = sidecar("fail", &config_for(&dead_url, &silent_url)).await;
    let (s, _, body) = post(
        format!("http://{}/v1/chat/completions", h.addr),
        &chat(SEEDED),
        &[],
    )
    .await;
    assert_eq!(s, 502, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], "veilgate_upstream_unreachable");
    assert!(!body.contains("posteo"));
    let (s, _, body) = post(
        format!("http://{}/v1/messages", h.addr),
        r#"{"messages":[]}"#,
        &[],
    )
    .await;
    assert_eq!(s, 504, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (v["type"].as_str(), v["error"]["code"].as_str()),
        (Some("error"), Some("veilgate_upstream_timeout"))
    );
    let (_, metrics) = get(format!("http://{}/metrics", h.admin_addr)).await;
    assert!(
        metrics.contains("veilgate_upstream_errors_total{retention_class=\"usage\",retention_days=\"365\",upstream=\"openai\",kind=\"connect\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics
            .contains("veilgate_upstream_errors_total{retention_class=\"usage\",retention_days=\"365\",upstream=\"anthropic\",kind=\"timeout\"} 1"),
        "{metrics}"
    );
    keep.abort();
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_endpoints_and_metrics_carry_no_values() {
    let mock = echo().await;
    let (h, _) = sidecar("admin", &config_for(&mock.url(), &mock.url())).await;
    post(
        format!("http://{}/v1/chat/completions", h.addr),
        &chat(SEEDED),
        &[("authorization", "Bearer sk-proj-RAWKEY123")],
    )
    .await;
    let (s, _, _) = post(
        format!("http://{}/v1/chat/completions", h.addr),
        "{not json",
        &[],
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(get(format!("http://{}/healthz", h.admin_addr)).await.0, 200);
    assert_eq!(get(format!("http://{}/readyz", h.admin_addr)).await.0, 200);
    let (s, m) = get(format!("http://{}/metrics", h.admin_addr)).await;
    assert_eq!(s, 200);
    for line in m.lines().filter(|l| !l.starts_with('#')) {
        assert!(
            line.contains("retention_class=\"") && line.contains("retention_days=\""),
            "a series without its retention: {line}"
        );
    }
    assert!(m.contains("veilgate_detections_total{retention_class=\"security\",retention_days=\"365\",direction=\"request\",entity=\"EMAIL\",action=\"pseudonymize\"} 1"), "{m}");
    assert!(m.contains("veilgate_refusals_total{retention_class=\"security\",retention_days=\"365\",direction=\"request\",status=\"400\",code=\"veilgate_invalid_json\"} 1"), "{m}");
    assert!(
        m.contains("veilgate_requests_total{retention_class=\"usage\",retention_days=\"365\",upstream=\"openai\",status=\"200\"} 1"),
        "{m}"
    );
    for leaked in ["Kowalski", "posteo", "DE89", "RAWKEY", "sk-proj"] {
        assert!(!m.contains(leaked), "{leaked} in /metrics");
    }
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_applies_valid_configs_and_refuses_invalid_ones() {
    let first = echo().await;
    let second = echo().await;
    let (h, path) = sidecar("reload", &config_for(&first.url(), &first.url())).await;
    post(
        format!("http://{}/v1/chat/completions", h.addr),
        &chat("a"),
        &[],
    )
    .await;
    assert_eq!(first.requests().len(), 1);

    std::fs::write(&path, config_for(&second.url(), &second.url())).unwrap();
    h.state.reload().expect("valid config reloads");
    post(
        format!("http://{}/v1/chat/completions", h.addr),
        &chat("b"),
        &[],
    )
    .await;
    assert_eq!(second.requests().len(), 1);

    std::fs::write(
        &path,
        "[[upstream]]\nname = \"x\"\nbase_url = \"not a url\"\n",
    )
    .unwrap();
    assert!(h.state.reload().is_err());
    let (s, _, _) = post(
        format!("http://{}/v1/chat/completions", h.addr),
        &chat("c"),
        &[],
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        second.requests().len(),
        2,
        "the old configuration keeps serving"
    );
    let (_, m) = get(format!("http://{}/metrics", h.admin_addr)).await;
    assert!(
        m.contains("veilgate_config_reloads_total{retention_class=\"security\",retention_days=\"365\",outcome=\"rejected\"}"),
        "{m}"
    );

    // The file watch picks up a change by itself.
    std::fs::write(&path, config_for(&first.url(), &first.url())).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        post(
            format!("http://{}/v1/chat/completions", h.addr),
            &chat("d"),
            &[],
        )
        .await;
        if first.requests().len() > 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "file watch did not reload"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_an_in_flight_stream() {
    let gate = Gate::new(Duration::from_secs(20));
    let g = gate.clone();
    let mock = MockUpstream::start(move |_| {
        let mut events = vec![chat_delta("first "), chat_delta("second")];
        events.extend(chat_finish("stop"));
        Reply::sse(events).gate_last(&g)
    })
    .await;
    let (h, _) = sidecar("drain", &config_for(&mock.url(), &mock.url())).await;
    let addr = h.addr;
    let admin = h.admin_addr;
    let req = Request::post(format!("http://{addr}/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(chat("stream please"))))
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(20), client().request(req))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let first = tokio::time::timeout(Duration::from_secs(20), body.frame())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(!first.into_data().unwrap().is_empty());
    // SIGTERM-equivalent while the stream is open; the upstream finishes afterwards.
    let shutdown = tokio::spawn(h.shutdown());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (s, _) = get(format!("http://{admin}/readyz")).await;
    assert_eq!(s, 503, "draining is not ready");
    gate.open();
    let rest = tokio::time::timeout(Duration::from_secs(20), body.collect())
        .await
        .unwrap()
        .unwrap()
        .to_bytes();
    let rest = String::from_utf8(rest.to_vec()).unwrap();
    assert!(
        rest.contains("[DONE]") || rest.contains("finish_reason"),
        "{rest}"
    );
    tokio::time::timeout(Duration::from_secs(20), shutdown)
        .await
        .unwrap()
        .unwrap();
    // New connections are refused after shutdown.
    assert!(std::net::TcpStream::connect(addr).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_keys_are_verified_and_swapped_for_the_provider_key() {
    let mock = echo().await;
    let key_file = temp_config("provider-key", "sk-upstream-real-key-123\n");
    let (client_key, hash) = veilgate::api_key::mint().unwrap();
    let config = format!(
        r#"
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
[[upstream]]
name = "openai"
base_url = "{url}"
api_key_file = {key_file:?}
[auth]
[[auth.gateway_key]]
sha256_hex = "{hash}"
tenant = "acme"
"#,
        url = mock.url(),
        key_file = key_file.display().to_string(),
    );
    let (h, _) = sidecar("auth", &config).await;
    let url = format!("http://{}/v1/chat/completions", h.addr);
    let (s, _, body) = post(url.clone(), &chat("hi"), &[]).await;
    assert_eq!(s, 401, "{body}");
    assert!(body.contains("veilgate_missing_api_key"), "{body}");
    let (s, _, body) = post(
        url.clone(),
        &chat("hi"),
        &[("authorization", "Bearer vg-wrong-key")],
    )
    .await;
    assert_eq!(s, 401, "{body}");
    assert!(!body.contains("vg-wrong-key"));
    assert!(
        mock.requests().is_empty(),
        "refused requests never reach the upstream"
    );
    let bearer = format!("Bearer {client_key}");
    let (s, _, body) = post(url, &chat("hi"), &[("authorization", bearer.as_str())]).await;
    assert_eq!(s, 200, "{body}");
    // An Azure-style upstream takes the key in `api-key`.
    let azure = echo().await;
    let config = format!(
        "listen = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n[[upstream]]\nname = \"azure\"\nbase_url = \"{}/openai\"\napi_key_file = {:?}\napi_key_header = \"api-key\"\n",
        azure.url(),
        key_file.display().to_string()
    );
    let (az, _) = sidecar("azure", &config).await;
    let (s, _, body) = post(
        format!(
            "http://{}/deployments/gpt-4o/chat/completions?api-version=2024-10-21",
            az.addr
        ),
        &chat("hi"),
        &[("api-key", "client-side-key")],
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let seen = &azure.requests()[0];
    assert_eq!(seen.headers["api-key"], "sk-upstream-real-key-123");
    assert!(!seen.headers.contains_key("authorization"));
    assert_eq!(
        seen.path,
        "/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"
    );
    az.shutdown().await;
    let seen = &mock.requests()[0];
    assert_eq!(
        seen.headers["authorization"],
        "Bearer sk-upstream-real-key-123"
    );
    let (_, m) = get(format!("http://{}/metrics", h.admin_addr)).await;
    assert!(
        !m.contains(&client_key) && !m.contains("sk-upstream"),
        "{m}"
    );
    h.shutdown().await;
}
