//! Retention through the sidecar over loopback: every span and log record veilgate emits
//! carries its retention class, days (per tenant) and expiry; access, security and billing
//! records say what they should; no record holds a seeded value or a raw key. Also the
//! per-tenant overrides (actions, allow-list, schedule) and each tenant-resolution step
//! as the records show them.
//!
//! Records are captured by a `tracing` layer installed once for this test binary; each
//! test tells its records apart by the tenant names it uses.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use common::{MockUpstream, Reply};
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use veilgate::sidecar::{Handle, Overrides, start};

const EMAIL: &str = "anna.kowalski@posteo.de";
const IBAN: &str = "DE89 3704 0044 0532 0130 00";
const RAW_KEY: &str = "sk-proj-RAWKEYvGx81QpLm2Zt7Hw4Ny";
const ALLOWED: &str = "helpdesk@acme-corp.io";

#[derive(Debug, Clone)]
struct Rec {
    kind: &'static str,
    target: String,
    fields: BTreeMap<String, String>,
}

impl Rec {
    fn get(&self, k: &str) -> Option<&str> {
        self.fields.get(k).map(String::as_str)
    }
}

#[derive(Default)]
struct Fields(BTreeMap<String, String>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().into(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
}

static RECORDS: Mutex<Vec<Rec>> = Mutex::new(Vec::new());

struct Capture;

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut f = Fields::default();
        attrs.record(&mut f);
        ctx.span(id).unwrap().extensions_mut().insert(f);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(f) = ctx.span(id).unwrap().extensions_mut().get_mut::<Fields>() {
            values.record(f);
        }
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut f = Fields::default();
        event.record(&mut f);
        RECORDS.lock().unwrap().push(Rec {
            kind: "event",
            target: event.metadata().target().into(),
            fields: f.0,
        });
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let span = ctx.span(&id).unwrap();
        let fields = span
            .extensions()
            .get::<Fields>()
            .map(|f| f.0.clone())
            .unwrap_or_default();
        RECORDS.lock().unwrap().push(Rec {
            kind: "span",
            target: span.metadata().target().into(),
            fields,
        });
    }
}

/// Installs the capture (once) and empties it; the guard keeps the tests of this file
/// from running at the same time, so each sees only its own records.
async fn capture() -> tokio::sync::MutexGuard<'static, ()> {
    static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let guard = SERIAL.lock().await;
    RECORDS.lock().unwrap().clear();
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(Capture))
            .expect("one subscriber per test binary");
    });
    guard
}

fn records() -> Vec<Rec> {
    RECORDS.lock().unwrap().clone()
}

