//! The api_key layer as a Tower service, with mock upstreams that record what they saw.
#![cfg(feature = "redact")]

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::Value;
use tower::{Service, ServiceBuilder, ServiceExt};
use veilgate::api_key::{
    self, ApiKeyLayer, GatewayKey, KeyContext, KeyId, Pepper, ProviderKey, Tenant, constant_time_eq,
};

const PROVIDER_KEY: &str = "sk-proj-REALPROVIDERKEY0123456789";

/// What the upstream saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    headers: HeaderMap,
    ctx: Option<KeyContext>,
}

type Log = Arc<Mutex<Vec<Seen>>>;

fn upstream(
    log: Log,
) -> impl Service<
    Request<Full<Bytes>>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future: Send,
> + Clone {
    tower::service_fn(move |req: Request<Full<Bytes>>| {
        let log = log.clone();
        async move {
            log.lock().unwrap().push(Seen {
                headers: req.headers().clone(),
                ctx: req.extensions().get::<KeyContext>().cloned(),
            });
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
        }
    })
}

fn pepper() -> Pepper {
    Pepper::new(*b"test pepper, 32 bytes long......")
}

fn request(path: &str, headers: &[(&str, &str)]) -> Request<Full<Bytes>> {
    let mut b = Request::post(path);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Full::new(Bytes::new())).unwrap()
}

/// Sends one request through `layer` and returns the status, the body and what the
/// upstream saw (`None`: it was not called).
async fn send(layer: ApiKeyLayer, req: Request<Full<Bytes>>) -> (StatusCode, Bytes, Option<Seen>) {
    let log = Log::default();
    let svc = ServiceBuilder::new()
        .layer(layer)
        .service(upstream(log.clone()));
    let resp = svc.oneshot(req).await.unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let seen = log.lock().unwrap().pop();
    (status, body, seen)
}

fn gateway(client_key: &str) -> ApiKeyLayer {
    ApiKeyLayer::new(pepper())
        .gateway_keys(vec![
            GatewayKey {
                sha256_hex: api_key::hash("vg-some-other-key"),
                tenant: Some("other".into()),
                name: Some("other".into()),
            },
            GatewayKey {
                sha256_hex: api_key::hash(client_key),
                tenant: Some("acme".into()),
                name: Some("acme-prod".into()),
            },
        ])
        .provider_key(ProviderKey::new(PROVIDER_KEY).unwrap())
}

fn all_header_bytes(h: &HeaderMap) -> String {
    h.iter()
        .map(|(k, v)| format!("{k}: {}\n", String::from_utf8_lossy(v.as_bytes())))
        .collect()
}

