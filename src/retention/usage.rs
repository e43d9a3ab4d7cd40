//! Token usage read from an answer as it streams by: every `"usage": {...}` object (the
//! body of a JSON answer, OpenAI's final stream chunk, Anthropic's `message_start` and
//! `message_delta`, the Responses API's `response.completed`) is captured, bounded, and
//! folded into one [`TokenUsage`]. Only numbers are kept.

use memchr::memmem;
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
            let Some(n) = v.as_u64() else { continue };
            let slot = match k.as_str() {
                "prompt_tokens" | "input_tokens" => &mut self.input,
                "completion_tokens" | "output_tokens" => &mut self.output,
                "total_tokens" => &mut self.reported_total,
                "cache_read_input_tokens" => &mut self.cache_read,
                "cache_creation_input_tokens" => &mut self.cache_creation,
                _ => continue,
            };
            *slot = Some(slot.map_or(n, |old| old.max(n)));
        }
    }
}

const KEY: &[u8] = b"\"usage\"";
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
                        if let Ok(v) = serde_json::from_slice::<Value>(&cap.buf) {
                            self.usage.merge_json(&v);
                        }
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
                if let Some(p) = memmem::find(&joined, KEY) {
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
            match memmem::find(data, KEY) {
                Some(p) => {
                    self.capture = Some(Capture::default());
                    data = &data[p + KEY.len()..];
                }
                None => {
                    let keep = data.len().saturating_sub(KEY.len() - 1);
                    self.carry = data[keep..].to_vec();
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
}
