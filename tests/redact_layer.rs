//! The redact layer as a Tower service, with mock upstreams and mock bodies that return
//! Pending between frames.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Full};
use proptest::prelude::*;
use tower::{Service, ServiceBuilder, ServiceExt};
use veilgate::engine::{Engine, Key, Redactor};
use veilgate::redact::{RedactBody, RedactLayer};

/// A body that yields `chunks` one by one, returning Pending before each.
struct Chunked {
    chunks: VecDeque<Bytes>,
    trailers: Option<HeaderMap>,
    yielded: bool,
    /// Dropped with the body: tells a test the upstream body was released.
    _guard: Option<Arc<()>>,
}

impl Chunked {
    fn new(chunks: Vec<Bytes>) -> Self {
        Chunked {
            chunks: chunks.into(),
            trailers: None,
            yielded: false,
            _guard: None,
        }
    }
}

impl Body for Chunked {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if !self.yielded {
            self.yielded = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.yielded = false;
        if let Some(c) = self.chunks.pop_front() {
            return Poll::Ready(Some(Ok(Frame::data(c))));
        }
        Poll::Ready(self.trailers.take().map(|t| Ok(Frame::trailers(t))))
    }
}

fn engine() -> Arc<Engine> {
    static E: OnceLock<Arc<Engine>> = OnceLock::new();
    E.get_or_init(|| Arc::new(Engine::builtin().unwrap()))
        .clone()
}

fn layer() -> RedactLayer {
    RedactLayer::with_redactor(Redactor::new(engine()).with_key(Key::new(b"redact-layer-tests")))
}

type Seen = Arc<Mutex<Vec<Bytes>>>;

/// An upstream that records request bodies and answers with `answer(request body)`.
fn upstream<F>(
    seen: Seen,
    answer: F,
) -> impl Service<
    Request<RedactBody<Full<Bytes>>>,
    Response = Response<Chunked>,
    Error = Infallible,
    Future: Send,
> + Clone
+ Send
where
    F: Fn(&[u8]) -> (String, Vec<Bytes>) + Clone + Send + Sync + 'static,
{
    tower::service_fn(move |req: Request<RedactBody<Full<Bytes>>>| {
        let seen = seen.clone();
        let answer = answer.clone();
        async move {
            let body = req.into_body().collect().await.unwrap().to_bytes();
            seen.lock().unwrap().push(body.clone());
            let (ct, chunks) = answer(&body);
            Ok::<_, Infallible>(
                Response::builder()
                    .header("content-type", ct)
                    .body(Chunked::new(chunks))
                    .unwrap(),
            )
        }
    })
}

fn post(path: &str, ct: &str, body: &str) -> Request<Full<Bytes>> {
    Request::post(path)
        .header("content-type", ct)
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

async fn call<S>(svc: S, req: Request<Full<Bytes>>) -> (http::StatusCode, HeaderMap, String)
where
    S: Service<Request<Full<Bytes>>, Response = Response<RedactBody<Chunked>>, Error = Infallible>,
{
    let resp = svc.oneshot(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8(bytes.to_vec()).unwrap(),
    )
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

const PII_BODY: &str = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"I am Anna Kowalski, mail anna.kowalski@posteo.de, card 4111 1111 1111 1111"}]}"#;

