//! Token usage read from an answer as it streams by: every `"usage": {...}` object (the
//! body of a JSON answer, OpenAI's final stream chunk, Anthropic's `message_start` and
//! `message_delta`, the Responses API's `response.completed`) is captured, bounded, and
//! folded into one [`TokenUsage`]. Only numbers are kept.

use memchr::memmem;
use serde::de;
use serde_json::Value;

/// Tokens an exchange used, as the provider reported them. Counts are cumulative in
/// every provider's stream, so the largest value seen per field wins.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenUsage {
    /// `prompt_tokens` / `input_tokens`.
    pub input: Option<u64>,
    /// `completion_tokens` / `output_tokens`.
    pub output: Option<u64>,
    /// `total_tokens` as reported.
    pub reported_total: Option<u64>,
    /// Anthropic `cache_read_input_tokens`.
    pub cache_read: Option<u64>,
    /// Anthropic `cache_creation_input_tokens`.
    pub cache_creation: Option<u64>,
}

impl TokenUsage {
    /// Nothing was reported.
    pub fn is_empty(&self) -> bool {
        *self == TokenUsage::default()
    }

    /// `total_tokens` if reported, else input + output.
    pub fn total(&self) -> Option<u64> {
        self.reported_total.or(match (self.input, self.output) {
            (None, None) => None,
            (i, o) => Some(i.unwrap_or(0) + o.unwrap_or(0)),
        })
    }

    /// Folds one `usage` object in.
    pub fn merge_json(&mut self, usage: &Value) {
        let Some(obj) = usage.as_object() else {
            return;
        };
        for (k, v) in obj {
            if let (Some(f), Some(n)) = (Field::of(k), v.as_u64()) {
                self.fold(f, n);
            }
        }
    }

    /// Counts are cumulative in every provider's stream: the largest value seen wins.
    fn fold(&mut self, f: Field, n: u64) {
        let slot = match f {
            Field::Input => &mut self.input,
            Field::Output => &mut self.output,
            Field::Total => &mut self.reported_total,
            Field::CacheRead => &mut self.cache_read,
            Field::CacheCreation => &mut self.cache_creation,
        };
        *slot = Some(slot.map_or(n, |old| old.max(n)));
    }

    /// Folds one `usage` object, given as JSON text, in: like [`merge_json`] on its
    /// parsed value, without building one (no map, no key strings). Anything that is
    /// not a JSON object leaves the counts as they are.
    ///
    /// [`merge_json`]: TokenUsage::merge_json
    pub fn merge_slice(&mut self, json: &[u8]) {
        let mut next = *self;
        let mut de = serde_json::Deserializer::from_slice(json);
        if de::DeserializeSeed::deserialize(Fold(&mut next), &mut de).is_ok() && de.end().is_ok() {
            *self = next;
        }
    }
}

/// A counted member of a `usage` object.
#[derive(Clone, Copy)]
enum Field {
    Input,
    Output,
    Total,
    CacheRead,
    CacheCreation,
}

impl Field {
    fn of(key: &str) -> Option<Field> {
        Some(match key {
            "prompt_tokens" | "input_tokens" => Field::Input,
            "completion_tokens" | "output_tokens" => Field::Output,
            "total_tokens" => Field::Total,
            "cache_read_input_tokens" => Field::CacheRead,
            "cache_creation_input_tokens" => Field::CacheCreation,
            _ => return None,
        })
    }
}

/// Visits a `usage` object's members, folding counted numbers into the usage and
/// skipping everything else.
struct Fold<'a>(&'a mut TokenUsage);

impl<'de> de::DeserializeSeed<'de> for Fold<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> de::Visitor<'de> for Fold<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a usage object")
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(Key(field)) = map.next_key_seed(KeyOf)? {
            let Count(n) = map.next_value()?;
            if let (Some(f), Some(n)) = (field, n) {
                self.0.fold(f, n);
            }
        }
        Ok(())
    }
}

/// A member name, reduced to the counted field it names (if any), without allocating.
struct Key(Option<Field>);
struct KeyOf;

impl<'de> de::DeserializeSeed<'de> for KeyOf {
    type Value = Key;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_str(self)
    }
}