#[test]
fn key_id_is_stable_per_pepper_and_hides_the_key() {
    let key = b"sk-live-abcdefghijklmnop";
    let a = KeyId::of(&pepper(), key);
    assert_eq!(a, KeyId::of(&pepper(), key));
    assert_ne!(a, KeyId::of(&Pepper::new(*b"another pepper"), key));
    assert_ne!(a, KeyId::of(&pepper(), b"sk-live-abcdefghijklmnoq"));
    let s = a.as_str();
    assert!(s.starts_with("kid_"), "{s}");
    assert_eq!(s.len(), 4 + 16);
    assert!(
        s[4..]
            .bytes()
            .all(|b| b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".contains(&b))
    );
    assert!(!s.contains("sk-live") && !s.contains("abcdef"));
    assert_eq!(a.to_string(), s);
}

#[tokio::test]
async fn all_three_headers_give_the_same_key_id_and_are_marked_sensitive() {
    let key = "sk-test-1234567890";
    let expected = KeyId::of(&pepper(), key.as_bytes());
    for (name, value) in [
        ("authorization", format!("Bearer {key}")),
        ("authorization", format!("bearer  {key} ")),
        ("x-api-key", key.to_owned()),
        ("api-key", key.to_owned()),
    ] {
        let layer = ApiKeyLayer::new(pepper());
        let (status, _, seen) =
            send(layer, request("/v1/chat/completions", &[(name, &value)])).await;
        assert_eq!(status, StatusCode::OK);
        let seen = seen.expect("upstream called");
        let ctx = seen.ctx.expect("KeyContext inserted");
        assert_eq!(ctx.key_id.as_ref(), Some(&expected), "{name}: {value}");
        assert!(!ctx.gateway_verified);
        assert!(seen.headers[name].is_sensitive(), "{name}");
        // Not gateway mode: the client's key is forwarded as is.
        assert_eq!(seen.headers[name], value.as_str());
        assert!(!format!("{:?}", seen.headers).contains(key));
    }
}

#[tokio::test]
async fn no_key_passes_without_a_key_id() {
    for headers in [&[][..], &[("authorization", "Basic dXNlcjpwYXNz")][..]] {
        let (status, _, seen) =
            send(ApiKeyLayer::new(pepper()), request("/v1/messages", headers)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(seen.unwrap().ctx.unwrap(), KeyContext::default());
    }
}

#[tokio::test]
async fn gateway_key_is_swapped_for_the_provider_key() {
    let (client_key, _) = api_key::mint().unwrap();
    let cases = [
        (
            "/v1/chat/completions",
            "authorization",
            format!("Bearer {client_key}"),
        ),
        ("/v1/chat/completions", "api-key", client_key.clone()),
        ("/v1/messages", "x-api-key", client_key.clone()),
        (
            "/v1/messages",
            "authorization",
            format!("Bearer {client_key}"),
        ),
    ];
    for (path, name, value) in cases {
        let (status, _, seen) = send(gateway(&client_key), request(path, &[(name, &value)])).await;
        assert_eq!(status, StatusCode::OK, "{path} {name}");
        let seen = seen.expect("upstream called");
        let all = all_header_bytes(&seen.headers);
        assert!(!all.contains(&client_key), "client key forwarded: {all}");
        if path == "/v1/messages" {
            assert_eq!(seen.headers["x-api-key"], PROVIDER_KEY);
            assert!(seen.headers["x-api-key"].is_sensitive());
            assert!(!seen.headers.contains_key("authorization"));
        } else {
            assert_eq!(
                seen.headers["authorization"],
                format!("Bearer {PROVIDER_KEY}").as_str()
            );
            assert!(seen.headers["authorization"].is_sensitive());
            assert!(!seen.headers.contains_key("x-api-key"));
            assert!(!seen.headers.contains_key("api-key"));
        }
        let ctx = seen.ctx.unwrap();
        assert!(ctx.gateway_verified);
        assert_eq!(ctx.tenant, Some(Tenant::from("acme")));
        assert_eq!(
            ctx.key_id,
            Some(KeyId::of(&pepper(), client_key.as_bytes()))
        );
    }
}

#[tokio::test]
async fn anthropic_version_header_picks_the_anthropic_key_header() {
    let (client_key, _) = api_key::mint().unwrap();
    let bearer = format!("Bearer {client_key}");
    let req = request(
        "/custom/route",
        &[
            ("authorization", &bearer),
            ("anthropic-version", "2023-06-01"),
        ],
    );
    let (_, _, seen) = send(gateway(&client_key), req).await;
    let seen = seen.unwrap();
    assert_eq!(seen.headers["x-api-key"], PROVIDER_KEY);
    assert!(!seen.headers.contains_key("authorization"));
}

#[tokio::test]
async fn azure_style_upstreams_get_the_key_in_api_key() {
    let (client_key, _) = api_key::mint().unwrap();
    let bearer = format!("Bearer {client_key}");
    let req = request(
        "/openai/deployments/gpt-4o/chat/completions",
        &[("authorization", &bearer)],
    );
    let layer = gateway(&client_key).provider_key_header(http::HeaderName::from_static("api-key"));
    let (status, _, seen) = send(layer, req).await;
    assert_eq!(status, StatusCode::OK);
    let seen = seen.unwrap();
    assert_eq!(seen.headers["api-key"], PROVIDER_KEY);
    assert!(seen.headers["api-key"].is_sensitive());
    assert!(!seen.headers.contains_key("authorization"));
}

#[tokio::test]
async fn host_tenant_is_kept() {
    let (client_key, _) = api_key::mint().unwrap();
    let mut req = request("/v1/chat/completions", &[("x-api-key", &client_key)]);
    req.extensions_mut().insert(Tenant::from("from-host"));
    let (_, _, seen) = send(gateway(&client_key), req).await;
    assert_eq!(
        seen.unwrap().ctx.unwrap().tenant,
        Some(Tenant::from("from-host"))
    );

    // Also without gateway mode.
    let mut req = request("/v1/chat/completions", &[]);
    req.extensions_mut().insert(Tenant::from("from-host"));
    let (_, _, seen) = send(ApiKeyLayer::new(pepper()), req).await;
    assert_eq!(
        seen.unwrap().ctx.unwrap().tenant,
        Some(Tenant::from("from-host"))
    );
}

#[tokio::test]
async fn wrong_or_missing_key_is_a_provider_shaped_401_and_upstream_is_not_called() {
    let (client_key, _) = api_key::mint().unwrap();
    let wrong = "vg-WRONGwrongWRONGwrong0123456789";
    let wrong_bearer = format!("Bearer {wrong}");
    let wrong_bearer = wrong_bearer.as_str();
    let cases = [
        (
            "/v1/chat/completions",
            vec![("authorization", wrong_bearer)],
            "veilgate_invalid_api_key",
        ),
        (
            "/v1/chat/completions",
            vec![("api-key", wrong)],
            "veilgate_invalid_api_key",
        ),
        (
            "/v1/messages",
            vec![("x-api-key", wrong)],
            "veilgate_invalid_api_key",
        ),
        ("/v1/chat/completions", vec![], "veilgate_missing_api_key"),
        (
            "/v1/messages",
            vec![("authorization", "Bearer ")],
            "veilgate_missing_api_key",
        ),
        (
            "/v1/messages",
            vec![("x-api-key", PROVIDER_KEY)],
            "veilgate_invalid_api_key",
        ),
    ];
    for (path, headers, code) in cases {
        let (status, body, seen) = send(gateway(&client_key), request(path, &headers)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path} {headers:?}");
        assert!(seen.is_none(), "upstream called for {path} {headers:?}");
        let text = std::str::from_utf8(&body).unwrap();
        assert!(
            !text.contains(wrong) && !text.contains(PROVIDER_KEY),
            "{text}"
        );
        let v: Value = serde_json::from_slice(&body).unwrap();
        if path == "/v1/messages" {
            assert_eq!(v["type"], "error", "{text}");
            assert_eq!(v["error"]["type"], "authentication_error");
            assert_eq!(v["error"]["code"], code);
        } else {
            assert_eq!(v["error"]["type"], "invalid_request_error", "{text}");
            assert_eq!(v["error"]["code"], code);
            assert_eq!(v["error"]["param"], Value::Null);
        }
    }
}

#[tokio::test]
async fn empty_gateway_list_refuses_everything() {
    let layer = ApiKeyLayer::new(pepper()).gateway_keys(vec![]);
    let (status, _, seen) = send(
        layer,
        request("/v1/chat/completions", &[("x-api-key", "anything")]),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(seen.is_none());
}

#[tokio::test]
async fn works_as_an_axum_router_layer() {
    use axum::{Extension, Router, routing::post};
    let (client_key, _) = api_key::mint().unwrap();
    let app = Router::new()
        .route(
            "/v1/chat/completions",
            post(
                |Extension(ctx): Extension<KeyContext>, headers: HeaderMap| async move {
                    format!(
                        "{} {}",
                        ctx.tenant.unwrap(),
                        headers["authorization"].to_str().unwrap()
                    )
                },
            ),
        )
        .layer(gateway(&client_key));
    let req = Request::post("/v1/chat/completions")
        .header("authorization", format!("Bearer {client_key}"))
        .body(axum::body::Body::empty())
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], format!("acme Bearer {PROVIDER_KEY}").as_bytes());

    let req = Request::post("/v1/chat/completions")
        .body(axum::body::Body::empty())
        .unwrap();
    assert_eq!(
        app.oneshot(req).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

#[test]
fn debug_output_holds_no_secret() {
    let pepper_bytes = "PEPPER-SECRET-VALUE-42";
    let (client_key, _) = api_key::mint().unwrap();
    let provider_key = ProviderKey::new(PROVIDER_KEY).unwrap();
    let pepper = Pepper::new(pepper_bytes);
    let layer = ApiKeyLayer::new(pepper.clone())
        .gateway_keys(vec![GatewayKey {
            sha256_hex: api_key::hash(&client_key),
            tenant: None,
            name: None,
        }])
        .provider_key(provider_key.clone());
    let svc = format!("{:?}", tower::Layer::layer(&layer, ()));
    for dbg in [
        format!("{pepper:?}"),
        format!("{provider_key:?}"),
        format!("{layer:?}"),
        format!("{layer:#?}"),
        svc,
    ] {
        assert!(dbg.contains("<redacted>"), "{dbg}");
        for secret in [pepper_bytes, PROVIDER_KEY, &client_key, "80, 69, 80"] {
            assert!(!dbg.contains(secret), "{secret} in {dbg}");
        }
    }
}

#[test]
fn secrets_load_from_files_and_env() {
    let dir = std::env::temp_dir().join(format!("veilgate-api-key-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("pepper");
    std::fs::write(&file, "  file pepper\n").unwrap();
    let from_file = Pepper::from_file(&file).unwrap();
    assert_eq!(
        KeyId::of(&from_file, b"k"),
        KeyId::of(&Pepper::new("file pepper"), b"k")
    );
    let pk_file = dir.join("provider");
    std::fs::write(&pk_file, format!("{PROVIDER_KEY}\r\n")).unwrap();
    assert!(ProviderKey::from_file(&pk_file).is_ok());
    std::fs::write(&pk_file, "\n").unwrap();
    assert!(ProviderKey::from_file(&pk_file).is_err());
    std::fs::write(&pk_file, "sk with space").unwrap();
    let err = ProviderKey::from_file(&pk_file).unwrap_err().to_string();
    assert!(!err.contains("sk with space"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();

    let missing = "VEILGATE_TEST_SURELY_UNSET_VARIABLE";
    let err = Pepper::from_env(missing).unwrap_err();
    assert!(err.to_string().contains(missing));
    assert!(ProviderKey::from_env(missing).is_err());
    assert!(Pepper::from_file(dir.join("nope")).is_err());
}

#[test]
fn constant_time_eq_is_equality() {
    assert!(constant_time_eq(b"", b""));
    assert!(constant_time_eq(b"abc", b"abc"));
    assert!(!constant_time_eq(b"abc", b"abd"));
    assert!(!constant_time_eq(b"abc", b"xbc"));
    assert!(!constant_time_eq(b"abc", b"ab"));
    let a = [0u8; 32];
    for i in 0..32 {
        for bit in 0..8 {
            let mut b = a;
            b[i] ^= 1 << bit;
            assert!(!constant_time_eq(&a, &b));
            assert!(constant_time_eq(&b, &b.clone()));
        }
    }
}

#[test]
fn mint_and_hash() {
    let (k1, h1) = api_key::mint().unwrap();
    let (k2, h2) = api_key::mint().unwrap();
    assert_ne!(k1, k2);
    assert_ne!(h1, h2);
    assert!(k1.starts_with("vg-"));
    assert_eq!(k1.len(), 3 + 43);
    assert!(
        k1[3..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    assert_eq!(h1, api_key::hash(&k1));
    assert_eq!(h1, api_key::hash(&format!("{k1}\n")));
    assert_eq!(h1.len(), 64);
    assert!(
        h1.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    assert!(!h1.contains(&k1[3..]));
}

#[tokio::test]
async fn tenant_resolution_order() {
    let tenant_of = |seen: Option<Seen>| {
        seen.unwrap()
            .ctx
            .unwrap()
            .tenant
            .map(|t| t.as_str().to_string())
    };
    let kid = KeyId::of(&pepper(), b"sk-client-mapped")
        .as_str()
        .to_string();
    let layer = || {
        ApiKeyLayer::new(pepper())
            .key_tenants([(kid.clone(), "mapped")])
            .trusted_tenant_header(http::HeaderName::from_static("x-veilgate-tenant"))
            .default_tenant("fallback")
    };
    // 5: nothing names one -> the default.
    let (_, _, seen) = send(layer(), request("/v1/chat/completions", &[])).await;
    assert_eq!(tenant_of(seen).as_deref(), Some("fallback"));
    // 4: a trusted header (removed before forwarding).
    let (_, _, seen) = send(
        layer(),
        request("/v1/chat/completions", &[("x-veilgate-tenant", "hdr")]),
    )
    .await;
    let seen = seen.unwrap();
    assert!(seen.headers.get("x-veilgate-tenant").is_none());
    assert_eq!(seen.ctx.unwrap().tenant.unwrap().as_str(), "hdr");
    // ...but only a name: free text there (it would land in every record) is ignored.
    for odd in ["jane.doe@acme.io", "two words", &"x".repeat(129)] {
        let (_, _, seen) = send(
            layer(),
            request("/v1/chat/completions", &[("x-veilgate-tenant", odd)]),
        )
        .await;
        assert_eq!(tenant_of(seen).as_deref(), Some("fallback"), "{odd}");
    }
    // 3: the key-id mapping beats the header.
    let (_, _, seen) = send(
        layer(),
        request(
            "/v1/chat/completions",
            &[
                ("authorization", "Bearer sk-client-mapped"),
                ("x-veilgate-tenant", "hdr"),
            ],
        ),
    )
    .await;
    assert_eq!(tenant_of(seen).as_deref(), Some("mapped"));
    // 1: what the host application put in the extensions beats everything.
    let mut req = request(
        "/v1/chat/completions",
        &[("authorization", "Bearer sk-client-mapped")],
    );
    req.extensions_mut().insert(Tenant::new("host"));
    let (_, _, seen) = send(layer(), req).await;
    assert_eq!(tenant_of(seen).as_deref(), Some("host"));
    // Without a trusted header configured, a client cannot pick its tenant.
    let plain = ApiKeyLayer::new(pepper()).default_tenant("fallback");
    let (_, _, seen) = send(
        plain,
        request("/v1/chat/completions", &[("x-veilgate-tenant", "evil")]),
    )
    .await;
    assert_eq!(tenant_of(seen).as_deref(), Some("fallback"));
}

#[tokio::test]
async fn pseudonyms_are_keyed_per_tenant_through_both_layers() {
    use std::sync::Arc as StdArc;
    use veilgate::engine::{Engine, Key, Redactor};
    use veilgate::redact::RedactLayer;
    let engine = StdArc::new(Engine::builtin().unwrap());
    let sent = StdArc::new(Mutex::new(Vec::<String>::new()));
    let s2 = sent.clone();
    let upstream = tower::service_fn(
        move |req: Request<veilgate::redact::RedactBody<Full<Bytes>>>| {
            let s2 = s2.clone();
            async move {
                let b = req.into_body().collect().await.unwrap().to_bytes();
                s2.lock()
                    .unwrap()
                    .push(String::from_utf8(b.to_vec()).unwrap());
                Ok::<_, Infallible>(
                    Response::builder()
                        .header("content-type", "application/json")
                        .body(Full::new(Bytes::from_static(b"{}")))
                        .unwrap(),
                )
            }
        },
    );
    let body = r#"{"messages":[{"role":"user","content":"mail jane.doe@acme-corp.io"}]}"#;
    for tenant in ["a", "b", "a"] {
        let svc = ServiceBuilder::new()
            .layer(ApiKeyLayer::new(pepper()).default_tenant(tenant))
            .layer(RedactLayer::with_redactor(
                Redactor::new(engine.clone()).with_key(Key::new(b"k")),
            ))
            .service(upstream.clone());
        let req = Request::post("/v1/chat/completions")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        let resp = svc.oneshot(req).await.unwrap();
        assert_eq!(resp.status(), 200);
    }
    let sent = sent.lock().unwrap();
    let token = |s: &str| s[s.find("<EMAIL_").unwrap()..][..14].to_string();
    assert_eq!(token(&sent[0]), token(&sent[2]), "same tenant, same token");
    assert_ne!(
        token(&sent[0]),
        token(&sent[1]),
        "another tenant, another token"
    );
}