#[test]
fn request_pseudonymized_and_json_answer_restored() {
    rt().block_on(async {
        let seen = Seen::default();
        // The upstream echoes the user's content as the assistant's answer.
        let up = upstream(seen.clone(), |body| {
            let v: serde_json::Value = serde_json::from_slice(body).unwrap();
            let content = v["messages"][0]["content"].as_str().unwrap().to_string();
            let answer = serde_json::json!({"id":"c1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":format!("You said: {content}")},"finish_reason":"stop"}]});
            let s = answer.to_string();
            let (a, b) = s.split_at(s.len() / 2);
            ("application/json".into(), vec![Bytes::from(a.to_string()), Bytes::from(b.to_string())])
        });
        let svc = ServiceBuilder::new().layer(layer()).service(up);
        let (status, headers, body) = call(svc, post("/v1/chat/completions", "application/json", PII_BODY)).await;
        assert_eq!(status, 200);
        let sent = String::from_utf8(seen.lock().unwrap()[0].to_vec()).unwrap();
        for secret in ["anna.kowalski@posteo.de", "4111 1111 1111 1111", "Kowalski"] {
            assert!(!sent.contains(secret), "{secret} reached the upstream: {sent}");
        }
        assert!(sent.contains("<EMAIL_") && sent.contains("\"model\":\"gpt-4o\""), "{sent}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let answer = v["choices"][0]["message"]["content"].as_str().unwrap();
        assert!(answer.contains("anna.kowalski@posteo.de") && answer.contains("Anna Kowalski"), "{answer}");
        // Cards are masked by default (their filter's action), so they come back masked.
        assert!(answer.contains("**** **** **** 1111"), "{answer}");
        assert_eq!(headers["content-length"], body.len().to_string().as_str());
    });
}

