//! Properties of redaction with the built-in filters.

use std::sync::{Arc, OnceLock};

use proptest::prelude::*;
use veilgate::engine::stream::Channel;
use veilgate::engine::{Action, Engine, Format, Redactor, Session, redact_bytes};

fn redactor() -> &'static Redactor {
    static R: OnceLock<Redactor> = OnceLock::new();
    R.get_or_init(|| {
        Redactor::new(Arc::new(Engine::builtin().unwrap())).with_action(Action::Redact)
    })
}

/// Values every built-in configuration must find wherever they stand between spaces.
const VALUES: &[&str] = &[
    "jane.doe@acme-corp.io",
    "Marco.ROSSI@posteo.de",
    "4111 1111 1111 1111",
    "5555-5555-5555-4444",
    "378282246310005",
    "DE89 3704 0044 0532 0130 00",
    "GB82WEST12345698765432",
    "sk-proj-4fQx9ZtLm2VbN8rKp3sWd7YhJc1AeGu6TnXo0BiRq5MvLzHw",
    "ghp_9fL2mQx7Rt4Vb8Nw1Kc6Yz3Hs5Jd0Pa2Ge7T",
    "AKIAIOSFODNN7EXAMPLX",
    "81.2.69.160",
];

const FILLER: &[&str] = &[
    "hello",
    "the",
    "order",
    "ticket",
    "é",
    "😀",
    "\"quoted\"",
    "back\\slash",
    "tab\tbed",
    "line\nbreak",
    "v2.1.3",
    "2024-03-15T10:22:31Z",
    "#ff8800",
    "3.14159",
    "sk-learn",
    "risk-adjusted",
    "(",
    ")",
    ",",
    ".",
];

fn text() -> impl Strategy<Value = (String, Vec<&'static str>)> {
    prop::collection::vec(
        prop_oneof![
            3 => prop::sample::select(FILLER).prop_map(|s| (s, false)),
            1 => prop::sample::select(VALUES).prop_map(|s| (s, true)),
        ],
        0..24,
    )
    .prop_map(|parts| {
        let values = parts.iter().filter(|p| p.1).map(|p| p.0).collect();
        (
            parts.iter().map(|p| p.0).collect::<Vec<_>>().join(" "),
            values,
        )
    })
}

fn redact(t: &str) -> String {
    redactor()
        .redact_str(t, &mut Session::default())
        .unwrap()
        .into_owned()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Redacting inside an escaped JSON string equals escaping the redacted text.
    #[test]
    fn json_escaping_commutes_with_redaction((t, _) in text()) {
        let body = serde_json::json!({ "messages": [{ "role": "user", "content": t }] }).to_string();
        let out = redact_bytes(redactor(), body.as_bytes(), Format::Json).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).expect("output is JSON");
        prop_assert_eq!(v["messages"][0]["content"].as_str().unwrap(), redact(&t));
    }

    /// Redaction is idempotent.
    #[test]
    fn idempotent((t, _) in text()) {
        let once = redact(&t);
        prop_assert_eq!(redact(&once), once.clone());
    }

    /// No seeded value survives, in text, JSON or SSE cut at any byte of the text.
    #[test]
    fn no_value_survives((t, values) in text(), cut in any::<prop::sample::Index>()) {
        let out = redact(&t);
        for v in &values {
            prop_assert!(!out.contains(v), "{v:?} survived in {out:?}");
        }
        let mut at = cut.index(t.len() + 1);
        while !t.is_char_boundary(at) { at -= 1; }
        let ev = |s: &str| format!("data: {}\n\n", serde_json::json!({"choices":[{"index":0,"delta":{"content":s}}]}));
        let sse = format!("{}{}data: [DONE]\n\n", ev(&t[..at]), ev(&t[at..]));
        let out = String::from_utf8(redact_bytes(redactor(), sse.as_bytes(), Format::Sse).unwrap()).unwrap();
        let mut joined = String::new();
        for line in out.lines().filter_map(|l| l.strip_prefix("data: ")).filter(|l| *l != "[DONE]") {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            joined.push_str(v["choices"][0]["delta"]["content"].as_str().unwrap());
        }
        prop_assert_eq!(joined, redact(&t));
    }

    /// A channel streamed in pieces cut anywhere (inside values too) emits exactly the
    /// redaction of the whole text, and never a seeded value.
    #[test]
    fn streaming_equals_whole((t, values) in text(), cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8)) {
        let mut points: Vec<usize> = cuts
            .iter()
            .map(|c| {
                let mut at = c.index(t.len() + 1);
                while !t.is_char_boundary(at) { at -= 1; }
                at
            })
            .collect();
        points.sort_unstable();
        points.push(t.len());
        let mut ch = Channel::new();
        let mut session = Session::default();
        let mut out = String::new();
        let mut last = 0;
        for p in points {
            out.push_str(&ch.push(redactor(), &mut session, &t[last..p]).unwrap());
            last = p;
            for v in &values {
                prop_assert!(!out.contains(v), "{v:?} emitted: {out:?}");
            }
        }
        out.push_str(&ch.finish(redactor(), &mut session).unwrap());
        prop_assert_eq!(ch.pending(), 0);
        prop_assert_eq!(out, redact(&t));
    }
}
