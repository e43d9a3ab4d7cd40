//! Minimal JSON (encode with several real-world escaping styles, decode) and SSE
//! framing/decoding, std only.

#[derive(Clone, Debug, PartialEq)]
pub enum J {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

pub fn s(x: impl Into<String>) -> J {
    J::Str(x.into())
}
pub fn n(x: impl ToString) -> J {
    J::Num(x.to_string())
}
pub fn obj(kv: Vec<(&str, J)>) -> J {
    J::Obj(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

impl J {
    pub fn get(&self, k: &str) -> Option<&J> {
        match self {
            J::Obj(kv) => kv.iter().find(|(kk, _)| kk == k).map(|(_, v)| v),
            _ => None,
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            J::Str(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_arr(&self) -> &[J] {
        match self {
            J::Arr(a) => a,
            _ => &[],
        }
    }
    pub fn num(&self) -> Option<i64> {
        match self {
            J::Num(n) => n.parse().ok(),
            _ => None,
        }
    }
}

/// How string contents are escaped; these mirror real encoders.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Esc {
    /// serde_json / JS JSON.stringify: only what must be escaped.
    Minimal,
    /// Python json.dumps default (ensure_ascii): every non-ASCII char as \uXXXX (surrogate pairs).
    Ascii,
    /// PHP json_encode: like Ascii, and "/" as "\/".
    Php,
    /// Go encoding/json: '<', '>', '&' as \u003c \u003e \u0026 (plus U+2028/2029).
    Go,
    /// Some sanitisers: '@' written as \u0040, non-ASCII \u-escaped.
    At,
}

pub fn esc_str(out: &mut String, s: &str, m: Esc) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            '/' if m == Esc::Php => out.push_str("\\/"),
            '<' | '>' | '&' if m == Esc::Go => out.push_str(&format!("\\u{:04x}", c as u32)),
            '\u{2028}' | '\u{2029}' if m == Esc::Go => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            '@' if m == Esc::At => out.push_str("\\u0040"),
            c if !c.is_ascii() && matches!(m, Esc::Ascii | Esc::Php | Esc::At) => {
                let mut buf = [0u16; 2];
                for u in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{:04x}", u));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `pretty`: None = compact without spaces (JS), Some(0) = Python style ", " / ": ",
/// Some(n>0) = indented by n spaces.
pub fn enc(v: &J, m: Esc, pretty: Option<usize>) -> String {
    let mut out = String::new();
    enc_into(&mut out, v, m, pretty, 0);
    out
}

fn enc_into(out: &mut String, v: &J, m: Esc, pretty: Option<usize>, depth: usize) {
    let (sep, colon) = match pretty {
        None => (",", ":"),
        Some(0) => (", ", ": "),
        Some(_) => (",", ": "),
    };
    let nl = |out: &mut String, d: usize| {
        if let Some(ind) = pretty {
            if ind > 0 {
                out.push('\n');
                for _ in 0..ind * d {
                    out.push(' ');
                }
            }
        }
    };
    match v {
        J::Null => out.push_str("null"),
        J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        J::Num(n) => out.push_str(n),
        J::Str(s) => esc_str(out, s, m),
        J::Arr(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(sep);
                }
                nl(out, depth + 1);
                enc_into(out, x, m, pretty, depth + 1);
            }
            if !a.is_empty() {
                nl(out, depth);
            }
            out.push(']');
        }
        J::Obj(kv) => {
            out.push('{');
            for (i, (k, x)) in kv.iter().enumerate() {
                if i > 0 {
                    out.push_str(sep);
                }
                nl(out, depth + 1);
                esc_str(out, k, m);
                out.push_str(colon);
                enc_into(out, x, m, pretty, depth + 1);
            }
            if !kv.is_empty() {
                nl(out, depth);
            }
            out.push('}');
        }
    }
}

// ---------------------------------------------------------------- parsing

pub fn parse(text: &str) -> Result<J, String> {
    let b = text.as_bytes();
    let mut p = P { b, i: 0 };
    p.ws();
    let v = p.value(0)?;
    p.ws();
    if p.i != b.len() {
        return Err(format!("trailing data at {}", p.i));
    }
    Ok(v)
}

struct P<'a> {
    b: &'a [u8],
    i: usize,
}

impl P<'_> {
    fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\n' | b'\r' | b'\t') {
            self.i += 1;
        }
    }
    fn eat(&mut self, c: u8) -> Result<(), String> {
        self.ws();
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected '{}' at {}", c as char, self.i))
        }
    }
    fn value(&mut self, depth: usize) -> Result<J, String> {
        if depth > 128 {
            return Err("too deep".into());
        }
        self.ws();
        match self.b.get(self.i) {
            None => Err("eof".into()),
            Some(b'{') => {
                self.i += 1;
                let mut kv = Vec::new();
                self.ws();
                if self.b.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    return Ok(J::Obj(kv));
                }
                loop {
                    self.ws();
                    let k = self.string()?;
                    self.eat(b':')?;
                    let v = self.value(depth + 1)?;
                    kv.push((k, v));
                    self.ws();
                    match self.b.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(J::Obj(kv));
                        }
                        _ => return Err(format!("bad object at {}", self.i)),
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                let mut a = Vec::new();
                self.ws();
                if self.b.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Ok(J::Arr(a));
                }
                loop {
                    a.push(self.value(depth + 1)?);
                    self.ws();
                    match self.b.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(J::Arr(a));
                        }
                        _ => return Err(format!("bad array at {}", self.i)),
                    }
                }
            }
            Some(b'"') => Ok(J::Str(self.string()?)),
            Some(b't') if self.b[self.i..].starts_with(b"true") => {
                self.i += 4;
                Ok(J::Bool(true))
            }
            Some(b'f') if self.b[self.i..].starts_with(b"false") => {
                self.i += 5;
                Ok(J::Bool(false))
            }
            Some(b'n') if self.b[self.i..].starts_with(b"null") => {
                self.i += 4;
                Ok(J::Null)
            }
            Some(c) if *c == b'-' || c.is_ascii_digit() => {
                let st = self.i;
                while self.i < self.b.len()
                    && matches!(
                        self.b[self.i],
                        b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'
                    )
                {
                    self.i += 1;
                }
                Ok(J::Num(
                    String::from_utf8_lossy(&self.b[st..self.i]).into_owned(),
                ))
            }
            Some(_) => Err(format!("unexpected byte at {}", self.i)),
        }
    }
    fn hex4(&mut self) -> Result<u32, String> {
        let h = self.b.get(self.i..self.i + 4).ok_or("short \\u")?;
        let s = std::str::from_utf8(h).map_err(|e| e.to_string())?;
        self.i += 4;
        u32::from_str_radix(s, 16).map_err(|e| e.to_string())
    }
    fn string(&mut self) -> Result<String, String> {
        if self.b.get(self.i) != Some(&b'"') {
            return Err(format!("expected string at {}", self.i));
        }
        self.i += 1;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let c = *self.b.get(self.i).ok_or("unterminated string")?;
            self.i += 1;
            match c {
                b'"' => return String::from_utf8(out).map_err(|e| e.to_string()),
                b'\\' => {
                    let e = *self.b.get(self.i).ok_or("bad escape")?;
                    self.i += 1;
                    let ch = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let u = self.hex4()?;
                            if (0xD800..0xDC00).contains(&u) {
                                if self.b.get(self.i..self.i + 2) != Some(b"\\u") {
                                    return Err("lone surrogate".into());
                                }
                                self.i += 2;
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err("bad low surrogate".into());
                                }
                                char::from_u32(0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00))
                                    .ok_or("bad surrogate pair")?
                            } else {
                                char::from_u32(u).ok_or("lone low surrogate")?
                            }
                        }
                        _ => return Err("bad escape".into()),
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                c if c < 0x20 => return Err("control char in string".into()),
                c => out.push(c),
            }
        }
    }
}