#[test]
fn embeddings_rows_are_read_under_their_header_row() {
    rt().block_on(async {
        let seen = Seen::default();
        let up = upstream(seen.clone(), |_| {
            ("application/json".into(), vec![Bytes::from(r#"{"object":"list","data":[]}"#)])
        });
        let svc = ServiceBuilder::new().layer(layer()).service(up);
        // Only the header row says that 08/03/1982 is a date of birth.
        let body = r#"{"model":"text-embedding-3-small","input":["id,date_of_birth,plan","1,08/03/1982,pro"]}"#;
        let (status, _, _) = call(svc, post("/v1/embeddings", "application/json", body)).await;
        assert_eq!(status, 200);
        let sent = String::from_utf8(seen.lock().unwrap()[0].to_vec()).unwrap();
        assert!(!sent.contains("08/03/1982"), "{sent}");
        assert!(sent.contains(r#""id,date_of_birth,plan","1,<DATE_OF_BIRTH_"#), "{sent}");
    });
}

#[test]
fn refusals_are_provider_shaped() {
    rt().block_on(async {
        let seen = Seen::default();
        let up = upstream(seen.clone(), |_| {
            ("application/json".into(), vec![Bytes::from_static(b"{}")])
        });
        let svc = ServiceBuilder::new().layer(layer()).service(up.clone());
        let (status, _, body) = call(
            svc,
            post(
                "/v1/chat/completions",
                "application/json",
                "{\"messages\": [",
            ),
        )
        .await;
        assert_eq!(status, 400);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["error"]["code"], "veilgate_invalid_json");

        let svc = ServiceBuilder::new().layer(layer()).service(up.clone());
        let (status, _, body) = call(
            svc,
            post("/v1/messages", "application/json", "{\"system\": \"x\""),
        )
        .await;
        assert_eq!(status, 400);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["type"], "error");
        assert_eq!(v["error"]["code"], "veilgate_invalid_json");

        let svc = ServiceBuilder::new()
            .layer(layer().body_limit(64))
            .service(up.clone());
        let (status, _, body) = call(
            svc,
            post("/v1/chat/completions", "application/json", PII_BODY),
        )
        .await;
        assert_eq!(status, 413, "{body}");
        assert!(!body.contains("posteo"));

        let mut req = post("/v1/chat/completions", "application/json", PII_BODY);
        req.headers_mut()
            .insert("content-encoding", "compress".parse().unwrap());
        let svc = ServiceBuilder::new().layer(layer()).service(up.clone());
        let (status, _, _) = call(svc, req).await;
        assert_eq!(status, 415);

        let svc = ServiceBuilder::new().layer(layer()).service(up.clone());
        let (status, _, body) =
            call(svc, post("/v1/chat/completions", "text/plain", "caf\u{e9}")).await;
        assert_eq!((status.as_u16(), body.is_empty()), (200, false));
        assert!(
            seen.lock()
                .unwrap()
                .iter()
                .all(|b| !String::from_utf8_lossy(b).contains("posteo")),
            "nothing refused was forwarded"
        );
    });
}

#[test]
fn gzip_request_is_decoded_scanned_and_forwarded_plain() {
    use std::io::Write;
    rt().block_on(async {
        let seen = Seen::default();
        let up = upstream(seen.clone(), |_| {
            ("application/json".into(), vec![Bytes::from_static(b"{}")])
        });
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(PII_BODY.as_bytes()).unwrap();
        let mut req = Request::post("/v1/chat/completions")
            .header("content-type", "application/json")
            .header("content-encoding", "gzip")
            .body(Full::new(Bytes::from(gz.finish().unwrap())))
            .unwrap();
        req.headers_mut().insert("x-test", "1".parse().unwrap());
        let svc = ServiceBuilder::new().layer(layer()).service(up);
        let (status, _, _) = call(svc, req).await;
        assert_eq!(status, 200);
        let sent = String::from_utf8(seen.lock().unwrap()[0].to_vec()).unwrap();
        assert!(
            sent.starts_with("{\"model\"") && !sent.contains("posteo"),
            "{sent}"
        );
    });
}

/// OpenAI chat SSE events carrying `pieces` as content deltas.
fn openai_sse(pieces: &[&str]) -> String {
    let mut s = String::from(": keep-alive\n\n");
    for (i, p) in pieces.iter().enumerate() {
        let ev = serde_json::json!({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":p},"finish_reason":null}]});
        s.push_str(&format!("id: {i}\ndata: {ev}\n\n"));
    }
    let fin = serde_json::json!({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]});
    s.push_str(&format!("data: {fin}\n\ndata: [DONE]\n\n"));
    s
}

fn sse_text(body: &str) -> String {
    let mut out = String::new();
    for line in body.lines() {
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        if data == "[DONE]" {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(data).unwrap();
        if let Some(s) = v["choices"][0]["delta"]["content"].as_str() {
            out.push_str(s);
        }
    }
    out
}

/// Runs one streamed answer whose text is `answer` (with `{TOKEN}` replaced by the
/// pseudonym the request produced), cut into byte chunks at `cuts`.
fn stream_answer(answer: &str, words: usize, cuts: &[usize]) -> (String, String) {
    let answer = answer.to_string();
    let cuts = cuts.to_vec();
    rt().block_on(async move {
        let seen = Seen::default();
        let up = upstream(seen.clone(), move |body| {
            let sent = String::from_utf8(body.to_vec()).unwrap();
            let token = &sent[sent.find("<EMAIL_").unwrap()..][..14];
            let text = answer.replace("{TOKEN}", token);
            let chars: Vec<char> = text.chars().collect();
            let per = (chars.len() / words.max(1)).max(1);
            let pieces: Vec<String> = chars.chunks(per).map(|c| c.iter().collect()).collect();
            let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
            let wire = openai_sse(&refs).into_bytes();
            let mut chunks = Vec::new();
            let mut last = 0;
            let mut points: Vec<usize> = cuts.iter().map(|c| c % (wire.len() + 1)).collect();
            points.sort_unstable();
            for p in points {
                chunks.push(Bytes::copy_from_slice(&wire[last..p.max(last)]));
                last = p.max(last);
            }
            chunks.push(Bytes::copy_from_slice(&wire[last..]));
            ("text/event-stream".into(), chunks)
        });
        let svc = ServiceBuilder::new().layer(layer()).service(up);
        let (status, _, body) = call(
            svc,
            post("/v1/chat/completions", "application/json", PII_BODY),
        )
        .await;
        assert_eq!(status, 200);
        (sse_text(&body), body)
    })
}

#[test]
fn sse_answer_restores_tokens_and_redacts_model_pii() {
    let answer =
        "Sure! I wrote to {TOKEN} and to bob.smith@example-corp.net; call +49 30 901820 if needed.";
    let (text, body) = stream_answer(answer, 30, &[]);
    assert_eq!(
        text,
        "Sure! I wrote to anna.kowalski@posteo.de and to [EMAIL]; call [PHONE] if needed."
    );
    assert!(body.starts_with(": keep-alive\n\nid: 0\ndata: "), "{body}");
    assert!(body.ends_with("data: [DONE]\n\n"), "{body}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Whatever the event and byte splits (inside UTF-8, inside `data:` lines, inside a
    /// value, inside a token), the client sees exactly the unsplit result, and no value the
    /// model produced ever leaves.
    #[test]
    fn sse_splits_do_not_change_the_answer(words in 1usize..40, cuts in prop::collection::vec(any::<usize>(), 0..12)) {
        let answer = "Grüße 😀 — {TOKEN} wrote; the card 5555 5555 5555 4444 and IBAN DE89 3704 0044 0532 0130 00 belong to bob.smith@example-corp.net, ok.";
        let (text, body) = stream_answer(answer, words, &cuts);
        prop_assert_eq!(&text, "Grüße 😀 — anna.kowalski@posteo.de wrote; the card [CREDIT_CARD] and IBAN [IBAN] belong to [EMAIL], ok.");
        for leaked in ["5555 4444", "0130 00", "bob.smith", "example-corp"] {
            prop_assert!(!body.contains(leaked), "{} leaked in {}", leaked, body);
        }
    }
}

#[test]
fn json_answer_trailers_are_preserved() {
    rt().block_on(async {
        let up = tower::service_fn(|_req: Request<RedactBody<Full<Bytes>>>| async {
            let mut body = Chunked::new(vec![Bytes::from_static(b"{\"ok\":true}")]);
            let mut t = HeaderMap::new();
            t.insert("x-checksum", "abc".parse().unwrap());
            body.trailers = Some(t);
            Ok::<_, Infallible>(
                Response::builder()
                    .header("content-type", "application/json")
                    .body(body)
                    .unwrap(),
            )
        });
        let svc = ServiceBuilder::new().layer(layer()).service(up);
        let resp = svc
            .oneshot(post("/v1/chat/completions", "application/json", "{}"))
            .await
            .unwrap();
        let collected = resp.into_body().collect().await.unwrap();
        assert_eq!(collected.trailers().unwrap()["x-checksum"], "abc");
        assert_eq!(&collected.to_bytes()[..], b"{\"ok\":true}");
    });
}

#[test]
fn dropping_a_stream_midway_releases_the_upstream_body() {
    rt().block_on(async {
        let guard = Arc::new(());
        let g = guard.clone();
        let up = tower::service_fn(move |_req: Request<RedactBody<Full<Bytes>>>| {
            let g = g.clone();
            async move {
                let ev = |t: &str| {
                    let v = serde_json::json!({"choices":[{"index":0,"delta":{"content":t},"finish_reason":null}]});
                    Bytes::from(format!("data: {v}\n\n"))
                };
                let mut body = Chunked::new(vec![ev("hello, write to "), ev("bob.smith@exa"), ev("mple-corp.net now")]);
                body._guard = Some(g);
                Ok::<_, Infallible>(Response::builder().header("content-type", "text/event-stream").body(body).unwrap())
            }
        });
        let svc = ServiceBuilder::new().layer(layer()).service(up);
        let resp = svc.oneshot(post("/v1/chat/completions", "application/json", "{}")).await.unwrap();
        let mut body = resp.into_body();
        let mut seen = String::new();
        for _ in 0..2 {
            let f = body.frame().await.unwrap().unwrap().into_data().unwrap();
            seen.push_str(&String::from_utf8_lossy(&f));
        }
        assert!(seen.contains("hello, write") && !seen.contains("bob.smith"), "{seen}");
        assert!(body.state_bytes() < 4096, "{}", body.state_bytes());
        assert_eq!(Arc::strong_count(&guard), 2);
        // The client goes away: the held-back partial value is dropped, not flushed,
        // and the upstream body is released with it.
        drop(body);
        assert_eq!(Arc::strong_count(&guard), 1);
    });
}
