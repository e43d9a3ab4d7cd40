//! The `veilgate` command, run as a process.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn veilgate(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_veilgate"))
        .args(args)
        .env("VEILGATE_KEY", "test-key-0123456789")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run veilgate");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

#[test]
fn redacts_json_keeping_structure() {
    let body = br#"{"model":"gpt-4o","messages":[{"role":"user","content":"card 4111 1111 1111 1111, mail jane.doe@acme-corp.io"}],"temperature":0.2}"#;
    let o = veilgate(&["redact", "--action", "redact"], body);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(
        stdout(&o),
        r#"{"model":"gpt-4o","messages":[{"role":"user","content":"card [CREDIT_CARD], mail [EMAIL]"}],"temperature":0.2}"#
    );
}

#[test]
fn pseudonyms_are_stable_for_one_key() {
    let a = veilgate(
        &["redact", "--action", "pseudonymize"],
        b"write to jane.doe@acme-corp.io",
    );
    let b = veilgate(
        &["redact", "--action", "pseudonymize"],
        b"JANE.DOE@acme-corp.io wrote",
    );
    let token = stdout(&a).trim_start_matches("write to ").to_string();
    assert!(token.starts_with("<EMAIL_"), "{token}");
    assert!(stdout(&b).starts_with(&token), "{} vs {token}", stdout(&b));
}

#[test]
fn spans_never_print_values_unless_asked() {
    let input = b"mail jane.doe@acme-corp.io now";
    let o = veilgate(&["redact", "--spans"], input);
    assert!(o.status.success());
    let err = String::from_utf8(o.stderr.clone()).unwrap();
    let v: serde_json::Value = serde_json::from_str(err.lines().next().unwrap()).unwrap();
    assert_eq!(v["entity"], "EMAIL");
    assert_eq!(
        (v["start"].as_u64(), v["end"].as_u64()),
        (Some(5), Some(26))
    );
    assert!(!err.contains("jane"), "{err}");
    let o = veilgate(&["redact", "--spans", "--show-values"], input);
    assert!(
        String::from_utf8(o.stderr)
            .unwrap()
            .contains("jane.doe@acme-corp.io")
    );
}

#[test]
fn sse_value_cut_across_events() {
    let input = concat!(
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"reach me at jane.d\"}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"oe@acme-corp.io!\"}}]}\n\n",
        "data: [DONE]\n\n",
    );
    let o = veilgate(&["redact", "--action", "redact"], input.as_bytes());
    assert!(o.status.success(), "{o:?}");
    let out = stdout(&o);
    assert!(
        out.contains("reach me at [EMAIL]") && out.contains(r#""content":"!""#),
        "{out}"
    );
    assert!(!out.contains("acme-corp") && !out.contains("jane"), "{out}");
}

#[test]
fn bad_input_writes_nothing_and_fails() {
    let o = veilgate(
        &["redact", "--format", "json"],
        b"{\"content\": \"jane.doe@acme-corp.io\"",
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty());
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(
        err.contains("invalid JSON") && !err.contains("jane"),
        "{err}"
    );
    let o = veilgate(&["redact"], b"caf\xe9 jane.doe@acme-corp.io");
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty());
}

#[test]
fn block_action_refuses() {
    let o = veilgate(
        &["redact", "--action", "block"],
        b"mail jane.doe@acme-corp.io",
    );
    assert_eq!(o.status.code(), Some(3));
    assert!(o.stdout.is_empty());
}

#[test]
fn filters_check_and_list() {
    let o = veilgate(&["filters", "check"], b"");
    assert!(o.status.success(), "{}", stdout(&o));
    let o = veilgate(&["filters", "list"], b"");
    assert!(stdout(&o).contains("person.name"));

    let dir = std::env::temp_dir().join(format!("veilgate-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |body: &str| std::fs::write(dir.join("mine.toml"), body).unwrap();
    let dir_s = dir.to_str().unwrap();

    write(
        "[[filter]]\nid = \"acme.ticket\"\nentity = \"TICKET\"\npattern = 'TCK-[0-9]{6}'\nexamples = [\"see [[TCK-123456]]\"]\nnegative_examples = [\"TCK-12\"]\n",
    );
    let o = veilgate(&["filters", "check", dir_s], b"");
    assert!(o.status.success(), "{}", stdout(&o));
    let o = veilgate(
        &["redact", "--filters", dir_s, "--action", "redact"],
        b"ref TCK-123456",
    );
    assert_eq!(stdout(&o), "ref [TICKET]");

    write(
        "[[filter]]\nid = \"acme.ticket\"\nentity = \"TICKET\"\npattern = 'TCK-[0-9]{6}'\nexamples = [\"TCK-1\"]\nnegative_examples = [\"TCK-123456\"]\n",
    );
    let o = veilgate(&["filters", "check", dir_s], b"");
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).contains("2 problems"), "{}", stdout(&o));

    write(
        "[[filter]]\nid = \"acme.ticket\"\nentity = \"TICKET\"\npattern = 'TCK-[0-9]+'\nexamples = [\"TCK-1\"]\nnegative_examples = [\"x\"]\n",
    );
    let o = veilgate(&["filters", "check", dir_s], b"");
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8(o.stderr).unwrap().contains("unbounded"));

    write(
        "[[filter]]\nid = \"contact.email\"\nentity = \"EMAIL\"\npattern = 'x'\nexamples = [\"x\"]\nnegative_examples = [\"y\"]\n",
    );
    let o = veilgate(&["filters", "check", dir_s], b"");
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8(o.stderr).unwrap().contains("duplicate"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn keys_new_and_hash_agree() {
    let o = veilgate(&["keys", "new"], b"");
    assert!(o.status.success());
    let out = stdout(&o);
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
            .unwrap()
    };
    let (key, hash) = (field("key:"), field("sha256:"));
    assert!(key.starts_with("vg-") && key.len() > 40, "{key}");
    assert_eq!(hash.len(), 64);
    let o = veilgate(&["keys", "hash"], format!("{key}\n").as_bytes());
    assert_eq!(stdout(&o).trim(), hash);
    assert!(!String::from_utf8(o.stderr).unwrap().contains(&key));
}
