//! Server-sent events: framing, the text channels of provider streams, and whole-stream
//! redaction (the `veilgate redact` command; the redact layer streams incrementally).
//!
//! A *channel* is one logical text that a provider streams in pieces: a chat choice's
//! content, one tool call's arguments, an Anthropic content block, a Responses API output
//! item. Detection runs on each channel's concatenated text, so a value cut across events
//! is caught; the replacement is written into the event where the value starts and the
//! rest of the value is removed from the events that carried it. Comments, `event:`, `id:`
//! and `retry:` lines, and events without detections, stay byte-identical.

use std::collections::HashMap;

use serde_json::Value;

use super::json::{self, Edit, Seg};
use super::{Error, Redactor, Session};

/// True if `b` starts like an SSE stream (a field line or a comment).
pub fn looks_like_sse(b: &[u8]) -> bool {
    [&b"data:"[..], b"event:", b"id:", b"retry:", b":"]
        .iter()
        .any(|p| b.starts_with(p))
}

/// One line of an SSE stream: `[start, end)` without its terminator, `next` after it.
#[derive(Debug, Clone, Copy)]
pub struct Line {
    pub start: usize,
    pub end: usize,
    pub next: usize,
}

/// Splits `s` into lines; `\n`, `\r\n` and `\r` all terminate a line.
pub fn lines(s: &[u8]) -> Vec<Line> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        let end = memchr::memchr2(b'\n', b'\r', &s[i..]).map_or(s.len(), |o| i + o);
        let next = match s.get(end) {
            Some(b'\r') if s.get(end + 1) == Some(&b'\n') => end + 2,
            Some(_) => end + 1,
            None => end,
        };
        out.push(Line {
            start: i,
            end,
            next,
        });
        i = next;
    }
    out
}

/// The field name and value of a line (`data: x` -> (`data`, `x`)); comments give `("", ..)`.
pub fn field(line: &str) -> (&str, &str) {
    match line.split_once(':') {
        Some((name, value)) => (name, value.strip_prefix(' ').unwrap_or(value)),
        None => (line, ""),
    }
}

/// A text channel string inside one event's JSON data.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelRef {
    /// Stable name of the channel within the stream, e.g. `chat:0:content`.
    pub channel: String,
    /// Path of the string inside the event's JSON.
    pub path: Vec<Seg>,
    /// The decoded piece of text this event carries.
    pub text: String,
}

fn idx(v: &Value, key: &str, fallback: usize) -> String {
    match v.get(key) {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.clone(),
        _ => fallback.to_string(),
    }
}

/// The text channels an event's JSON carries (OpenAI chat and completions, the Responses
/// API, Anthropic Messages).
pub fn channels(v: &Value) -> Vec<ChannelRef> {
    let mut out = Vec::new();
    let mut push = |channel: String, path: Vec<Seg>, s: Option<&Value>| {
        if let Some(Value::String(text)) = s {
            out.push(ChannelRef {
                channel,
                path,
                text: text.clone(),
            });
        }
    };
    let key = |k: &str| Seg::Key(k.to_string());
    match v.get("type").and_then(Value::as_str) {
        Some("content_block_delta") => {
            let i = idx(v, "index", 0);
            let d = v.get("delta");
            for (field, kind) in [
                ("text", "text"),
                ("partial_json", "json"),
                ("thinking", "thinking"),
            ] {
                push(
                    format!("anthropic:{i}:{kind}"),
                    vec![key("delta"), key(field)],
                    d.and_then(|d| d.get(field)),
                );
            }
        }
        Some(t) if t.starts_with("response.") && t.ends_with(".delta") => {
            let item = v
                .get("item_id")
                .and_then(Value::as_str)
                .map_or_else(|| idx(v, "output_index", 0), str::to_string);
            let part = idx(v, "content_index", 0);
            push(
                format!("{t}:{item}:{part}"),
                vec![key("delta")],
                v.get("delta"),
            );
        }
        _ => {
            let Some(Value::Array(choices)) = v.get("choices") else {
                return out;
            };
            for (i, c) in choices.iter().enumerate() {
                let ci = idx(c, "index", i);
                let at = |rest: &[&str]| {
                    let mut p = vec![key("choices"), Seg::Index(i)];
                    p.extend(rest.iter().map(|k| key(k)));
                    p
                };
                push(format!("cmpl:{ci}"), at(&["text"]), c.get("text"));
                let Some(d) = c.get("delta") else { continue };
                for f in ["content", "reasoning_content", "refusal"] {
                    push(format!("chat:{ci}:{f}"), at(&["delta", f]), d.get(f));
                }
                if let Some(Value::Array(calls)) = d.get("tool_calls") {
                    for (j, call) in calls.iter().enumerate() {
                        let ti = idx(call, "index", j);
                        let mut p = at(&["delta", "tool_calls"]);
                        p.extend([Seg::Index(j), key("function"), key("arguments")]);
                        push(
                            format!("chat:{ci}:tool:{ti}"),
                            p,
                            call.get("function").and_then(|f| f.get("arguments")),
                        );
                    }
                }
            }
        }
    }
    out
}

