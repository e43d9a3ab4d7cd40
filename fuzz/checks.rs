//! The properties the fuzz targets check, written once and shared:
//! - the fuzz targets include this file with `#[path = "../checks.rs"] mod checks;`;
//! - `tests/fuzz_corpus.rs` includes it with `#[path = "../fuzz/checks.rs"] mod checks;` and
//!   replays every file of `fuzz/corpus/<target>/` through the same function on stable.
//!
//! Each public function takes the raw fuzz input and panics on a violated property.
//!
//! Known, accepted differences between `json::rewrite` and `serde_json` (documented in
//! fuzz/README.md): serde_json rejects numbers whose value overflows an `f64` (`1e400`), which
//! RFC 8259 allows and the scanner accepts; serde_json's nesting limit is 127 levels, the
//! scanner's `json::MAX_DEPTH` is 128. Both reject lone surrogate escapes (`"\ud800"`).
#![allow(dead_code)]

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use serde_json::Value;
use veilgate::engine::json::{self, Edit};
use veilgate::engine::sse;
use veilgate::engine::{Action, Engine, Error, Format, Key, Redactor, Session, redact_bytes};

/// The built-in filters with `Action::Redact` and a fixed key, compiled once per process.
pub fn redactor() -> &'static Redactor {
    static R: OnceLock<Redactor> = OnceLock::new();
    R.get_or_init(|| {
        let engine = Arc::new(Engine::builtin().expect("built-in filters compile"));
        Redactor::new(engine)
            .with_action(Action::Redact)
            .with_key(Key::new(b"veilgate-fuzz-key-0123456789abcd"))
    })
}

// ---------------------------------------------------------------------------------------
// json_scanner
// ---------------------------------------------------------------------------------------

/// The edits of the test visitor: a pure function of the decoded string, so the expected
/// result can be computed independently on serde_json's `Value`. Covers replacements that
/// need escaping, deletions, growth to multi-byte text, chars written as escapes in the
/// input (`\u0061`, surrogate pairs) and multi-char ranges.
pub fn test_edits(s: &str) -> Vec<Edit> {
    let mut edits = Vec::new();
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let text = match c {
            'a' => "\"\\\n\u{1}\u{7f}",
            'e' => "",
            'q' => "\u{fc}\u{1f600}/",
            '\u{10000}'.. => "#",
            'z' if chars.peek().is_some_and(|&(_, n)| n == 'z') => {
                chars.next();
                edits.push(Edit {
                    range: i..i + 2,
                    text: "Z".into(),
                });
                continue;
            }
            _ => continue,
        };
        edits.push(Edit {
            range: i..i + c.len_utf8(),
            text: text.into(),
        });
    }
    edits
}

fn apply_edits(s: &str, edits: &[Edit]) -> String {
    let mut out = String::with_capacity(s.len());
    let mut last = 0;
    for e in edits {
        out.push_str(&s[last..e.range.start]);
        out.push_str(&e.text);
        last = e.range.end;
    }
    out.push_str(&s[last..]);
    out
}

/// `v` with [`test_edits`] applied to every string value (keys are left alone).
fn transform(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(apply_edits(s, &test_edits(s))),
        Value::Array(a) => Value::Array(a.iter().map(transform).collect()),
        Value::Object(o) => {
            Value::Object(o.iter().map(|(k, v)| (k.clone(), transform(v))).collect())
        }
        other => other.clone(),
    }
}

/// Same keys, same numbers, literals and array lengths; strings may differ.
fn same_shape(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(_), Value::String(_)) => true,
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_shape(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((ka, a), (kb, b))| ka == kb && same_shape(a, b))
        }
        _ => a == b,
    }
}

/// Inputs serde_json rejects for a reason the scanner deliberately does not share.
fn known_difference(e: &serde_json::Error) -> bool {
    let m = e.to_string();
    m.starts_with("number out of range") || m.starts_with("recursion limit exceeded")
}