/// Waits until `pred` holds for the captured records (records are written when answer
/// bodies end, which can be a moment after the client has read them).
async fn wait_for(what: &str, pred: impl Fn(&[Rec]) -> bool) -> Vec<Rec> {
    for _ in 0..400 {
        let r = records();
        if pred(&r) {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no {what} among the records: {:#?}", records());
}

fn temp_config(name: &str, body: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("veilgate-retention-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("veilgate.toml");
    std::fs::write(&p, body).unwrap();
    p
}

async fn sidecar(name: &str, config: &str) -> Handle {
    start(Some(temp_config(name, config)), Overrides::default())
        .await
        .expect("sidecar starts")
}

async fn post(url: String, body: String, headers: &[(&str, &str)]) -> (u16, String) {
    let mut b = Request::post(url).header("content-type", "application/json");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let client = Client::builder(TokioExecutor::new()).build_http();
    let resp = tokio::time::timeout(
        Duration::from_secs(20),
        client.request(b.body(Full::new(Bytes::from(body))).unwrap()),
    )
    .await
    .expect("no hang")
    .expect("request");
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

fn chat(content: &str, stream: bool) -> String {
    serde_json::json!({"model":"gpt-4o","stream":stream,"messages":[{"role":"user","content":content}]})
        .to_string()
}

/// Answers JSON with `usage`, or a stream whose last chunk carries `usage`.
async fn provider() -> MockUpstream {
    MockUpstream::start(|req| {
        if req.json()["stream"] == true {
            Reply::sse([
                r#"{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"hello"}}],"usage":null}"#.to_string(),
                r#"{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null}"#.to_string(),
                r#"{"id":"c1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":21,"completion_tokens":8,"total_tokens":29}}"#.to_string(),
                "[DONE]".to_string(),
            ])
        } else {
            Reply::json(
                200,
                r#"{"id":"c1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17}}"#,
            )
        }
    })
    .await
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// `expires_at` is `days` after a moment of this test run (a minute of slack either way;
/// metric events carry only the day).
fn expires_ok(expires_at: &str, days: u64) -> bool {
    let d = days * 86_400;
    let (lo, hi) = (now_secs() - 600 + d, now_secs() + 60 + d);
    let (lo, hi) = (
        veilgate::telemetry::rfc3339(lo),
        veilgate::telemetry::rfc3339(hi),
    );
    if expires_at.len() == 10 {
        return (&lo[..10]..=&hi[..10]).contains(&expires_at);
    }
    expires_at.len() == 20 && (lo.as_str()..=hi.as_str()).contains(&expires_at)
}

/// Every record in `recs` is stamped, with days from `days(class, record)`; none holds
/// a seeded value or the raw key.
fn check_all(recs: &[Rec], days: impl Fn(&str, &Rec) -> Option<u64>) {
    let secrets = [
        EMAIL,
        "anna.kowalski",
        "Kowalski",
        IBAN,
        "DE89",
        RAW_KEY,
        "RAWKEY",
    ];
    for r in recs.iter().filter(|r| r.target.starts_with("veilgate")) {
        let class = r
            .get("retention.class")
            .unwrap_or_else(|| panic!("no retention.class: {r:?}"));
        assert!(
            ["usage", "security", "billing"].contains(&class),
            "{class}: {r:?}"
        );
        let got: u64 = r
            .get("retention.days")
            .and_then(|d| d.parse().ok())
            .unwrap_or_else(|| panic!("no retention.days: {r:?}"));
        if let Some(want) = days(class, r) {
            assert_eq!(got, want, "{r:?}");
        }
        let exp = r
            .get("retention.expires_at")
            .unwrap_or_else(|| panic!("no retention.expires_at: {r:?}"));
        assert!(
            expires_ok(exp, got),
            "expires_at {exp} for {got} days: {r:?}"
        );
        let all = format!("{:?}", r.fields);
        for s in secrets {
            assert!(!all.contains(s), "{s:?} in a record: {r:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_are_stamped_per_tenant_and_carry_no_values() {
    let _serial = capture().await;
    let mock = provider().await;
    let config = format!(
        r#"
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
[[upstream]]
name = "openai"
base_url = "{url}"
[auth]
tenant_header = "x-tenant"
default_tenant = "rt-default"
[retention]
usage = 400
security = 200
billing = 3000
[tenants.rt-acme]
actions = {{ EMAIL = "hash" }}
allow = ["{ALLOWED}"]
retention = {{ usage = 30 }}
"#,
        url = mock.url()
    );
    let h = sidecar("stamped", &config).await;
    let url = format!("http://{}/v1/chat/completions", h.addr);
    let bearer = format!("Bearer {RAW_KEY}");
    let text = format!("I am Anna Kowalski, mail {EMAIL}, cc {ALLOWED}, IBAN {IBAN}");

    // Tenant rt-acme (trusted header): its action, allow-list and usage days apply.
    let (s, body) = post(
        url.clone(),
        chat(&text, false),
        &[("x-tenant", "rt-acme"), ("authorization", &bearer)],
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let seen = mock.requests()[0].body_str();
    assert!(!seen.contains(EMAIL) && !seen.contains("DE89"), "{seen}");
    assert!(
        seen.contains("[EMAIL:"),
        "the tenant's EMAIL action is hash: {seen}"
    );
    assert!(seen.contains(ALLOWED), "the tenant's allow-list: {seen}");
    assert!(
        mock.requests()[0].headers.get("x-tenant").is_none(),
        "the trusted tenant header is not forwarded"
    );

    // The default tenant, streaming: usage from the stream's last chunk.
    let (s, body) = post(
        url.clone(),
        chat(&text, true),
        &[("authorization", &bearer)],
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let seen = mock.requests()[1].body_str();
    assert!(seen.contains("<EMAIL_"), "the global action: {seen}");
    assert!(
        !seen.contains(ALLOWED),
        "rt-acme's allow-list is its own: {seen}"
    );

    // A body that cannot be scanned: a refusal, a security record.
    let (s, _) = post(url.clone(), "{not json".into(), &[("x-tenant", "rt-acme")]).await;
    assert_eq!(s, 400);

    fn access(t: &'static str) -> impl Fn(&&Rec) -> bool {
        move |r: &&Rec| r.target == "veilgate::access" && r.get("tenant.id") == Some(t)
    }
    let recs = wait_for("three access records", |r| {
        r.iter().filter(access("rt-acme")).count() == 2
            && r.iter().any(|x| access("rt-default")(&x))
            && r.iter().filter(|x| x.target == "veilgate::billing").count() >= 2
    })
    .await;
    let ours: Vec<Rec> = recs
        .iter()
        .filter(|r| {
            r.get("tenant.id")
                .is_none_or(|t| t == "rt-acme" || t == "rt-default")
        })
        .cloned()
        .collect();
    check_all(&ours, |class, r| match (class, r.get("tenant.id")) {
        ("usage", Some("rt-acme")) => Some(30),
        ("usage", Some(_)) => Some(400),
        ("security", _) => Some(200),
        ("billing", _) => Some(3000),
        _ => None,
    });

    let acme: Vec<&Rec> = recs.iter().filter(access("rt-acme")).collect();
    let ok = acme
        .iter()
        .find(|r| r.get("http.response.status_code") == Some("200"))
        .expect("the 200");
    assert_eq!(ok.get("retention.class"), Some("usage"));
    assert_eq!(ok.get("retention.days"), Some("30"));
    assert_eq!(ok.get("client.address"), Some("127.0.0.0/24"));
    assert_eq!(ok.get("url.path"), Some("/v1/chat/completions"));
    assert_eq!(ok.get("veilgate.upstream"), Some("openai"));
    assert_eq!(ok.get("outcome"), Some("complete"));
    assert!(ok.get("api_key.id").unwrap().starts_with("kid_"), "{ok:?}");
    let det = ok.get("detections").unwrap();
    assert!(det.contains("EMAIL:1") && det.contains("IBAN:1"), "{det}");
    let refused = acme
        .iter()
        .find(|r| r.get("http.response.status_code") == Some("400"))
        .expect("the 400");
    assert_eq!(refused.get("code"), Some("veilgate_invalid_json"));
    assert!(recs.iter().any(|r| r.target == "veilgate::security"
        && r.get("code") == Some("veilgate_invalid_json")
        && r.get("retention.days") == Some("200")));

    let billing: Vec<&Rec> = recs
        .iter()
        .filter(|r| r.target == "veilgate::billing")
        .collect();
    let b = |t: &str| {
        billing
            .iter()
            .find(|r| r.get("tenant.id") == Some(t))
            .unwrap_or_else(|| panic!("no billing record for {t}: {billing:?}"))
    };
    let (a, d) = (b("rt-acme"), b("rt-default"));
    assert_eq!(
        (a.get("usage.input_tokens"), a.get("usage.output_tokens")),
        (Some("12"), Some("5"))
    );
    assert_eq!(
        (d.get("usage.input_tokens"), d.get("usage.total_tokens")),
        (Some("21"), Some("29")),
        "usage read at the end of a stream"
    );
    assert_eq!(a.get("retention.days"), Some("3000"));

    // The request span closes with the tenant's class, days and expiry.
    let span = recs
        .iter()
        .find(|r| r.kind == "span" && r.get("tenant.id") == Some("rt-acme"))
        .expect("a closed veilgate.request span");
    assert_eq!(
        (span.get("retention.class"), span.get("retention.days")),
        (Some("usage"), Some("30"))
    );
    // Detections counted for the security class, as metric events.
    assert!(recs.iter().any(|r| r.target == "veilgate::metrics"
        && r.get("entity") == Some("EMAIL")
        && r.get("retention.class") == Some("security")));
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_failures_are_security_records_and_tenants_resolve_in_order() {
    let _serial = capture().await;
    let mock = provider().await;
    let (client_key, hash) = veilgate::api_key::mint().unwrap();
    let config = format!(
        r#"
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
[[upstream]]
name = "openai"
base_url = "{url}"
[auth]
tenant_header = "x-tenant"
[[auth.gateway_key]]
sha256_hex = "{hash}"
tenant = "rk-gw"
[retention]
security = 180
"#,
        url = mock.url()
    );
    let h = sidecar("auth", &config).await;
    let url = format!("http://{}/v1/chat/completions", h.addr);
    let wrong = format!("Bearer {RAW_KEY}");
    let (s, body) = post(url.clone(), chat("hi", false), &[("authorization", &wrong)]).await;
    assert_eq!(s, 401);
    assert!(!body.contains(RAW_KEY));
    // The gateway key's tenant wins over the (trusted) header.
    let good = format!("Bearer {client_key}");
    let (s, _) = post(
        url,
        chat("hi", false),
        &[("authorization", &good), ("x-tenant", "rk-header")],
    )
    .await;
    assert_eq!(s, 200);
    let recs = wait_for("the auth records", |r| {
        r.iter().any(|x| {
            x.target == "veilgate::access" && x.get("http.response.status_code") == Some("401")
        }) && r
            .iter()
            .any(|x| x.target == "veilgate::access" && x.get("tenant.id") == Some("rk-gw"))
    })
    .await;
    let sec = recs
        .iter()
        .find(|r| {
            r.target == "veilgate::security" && r.get("code") == Some("veilgate_invalid_api_key")
        })
        .expect("a security record for the refused key");
    assert_eq!(sec.get("retention.days"), Some("180"));
    let kid = sec.get("api_key.id").expect("the refused key's id");
    assert!(kid.starts_with("kid_"));
    let refused = recs
        .iter()
        .find(|r| {
            r.target == "veilgate::access" && r.get("http.response.status_code") == Some("401")
        })
        .unwrap();
    assert_eq!(refused.get("api_key.id"), Some(kid));
    assert_eq!(refused.get("code"), Some("veilgate_invalid_api_key"));
    assert!(
        !recs
            .iter()
            .any(|r| format!("{:?}", r.fields).contains(&client_key)
                || format!("{:?}", r.fields).contains(RAW_KEY)),
        "no record holds a presented key"
    );
    h.shutdown().await;
}