/// Splits the redaction of a channel's whole text back onto its pieces: the replacement
/// of a value goes to the piece where the value starts; the value's bytes are dropped
/// from every piece that carried them.
pub(crate) fn distribute(
    redactor: &Redactor,
    session: &mut Session,
    pieces: &[&str],
) -> Result<Vec<String>, Error> {
    let text: String = pieces.concat();
    let dets = redactor.engine().detect(&text);
    let mut out: Vec<String> = Vec::with_capacity(pieces.len());
    let mut reps = Vec::with_capacity(dets.len());
    for d in &dets {
        let mut r = String::new();
        redactor.apply(d, &text[d.start..d.end], session, &mut r)?;
        reps.push(r);
    }
    let mut off = 0;
    let mut k = 0; // next detection that may still matter
    for p in pieces {
        let (lo, hi) = (off, off + p.len());
        let mut s = String::with_capacity(p.len());
        let mut cur = lo;
        while cur < hi {
            while k < dets.len() && dets[k].end <= cur {
                k += 1;
            }
            match dets.get(k) {
                Some(d) if d.start <= cur => {
                    if d.start == cur {
                        s.push_str(&reps[k]);
                    }
                    cur = d.end.min(hi);
                }
                Some(d) if d.start < hi => {
                    s.push_str(&text[cur..d.start]);
                    cur = d.start;
                }
                _ => {
                    s.push_str(&text[cur..hi]);
                    cur = hi;
                }
            }
        }
        out.push(s);
        off = hi;
    }
    Ok(out)
}

struct Event {
    /// Indexes into the line list.
    lines: std::ops::Range<usize>,
    /// Data lines (indexes) and the joined payload.
    data: Vec<usize>,
    payload: String,
    json: Option<Value>,
}

