//! Engine tests on small inline filter sets (the built-in filters have their own tests).

use std::sync::Arc;

use super::*;

const FILTERS: &str = r#"
[[filter]]
id = "t.email"
entity = "EMAIL"
pattern = '''(?i)[a-z0-9.]{1,20}@[a-z0-9]{1,20}\.[a-z]{2,6}'''
examples = ["x [[a.b@c.io]] y"]
negative_examples = ["a.b at c.io"]

[[filter]]
id = "t.card"
entity = "CREDIT_CARD"
pattern = '''(?-u:\b)[0-9]{4}(?:[ -]?[0-9]{4}){3}(?-u:\b)'''
validator = "luhn"
action = "mask"
examples = ["pay [[4111 1111 1111 1111]] now"]
negative_examples = ["4111 1111 1111 1112"]

[[filter]]
id = "t.digits"
entity = "NUMBER_RUN"
pattern = '''(?-u:\b)[0-9]{4} [0-9]{4}(?-u:\b)'''
priority = -1
examples = ["[[1234 5678]]"]
negative_examples = ["12345678"]

[[filter]]
id = "t.password"
entity = "PASSWORD"
pattern = '''password=(?P<value>[^\s&;]{1,64})'''
action = "redact"
examples = ["password=[[hunter2]]"]
negative_examples = ["password="]

[[filter]]
id = "t.ssn"
entity = "US_SSN"
pattern = '''(?-u:\b)[0-9]{9}(?-u:\b)'''
context = ["ssn", "social security"]
context_required = true
examples = ["SSN: [[123456789]]"]
negative_examples = ["order 123456789"]

[allow]
values = ["allowed@c.io"]
"#;

fn engine() -> Arc<Engine> {
    Arc::new(
        Engine::builder()
            .source("test.toml", FILTERS)
            .build()
            .unwrap(),
    )
}

fn redact(text: &str, action: Action) -> String {
    let r = Redactor::new(engine()).with_action(action);
    r.redact_str(text, &mut Session::default())
        .unwrap()
        .into_owned()
}

#[test]
fn examples_of_the_test_filters_hold() {
    let e = engine();
    for f in e.filters() {
        assert_eq!(check_filter(&e, f), Vec::<String>::new(), "{}", f.id);
    }
}

#[test]
fn detects_with_value_group_and_context() {
    let e = engine();
    let text = "password=s3cret& SSN 123456789, and far away from that word, order 987654321";
    let d = e.detect(text);
    let got: Vec<_> = d
        .iter()
        .map(|d| (&*d.entity, &text[d.start..d.end]))
        .collect();
    assert_eq!(got, vec![("PASSWORD", "s3cret"), ("US_SSN", "123456789")]);
}

#[test]
fn rejected_candidate_falls_back_to_other_filters_at_the_same_start() {
    // Luhn-invalid: the card filter rejects it; the lower-priority digit-run filter takes
    // the first two groups, then the scan continues after them.
    let e = engine();
    let text = "4111 1111 1111 1112";
    let d = e.detect(text);
    let got: Vec<_> = d
        .iter()
        .map(|d| (&*d.filter, &text[d.start..d.end]))
        .collect();
    assert_eq!(
        got,
        vec![("t.digits", "4111 1111"), ("t.digits", "1111 1112")]
    );
}

#[test]
fn allow_list_keeps_values() {
    assert_eq!(
        redact("allowed@c.io and bob@c.io", Action::Redact),
        "allowed@c.io and [EMAIL]"
    );
}