/// Decoded text of a JSON document: its string values (not keys) in document order,
/// one per line. A string value that is itself a JSON object or array (tool-call
/// `arguments`, a pasted record) is replaced by its own decoded text.
pub fn json_text(v: &J) -> String {
    let mut parts = Vec::new();
    collect(v, &mut parts);
    parts.join("\n")
}

fn collect(v: &J, out: &mut Vec<String>) {
    match v {
        J::Str(s) => out.push(nested(s)),
        J::Arr(a) => a.iter().for_each(|x| collect(x, out)),
        J::Obj(kv) => kv.iter().for_each(|(_, x)| collect(x, out)),
        _ => {}
    }
}

pub fn nested(s: &str) -> String {
    let t = s.trim_start();
    if t.starts_with('{') || t.starts_with('[') {
        if let Ok(inner) = parse(s) {
            if matches!(inner, J::Obj(_) | J::Arr(_)) {
                return json_text(&inner);
            }
        }
    }
    s.to_string()
}

// ---------------------------------------------------------------- SSE

/// Splits an SSE byte stream into events; each event is its `event:` name (if any) and
/// its joined `data:` payload.
pub fn sse_events(text: &str) -> Vec<(Option<String>, String)> {
    let norm = text.replace("\r\n", "\n");
    let mut out = Vec::new();
    for block in norm.split("\n\n") {
        let mut ev = None;
        let mut data: Vec<&str> = Vec::new();
        for line in block.lines() {
            if let Some(rest) = line.strip_prefix("data:") {
                data.push(rest.strip_prefix(' ').unwrap_or(rest));
            } else if let Some(rest) = line.strip_prefix("event:") {
                ev = Some(rest.trim().to_string());
            }
        }
        if !data.is_empty() {
            out.push((ev, data.join("\n")));
        }
    }
    out
}