impl de::Visitor<'_> for KeyOf {
    type Value = Key;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a member name")
    }
    fn visit_str<E: de::Error>(self, k: &str) -> Result<Key, E> {
        Ok(Key(Field::of(k)))
    }
}

/// A member's value: a count when it is a non-negative integer (what
/// `Value::as_u64` accepts), else nothing; nested values are skipped unbuilt.
struct Count(Option<u64>);

impl<'de> de::Deserialize<'de> for Count {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Count, D::Error> {
        d.deserialize_any(CountVisitor)
    }
}

struct CountVisitor;

impl<'de> de::Visitor<'de> for CountVisitor {
    type Value = Count;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_u64<E>(self, n: u64) -> Result<Count, E> {
        Ok(Count(Some(n)))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Count, E> {
        Ok(Count(u64::try_from(n).ok()))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Count, E> {
        Ok(Count(None))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Count, E> {
        Ok(Count(None))
    }
    fn visit_str<E>(self, _: &str) -> Result<Count, E> {
        Ok(Count(None))
    }
    fn visit_unit<E>(self) -> Result<Count, E> {
        Ok(Count(None))
    }
    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Count, A::Error> {
        de::Visitor::visit_map(de::IgnoredAny, map).map(|_| Count(None))
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Count, A::Error> {
        de::Visitor::visit_seq(de::IgnoredAny, seq).map(|_| Count(None))
    }
}

const KEY: &[u8] = b"\"usage\"";

/// The searcher for [`KEY`], built once: `memmem::find` would rebuild it on every frame.
static FINDER: std::sync::LazyLock<memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memmem::Finder::new(KEY));
/// A usage object larger than this is not one (and is not kept).
const MAX_OBJECT: usize = 4096;

/// Finds and parses `"usage": {...}` objects across body frames.
#[derive(Debug, Default)]
pub(crate) struct UsageTap {
    /// The last bytes of the previous frame, in case the key was cut.
    carry: Vec<u8>,
    capture: Option<Capture>,
    pub(crate) usage: TokenUsage,
}

#[derive(Debug, Default)]
struct Capture {
    buf: Vec<u8>,
    /// Seen the `:` after the key.
    colon: bool,
    depth: u32,
    in_str: bool,
    escaped: bool,
}

enum Step {
    /// Needs more bytes.
    More,
    /// The object is complete.
    Done,
    /// Not an object (`null`, a number) or too large.
    Abandon,
}

impl Capture {
    /// Consumes bytes of `data`; returns how many and what happened.
    fn feed(&mut self, data: &[u8]) -> (usize, Step) {
        for (i, &b) in data.iter().enumerate() {
            if self.depth == 0 {
                match b {
                    b' ' | b'\t' | b'\r' | b'\n' => {}
                    b':' if !self.colon => self.colon = true,
                    b'{' if self.colon => {
                        self.depth = 1;
                        self.buf.push(b);
                    }
                    _ => return (i + 1, Step::Abandon),
                }
                continue;
            }
            self.buf.push(b);
            if self.buf.len() > MAX_OBJECT {
                return (i + 1, Step::Abandon);
            }
            if self.in_str {
                match b {
                    _ if self.escaped => self.escaped = false,
                    b'\\' => self.escaped = true,
                    b'"' => self.in_str = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => self.in_str = true,
                b'{' => self.depth += 1,
                b'}' => {
                    self.depth -= 1;
                    if self.depth == 0 {
                        return (i + 1, Step::Done);
                    }
                }
                _ => {}
            }
        }
        (data.len(), Step::More)
    }
}

impl UsageTap {
    /// Feeds one frame of the answer.
    pub(crate) fn feed(&mut self, mut data: &[u8]) {
        loop {
            if let Some(cap) = &mut self.capture {
                let (used, step) = cap.feed(data);
                data = &data[used..];
                match step {
                    Step::More => return,
                    Step::Done => {
                        self.usage.merge_slice(&cap.buf);
                        self.capture = None;
                    }
                    Step::Abandon => self.capture = None,
                }
            }
            if data.is_empty() {
                return;
            }
            // A key cut between the previous frame and this one.
            if !self.carry.is_empty() {
                let head = &data[..data.len().min(KEY.len() - 1)];
                let mut joined = std::mem::take(&mut self.carry);
                let carried = joined.len();
                joined.extend_from_slice(head);
                if let Some(p) = FINDER.find(&joined) {
                    self.capture = Some(Capture::default());
                    data = &data[p + KEY.len() - carried..];
                    continue;
                }
                if data.len() < KEY.len() - 1 {
                    let keep = joined.len().saturating_sub(KEY.len() - 1);
                    self.carry = joined[keep..].to_vec();
                    return;
                }
            }
            match FINDER.find(data) {
                Some(p) => {
                    self.capture = Some(Capture::default());
                    data = &data[p + KEY.len()..];
                }
                None => {
                    let keep = data.len().saturating_sub(KEY.len() - 1);
                    self.carry.clear();
                    self.carry.extend_from_slice(&data[keep..]);
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tap(frames: &[&str]) -> TokenUsage {
        let mut t = UsageTap::default();
        for f in frames {
            t.feed(f.as_bytes());
        }
        t.usage
    }

    #[test]
    fn openai_json_answer() {
        let body = r#"{"id":"chatcmpl-1","choices":[{"message":{"content":"the word \"usage\" in text"}}],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17,"prompt_tokens_details":{"cached_tokens":0}}}"#;
        let u = tap(&[body]);
        assert_eq!(
            (u.input, u.output, u.total()),
            (Some(12), Some(5), Some(17))
        );
        // Every split point gives the same answer.
        for i in 0..body.len() {
            for j in i..body.len() {
                assert_eq!(tap(&[&body[..i], &body[i..j], &body[j..]]), u, "{i} {j}");
            }
        }
    }

    #[test]
    fn anthropic_stream_takes_the_largest_cumulative_counts() {
        let u = tap(&[
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":25,\"output_tokens\":1,\"cache_read_input_tokens\":3}}}\n\n",
            "event: content_block_delta\ndata: {\"delta\":{\"text\":\"hi\"}}\n\n",
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":15}}\n\n",
        ]);
        assert_eq!(u.input, Some(25));
        assert_eq!(u.output, Some(15));
        assert_eq!(u.cache_read, Some(3));
        assert_eq!(u.total(), Some(40));
    }

    #[test]
    fn null_usage_and_text_mentions_are_ignored() {
        let u = tap(&[
            "data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}],\"usage\":null}\n\n",
            "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":2,\"total_tokens\":9}}\n\n",
        ]);
        assert_eq!((u.input, u.output, u.total()), (Some(7), Some(2), Some(9)));
        assert!(tap(&["{\"usage\": \"lots\"}"]).is_empty());
        assert!(tap(&[&format!("{{\"usage\":{{\"a\":\"{}\"}}}}", "x".repeat(5000))]).is_empty());
    }

    #[test]
    fn reading_the_text_agrees_with_reading_the_parsed_value() {
        let objects = [
            r#"{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17}"#,
            r#"{"input_tokens":25,"output_tokens":1,"cache_read_input_tokens":3,"cache_creation_input_tokens":4}"#,
            r#"{"prompt_tokens":1.5,"completion_tokens":-2,"total_tokens":"9","x":null}"#,
            r#"{"prompt_tokens_details":{"cached_tokens":7,"nested":[1,{"a":2}]},"output_tokens":3}"#,
            r#"{"\u0069nput_tokens":8,"output_tokens":true}"#,
            r#"{"total_tokens":18446744073709551615,"output_tokens":0}"#,
            r#"{"input_tokens":5,"input_tokens":9}"#,
            r#"{}"#,
            r#"[1,2]"#,
            r#"null"#,
            r#"{"input_tokens":5"#,
            r#"{"input_tokens":5} trailing"#,
        ];
        for o in objects {
            let start = TokenUsage {
                input: Some(6),
                ..TokenUsage::default()
            };
            let mut by_value = start;
            if let Ok(v) = serde_json::from_slice::<Value>(o.as_bytes()) {
                by_value.merge_json(&v);
            }
            let mut by_text = start;
            by_text.merge_slice(o.as_bytes());
            assert_eq!(by_text, by_value, "{o}");
        }
    }
}