#[test]
fn actions() {
    let text = "card 4111-1111-1111-1111 mail a.b@c.io";
    assert_eq!(
        redact(text, Action::Redact),
        "card [CREDIT_CARD] mail [EMAIL]"
    );
    assert_eq!(
        redact(text, Action::Mask),
        "card ****-****-****-1111 mail *.*@*.**"
    );
    let hashed = redact(text, Action::Hash);
    assert!(
        hashed.starts_with("card [CREDIT_CARD:") && hashed.contains(" mail [EMAIL:"),
        "{hashed}"
    );
    let err = Redactor::new(engine())
        .with_action(Action::Block)
        .redact_str(text, &mut Session::default())
        .unwrap_err();
    assert!(matches!(err, Error::Blocked { .. }));
    // Per-filter default actions: the card filter masks, the password filter redacts.
    let r = Redactor::new(engine());
    let out = r
        .redact_str("4111111111111111 password=x", &mut Session::default())
        .unwrap();
    assert_eq!(out, "************1111 password=[PASSWORD]");
}

#[test]
fn pseudonyms_are_deterministic_per_key_and_tenant_and_restorable() {
    let key = Key::new(b"0123456789abcdef");
    let r = Redactor::new(engine())
        .with_key(key.clone())
        .with_action(Action::Pseudonymize);
    let mut s1 = Session::default();
    let a = r.redact_str("a.b@c.io", &mut s1).unwrap().into_owned();
    let b = r
        .redact_str("A.B@C.IO", &mut Session::default())
        .unwrap()
        .into_owned();
    assert_eq!(a, b, "case-normalized e-mails share a token");
    assert!(
        a.starts_with("<EMAIL_") && a.ends_with('>') && a.len() == "<EMAIL_>".len() + 6,
        "{a}"
    );
    assert_eq!(s1.original(&a), Some("a.b@c.io"));
    let other_tenant = Redactor::new(engine())
        .with_key(key)
        .with_tenant("t2")
        .with_action(Action::Pseudonymize);
    assert_ne!(
        a,
        other_tenant
            .redact_str("a.b@c.io", &mut Session::default())
            .unwrap()
    );
    let other_key = Redactor::new(engine())
        .with_key(Key::new(b"another key....."))
        .with_action(Action::Pseudonymize);
    assert_ne!(
        a,
        other_key
            .redact_str("a.b@c.io", &mut Session::default())
            .unwrap()
    );
}

#[test]
fn rejects_unbounded_empty_and_duplicate_filters() {
    let bad = |body: &str| {
        let text = format!(
            "[[filter]]\nid = \"x\"\nentity = \"X\"\n{body}\nexamples = [\"a\"]\nnegative_examples = [\"b\"]\n"
        );
        Engine::builder()
            .source("bad.toml", text)
            .build()
            .unwrap_err()
            .to_string()
    };
    assert!(bad("pattern = 'a+'").contains("unbounded"));
    assert!(bad("pattern = 'a{2,}'").contains("unbounded"));
    assert!(bad("pattern = 'a?'").contains("empty"));
    assert!(bad("pattern = '('").contains("does not parse"));
    assert!(bad("pattern = 'a'\nvalidator = \"nope\"").contains("validator"));
    assert!(bad("pattern = 'a'\nbogus = 1").contains("bogus"));
    let dup = format!(
        "{FILTERS}\n[[filter]]\nid = \"t.email\"\nentity = \"E\"\npattern = 'x'\nexamples = [\"x\"]\nnegative_examples = [\"y\"]\n"
    );
    let err = Engine::builder()
        .source("dup.toml", dup)
        .build()
        .unwrap_err()
        .to_string();
    assert!(err.contains("duplicate"), "{err}");
}

#[test]
fn check_reports_failing_examples() {
    let text = r#"
[[filter]]
id = "t.x"
entity = "X"
pattern = 'abc'
examples = ["[[ab]]c", "xyz"]
negative_examples = ["abc"]
"#;
    let e = Engine::builder().source("x.toml", text).build().unwrap();
    let problems = check_filter(&e, &e.filters()[0]);
    assert_eq!(problems.len(), 3, "{problems:#?}");
}