/// Decoded text of an SSE stream: per channel (choice / tool call / content block), the
/// concatenation of its deltas; channels joined by newlines in order of first appearance.
pub fn sse_text(text: &str) -> Result<String, String> {
    let mut chans: Vec<(String, String)> = Vec::new();
    let mut push = |key: String, piece: &str| {
        if let Some(c) = chans.iter_mut().find(|(k, _)| *k == key) {
            c.1.push_str(piece);
        } else {
            chans.push((key, piece.to_string()));
        }
    };
    for (_, data) in sse_events(text) {
        if data.trim() == "[DONE]" {
            continue;
        }
        let v = parse(&data)?;
        // OpenAI chat.completion.chunk
        for ch in v.get("choices").map(|c| c.as_arr()).unwrap_or(&[]) {
            let idx = ch.get("index").and_then(|i| i.num()).unwrap_or(0);
            if let Some(d) = ch.get("delta") {
                if let Some(t) = d.get("content").and_then(|c| c.as_str()) {
                    push(format!("c{idx}"), t);
                }
                for tc in d.get("tool_calls").map(|c| c.as_arr()).unwrap_or(&[]) {
                    let ti = tc.get("index").and_then(|i| i.num()).unwrap_or(0);
                    if let Some(a) = tc
                        .get("function")
                        .and_then(|f| f.get("arguments"))
                        .and_then(|a| a.as_str())
                    {
                        push(format!("c{idx}t{ti}"), a);
                    }
                }
            }
        }
        // Anthropic content_block_delta
        if v.get("type").and_then(|t| t.as_str()) == Some("content_block_delta") {
            let idx = v.get("index").and_then(|i| i.num()).unwrap_or(0);
            if let Some(d) = v.get("delta") {
                if let Some(t) = d.get("text").and_then(|c| c.as_str()) {
                    push(format!("b{idx}"), t);
                }
                if let Some(t) = d.get("partial_json").and_then(|c| c.as_str()) {
                    push(format!("b{idx}"), t);
                }
            }
        }
    }
    Ok(chans
        .into_iter()
        .map(|(_, t)| nested(&t))
        .collect::<Vec<_>>()
        .join("\n"))
}