/// Arbitrary bytes through `json::rewrite` (with [`test_edits`]) and through
/// `redact_bytes(.., Format::Json)`: no panic; the scanner accepts exactly what serde_json
/// accepts (modulo [`known_difference`]); on valid input the output is valid JSON, equal to
/// the expected edit for `rewrite` and of the same shape for `redact_bytes`.
pub fn json_scanner(data: &[u8]) {
    let reference = serde_json::from_slice::<Value>(data);

    let mut visited = 0usize;
    let ours = json::rewrite(data, |lit, s| {
        visited += 1;
        // The literal is reported where it is, and decodes like serde_json decodes it.
        assert_eq!(
            &data[lit.raw_start..lit.raw_start + lit.raw.len()],
            lit.raw.as_bytes(),
            "raw_start/raw do not point at the literal"
        );
        assert_eq!(data[lit.raw_start - 1], b'"');
        assert_eq!(data[lit.raw_start + lit.raw.len()], b'"');
        let serde_decoded: String = serde_json::from_str(&format!("\"{}\"", lit.raw))
            .unwrap_or_else(|e| {
                panic!(
                    "serde_json cannot decode a literal the scanner decoded: {:?}: {e}",
                    lit.raw
                )
            });
        assert_eq!(
            serde_decoded, s,
            "decoded text differs from serde_json's for {:?}",
            lit.raw
        );
        if lit.is_key {
            assert!(lit.key().is_none());
            return Ok(Vec::new());
        }
        Ok(test_edits(s))
    });
    match (&reference, &ours) {
        (Ok(v), Ok(out)) => {
            let out_bytes = out.as_deref().unwrap_or(data);
            let got: Value = serde_json::from_slice(out_bytes).unwrap_or_else(|e| {
                panic!(
                    "rewrite produced invalid JSON: {e}\n input: {:?}\noutput: {:?}",
                    lossy(data),
                    lossy(out_bytes)
                )
            });
            let want = transform(v);
            assert!(
                got == want,
                "rewrite result differs\n input: {:?}\noutput: {:?}",
                lossy(data),
                lossy(out_bytes)
            );
            if out.is_none() {
                assert!(
                    transform(v) == *v,
                    "rewrite said `unchanged` but edits were due"
                );
            }
        }
        (Ok(_), Err(e)) => panic!(
            "serde_json accepts, the scanner rejects ({e}): {:?}",
            lossy(data)
        ),
        (Err(e), Ok(_)) => {
            assert!(
                known_difference(e),
                "serde_json rejects ({e}), the scanner accepts: {:?}",
                lossy(data)
            );
        }
        (Err(_), Err(_)) => {}
    }

    let redacted = redact_bytes(redactor(), data, Format::Json);
    match (&reference, redacted) {
        (Ok(v), Ok(out)) => {
            let got: Value = serde_json::from_slice(&out).unwrap_or_else(|e| {
                panic!(
                    "redact_bytes produced invalid JSON: {e}\n input: {:?}\noutput: {:?}",
                    lossy(data),
                    lossy(&out)
                )
            });
            assert!(
                same_shape(v, &got),
                "redact_bytes changed the structure\n input: {:?}\noutput: {:?}",
                lossy(data),
                lossy(&out)
            );
        }
        (Ok(_), Err(e)) => panic!(
            "serde_json accepts, redact_bytes fails ({e}): {:?}",
            lossy(data)
        ),
        (Err(e), Ok(_)) => {
            assert!(
                known_difference(e),
                "serde_json rejects ({e}), redact_bytes accepts: {:?}",
                lossy(data)
            );
        }
        (Err(_), Err(_)) => {}
    }
}

// ---------------------------------------------------------------------------------------
// engine
// ---------------------------------------------------------------------------------------

/// Arbitrary text (invalid UTF-8 is replaced lossily) through `Engine::detect` and
/// `Redactor::redact_str`: detections sorted, non-empty, non-overlapping, inside the text
/// and on char boundaries; redacting the output again changes nothing.
pub fn engine(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    check_text(&text);
}

pub fn check_text(text: &str) {
    let r = redactor();
    let dets = r.engine().detect(text);
    let mut last_end = 0;
    for d in &dets {
        assert!(d.start < d.end, "empty detection {d:?} in {text:?}");
        assert!(
            d.start >= last_end,
            "detections unsorted or overlapping: {dets:?} in {text:?}"
        );
        assert!(
            d.end <= text.len(),
            "detection past the end: {d:?} in {text:?}"
        );
        assert!(
            text.is_char_boundary(d.start) && text.is_char_boundary(d.end),
            "detection off a char boundary: {d:?} in {text:?}"
        );
        last_end = d.end;
    }
    let once = r
        .redact_str(text, &mut Session::default())
        .expect("Action::Redact never blocks");
    assert_eq!(dets.is_empty(), matches!(once, Cow::Borrowed(_)));
    let twice = r
        .redact_str(&once, &mut Session::default())
        .expect("Action::Redact never blocks");
    assert!(
        once == twice,
        "redaction is not idempotent\n input: {text:?}\n  once: {once:?}\n twice: {twice:?}"
    );
}

// ---------------------------------------------------------------------------------------
// sse
// ---------------------------------------------------------------------------------------

/// Arbitrary bytes through `redact_bytes(.., Format::Sse)`: no panic; valid UTF-8 is never
/// refused; the output is UTF-8 and keeps every non-`data` line (comments, `event:`, `id:`,
/// `retry:`, blank lines) byte-identical and in order.
pub fn sse(data: &[u8]) {
    let result = redact_bytes(redactor(), data, Format::Sse);
    let Ok(input) = std::str::from_utf8(data) else {
        assert!(
            matches!(result, Err(Error::InvalidUtf8 { .. })),
            "invalid UTF-8 not refused: {result:?}"
        );
        return;
    };
    let out = result.unwrap_or_else(|e| panic!("a UTF-8 stream was refused ({e}): {input:?}"));
    let out = String::from_utf8(out).expect("the output of a UTF-8 stream is UTF-8");
    let framing = |s: &str| -> Vec<String> {
        sse::lines(s.as_bytes())
            .into_iter()
            .map(|l| &s[l.start..l.end])
            .filter(|l| sse::field(l).0 != "data")
            .map(str::to_string)
            .collect()
    };
    assert_eq!(
        framing(input),
        framing(&out),
        "non-data lines changed\n input: {input:?}\noutput: {out:?}"
    );
}

fn lossy(b: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(b)
}