/// Redacts a whole SSE stream (see the module docs).
pub fn redact_sse(
    redactor: &Redactor,
    input: &[u8],
    session: &mut Session,
) -> Result<Vec<u8>, Error> {
    let text = std::str::from_utf8(input).map_err(|e| Error::InvalidUtf8 {
        offset: e.valid_up_to(),
    })?;
    let ls = lines(input);
    let mut events = Vec::new();
    let mut begin = 0;
    for (i, l) in ls.iter().enumerate() {
        if l.start == l.end || i + 1 == ls.len() {
            let end = if l.start == l.end { i } else { i + 1 };
            let data: Vec<usize> = (begin..end)
                .filter(|&j| field(&text[ls[j].start..ls[j].end]).0 == "data")
                .collect();
            let payload = data
                .iter()
                .map(|&j| field(&text[ls[j].start..ls[j].end]).1)
                .collect::<Vec<_>>()
                .join("\n");
            let json = serde_json::from_str::<Value>(&payload).ok();
            events.push(Event {
                lines: begin..i + 1,
                data,
                payload,
                json,
            });
            begin = i + 1;
        }
    }

    // Gather channel pieces in stream order.
    let mut order: Vec<String> = Vec::new();
    let mut pieces: HashMap<String, Vec<(usize, Vec<Seg>, String)>> = HashMap::new();
    for (ei, ev) in events.iter().enumerate() {
        for c in ev.json.as_ref().map(channels).unwrap_or_default() {
            let entry = pieces.entry(c.channel.clone()).or_insert_with(|| {
                order.push(c.channel.clone());
                Vec::new()
            });
            entry.push((ei, c.path, c.text));
        }
    }
    // Per event, the channel strings to replace: path -> new text.
    let mut replace: HashMap<usize, Vec<(Vec<Seg>, String)>> = HashMap::new();
    for ch in &order {
        let ps = &pieces[ch];
        let texts: Vec<&str> = ps.iter().map(|(_, _, t)| t.as_str()).collect();
        let outs = distribute(redactor, session, &texts)?;
        for ((ei, path, orig), new) in ps.iter().zip(outs) {
            if *orig != new {
                replace.entry(*ei).or_default().push((path.clone(), new));
            }
        }
    }

    let mut out = Vec::with_capacity(input.len());
    for (ei, ev) in events.iter().enumerate() {
        let new_payload = if ev.data.is_empty() {
            None
        } else if ev.json.is_some() {
            let reps = replace.get(&ei);
            let channel_paths: Vec<Vec<Seg>> = ev
                .json
                .as_ref()
                .map(channels)
                .unwrap_or_default()
                .into_iter()
                .map(|c| c.path)
                .collect();
            json::rewrite(ev.payload.as_bytes(), |lit, s| {
                if lit.is_key {
                    return Ok(Vec::new());
                }
                if channel_paths.iter().any(|p| p.as_slice() == lit.path) {
                    return Ok(reps
                        .and_then(|r| r.iter().find(|(p, _)| p.as_slice() == lit.path))
                        .map(|(_, new)| {
                            vec![Edit {
                                range: 0..s.len(),
                                text: new.clone(),
                            }]
                        })
                        .unwrap_or_default());
                }
                json::redact_value(redactor, session, lit.key(), s, 0, 0, None, None)
            })?
            .map(|b| String::from_utf8(b).expect("rewriting keeps UTF-8"))
        } else {
            match redactor.redact_str(&ev.payload, session)? {
                std::borrow::Cow::Owned(s) => Some(s),
                std::borrow::Cow::Borrowed(_) => None,
            }
        };
        let Some(new_payload) = new_payload else {
            let (a, b) = (ls[ev.lines.start].start, ls[ev.lines.end - 1].next);
            out.extend_from_slice(&input[a..b]);
            continue;
        };
        // Re-emit: data lines carry the new payload, every other line stays as it was.
        let mut parts = new_payload.split('\n');
        let same_shape = new_payload.matches('\n').count() + 1 == ev.data.len();
        for j in ev.lines.clone() {
            let l = ls[j];
            match ev.data.iter().position(|&d| d == j) {
                Some(k) if same_shape || k == 0 => {
                    let raw = &text[l.start..l.end];
                    let prefix_len = raw.len() - field(raw).1.len();
                    out.extend_from_slice(&raw.as_bytes()[..prefix_len]);
                    if same_shape {
                        out.extend_from_slice(parts.next().unwrap_or_default().as_bytes());
                    } else {
                        out.extend_from_slice(new_payload.replace('\n', "\ndata: ").as_bytes());
                    }
                    out.extend_from_slice(&input[l.end..l.next]);
                }
                Some(_) => {}
                None => out.extend_from_slice(&input[l.start..l.next]),
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_splitting_handles_all_terminators() {
        let s = b"a\nb\r\nc\rd";
        let l: Vec<_> = lines(s).iter().map(|l| (l.start, l.end, l.next)).collect();
        assert_eq!(l, vec![(0, 1, 2), (2, 3, 5), (5, 6, 7), (7, 8, 8)]);
    }

    #[test]
    fn fields() {
        assert_eq!(field("data: {\"a\":1}"), ("data", "{\"a\":1}"));
        assert_eq!(field("data:x"), ("data", "x"));
        assert_eq!(field(": keep-alive"), ("", "keep-alive"));
        assert_eq!(field("event"), ("event", ""));
    }

    #[test]
    fn finds_channels() {
        let v: Value = serde_json::from_str(
            r#"{"choices":[{"index":0,"delta":{"content":"hi","tool_calls":[{"index":2,"function":{"arguments":"{\"a\""}}]}}]}"#,
        )
        .unwrap();
        let c = channels(&v);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].channel, "chat:0:content");
        assert_eq!(c[1].channel, "chat:0:tool:2");
        assert_eq!(c[1].text, "{\"a\"");
        let v: Value = serde_json::from_str(
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"x"}}"#,
        )
        .unwrap();
        assert_eq!(channels(&v)[0].channel, "anthropic:1:text");
    }
}