#[test]
fn json_redaction_preserves_structure_and_escapes() {
    let r = Redactor::new(engine()).with_action(Action::Redact);
    let input = br#"{"model":"m", "messages":[{"role":"user","content":"caf\u00e9 a.b\u0040c.io\n\"ok\""}], "n": 1.5e3}"#;
    let out = redact_bytes(&r, input, Format::Json).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        r#"{"model":"m", "messages":[{"role":"user","content":"caf\u00e9 [EMAIL]\n\"ok\""}], "n": 1.5e3}"#
    );
}

#[test]
fn json_inside_a_json_string_is_rewritten() {
    let r = Redactor::new(engine()).with_action(Action::Redact);
    let input = br#"{"arguments":"{\"to\":\"a.b\\u0040c.io\",\"n\":1}"}"#;
    let out = String::from_utf8(redact_bytes(&r, input, Format::Json).unwrap()).unwrap();
    assert_eq!(out, r#"{"arguments":"{\"to\":\"[EMAIL]\",\"n\":1}"}"#);
}

#[test]
fn invalid_inputs_are_errors() {
    let r = Redactor::new(engine());
    assert!(matches!(
        redact_bytes(&r, b"{\"a\":", Format::Json),
        Err(Error::InvalidJson { .. })
    ));
    assert!(matches!(
        redact_bytes(&r, b"ab\xffcd", Format::Text),
        Err(Error::InvalidUtf8 { offset: 2 })
    ));
    assert!(matches!(
        redact_bytes(&r, b"data: \xff\n\n", Format::Sse),
        Err(Error::InvalidUtf8 { .. })
    ));
}

#[test]
fn sse_value_split_across_events_is_caught_and_framing_kept() {
    let r = Redactor::new(engine()).with_action(Action::Redact);
    let input = concat!(
        ": keep-alive\n\n",
        "id: 1\ndata: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"mail a.b\"}}]}\n\n",
        "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"@c.io ok\"}}]}\r\n\r\n",
        "event: done\ndata: [DONE]\n\n"
    );
    let out = String::from_utf8(redact_bytes(&r, input.as_bytes(), Format::Auto).unwrap()).unwrap();
    assert_eq!(
        out,
        concat!(
            ": keep-alive\n\n",
            "id: 1\ndata: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"mail [EMAIL]\"}}]}\n\n",
            "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" ok\"}}]}\r\n\r\n",
            "event: done\ndata: [DONE]\n\n"
        )
    );
}

#[test]
fn sse_anthropic_blocks_are_separate_channels() {
    let r = Redactor::new(engine()).with_action(Action::Redact);
    let ev = |i: u32, t: &str| {
        format!(
            "event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":{i},\"delta\":{{\"type\":\"text_delta\",\"text\":\"{t}\"}}}}\n\n"
        )
    };
    let input = [ev(0, "x a.b@"), ev(1, "y"), ev(0, "c.io")].concat();
    let out = String::from_utf8(redact_bytes(&r, input.as_bytes(), Format::Sse).unwrap()).unwrap();
    assert_eq!(out, [ev(0, "x [EMAIL]"), ev(1, "y"), ev(0, "")].concat());
}

#[test]
fn spans_report_input_offsets_without_values() {
    let r = Redactor::new(engine()).with_action(Action::Redact);
    let input = br#"{"c":"x \u0061.b@c.io"}"#;
    let mut s = Session::recording(false);
    redact_bytes_with(&r, input, Format::Json, &mut s).unwrap();
    let spans = s.spans.unwrap();
    assert_eq!(spans.len(), 1);
    let sp = &spans[0];
    assert_eq!(&input[sp.start..sp.end], br"\u0061.b@c.io");
    assert!(sp.value.is_none());
}

#[test]
fn format_detection() {
    assert_eq!(Format::detect(b"  {\"a\":1}"), Format::Json);
    assert_eq!(Format::detect(b"data: x\n\n"), Format::Sse);
    assert_eq!(Format::detect(b": ping\n\n"), Format::Sse);
    assert_eq!(Format::detect(b"hello"), Format::Text);
}
