//! A structure-preserving JSON rewriter.
//!
//! Every byte outside a changed string literal stays identical, and inside a changed literal
//! the unchanged parts keep their original escapes. Detection runs on the *decoded* text
//! (`\u0040`, `\n`, `\"` and surrogate pairs resolved); replacements are re-escaped. A string
//! that itself holds a JSON document (tool-call `arguments`) is rewritten recursively.
//! The whole input is validated: invalid JSON is an error, never a partial rewrite.

use std::ops::Range;

use super::{Error, Redactor, Session};

/// Maximum nesting of arrays and objects.
pub const MAX_DEPTH: usize = 128;

/// A step of the path to a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A replacement of decoded bytes `range` of one string literal by `text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub range: Range<usize>,
    pub text: String,
}

/// What the visitor is told about one string literal.
#[derive(Debug)]
pub struct StrLit<'a> {
    /// Path from the root to this value (for a key: to the object holding it).
    pub path: &'a [Seg],
    /// True if the literal is an object key (keys are reported but rarely changed).
    pub is_key: bool,
    /// Byte offset of the literal's content (after the opening quote) in the input.
    pub raw_start: usize,
    /// The literal's content as written, escapes included.
    pub raw: &'a str,
}

impl StrLit<'_> {
    /// The object key this value sits under, if any.
    pub fn key(&self) -> Option<&str> {
        match self.path.last() {
            Some(Seg::Key(k)) if !self.is_key => Some(k),
            _ => None,
        }
    }
}

/// Walks `input`, calling `visit` with each string literal and its decoded text; applies
/// the returned edits. Returns `None` when nothing changed (the input can be used as is).
pub fn rewrite<F>(input: &[u8], mut visit: F) -> Result<Option<Vec<u8>>, Error>
where
    F: FnMut(&StrLit<'_>, &str) -> Result<Vec<Edit>, Error>,
{
    let text = std::str::from_utf8(input).map_err(|e| Error::InvalidUtf8 {
        offset: e.valid_up_to(),
    })?;
    let mut p = Parser {
        s: text,
        b: input,
        i: 0,
        path: Vec::new(),
        out: None,
        copied: 0,
        buf: String::new(),
        spare_keys: Vec::new(),
    };
    p.ws();
    p.value(0, &mut visit)?;
    p.ws();
    if p.i != input.len() {
        return Err(p.err("trailing characters after the JSON value"));
    }
    Ok(p.out.map(|mut out| {
        out.extend_from_slice(&input[p.copied..]);
        out
    }))
}

struct Parser<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
    path: Vec<Seg>,
    out: Option<Vec<u8>>,
    /// Input bytes before this offset are already in `out`.
    copied: usize,
    buf: String,
    /// Strings of keys already left (popped from `path`), reused for the next keys: one
    /// allocation per nesting level instead of one per key.
    spare_keys: Vec<String>,
}

impl<'a> Parser<'a> {
    fn err(&self, reason: &'static str) -> Error {
        Error::InvalidJson {
            offset: self.i,
            reason,
        }
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn value<F>(&mut self, depth: usize, visit: &mut F) -> Result<(), Error>
    where
        F: FnMut(&StrLit<'_>, &str) -> Result<Vec<Edit>, Error>,
    {
        match self.b.get(self.i) {
            Some(b'{') => {
                if depth >= MAX_DEPTH {
                    return Err(self.err("nesting too deep"));
                }
                self.i += 1;
                self.ws();
                if self.eat(b'}') {
                    return Ok(());
                }
                loop {
                    if self.b.get(self.i) != Some(&b'"') {
                        return Err(self.err("expected a string key"));
                    }
                    let key = self.string(true, visit)?;
                    self.ws();
                    if !self.eat(b':') {
                        return Err(self.err("expected ':'"));
                    }
                    self.ws();
                    self.path.push(Seg::Key(key));
                    self.value(depth + 1, visit)?;
                    if let Some(Seg::Key(k)) = self.path.pop() {
                        self.spare_keys.push(k);
                    }
                    self.ws();
                    if self.eat(b',') {
                        self.ws();
                        continue;
                    }
                    if self.eat(b'}') {
                        return Ok(());
                    }
                    return Err(self.err("expected ',' or '}'"));
                }
            }
            Some(b'[') => {
                if depth >= MAX_DEPTH {
                    return Err(self.err("nesting too deep"));
                }
                self.i += 1;
                self.ws();
                if self.eat(b']') {
                    return Ok(());
                }
                let mut index = 0;
                loop {
                    self.path.push(Seg::Index(index));
                    self.value(depth + 1, visit)?;
                    self.path.pop();
                    index += 1;
                    self.ws();
                    if self.eat(b',') {
                        self.ws();
                        continue;
                    }
                    if self.eat(b']') {
                        return Ok(());
                    }
                    return Err(self.err("expected ',' or ']'"));
                }
            }
            Some(b'"') => self.string(false, visit).map(drop),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.err("expected a JSON value")),
            None => Err(self.err("unexpected end of input")),
        }
    }

    fn literal(&mut self, lit: &[u8]) -> Result<(), Error> {
        if self.b[self.i..].starts_with(lit) {
            self.i += lit.len();
            Ok(())
        } else {
            Err(self.err("invalid literal"))
        }
    }

    fn number(&mut self) -> Result<(), Error> {
        let digits = |p: &mut Self| {
            let start = p.i;
            while p.b.get(p.i).is_some_and(u8::is_ascii_digit) {
                p.i += 1;
            }
            p.i - start
        };
        self.eat(b'-');
        match self.b.get(self.i) {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                digits(self);
            }
            _ => return Err(self.err("invalid number")),
        }
        if self.eat(b'.') && digits(self) == 0 {
            return Err(self.err("invalid number fraction"));
        }
        if matches!(self.b.get(self.i), Some(b'e' | b'E')) {
            self.i += 1;
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            if digits(self) == 0 {
                return Err(self.err("invalid number exponent"));
            }
        }
        Ok(())
    }

    /// Parses a string literal at `self.i` (on the quote), reports it, applies edits.
    /// Returns the decoded text for keys, an empty string for values.
    fn string<F>(&mut self, is_key: bool, visit: &mut F) -> Result<String, Error>
    where
        F: FnMut(&StrLit<'_>, &str) -> Result<Vec<Edit>, Error>,
    {
        self.i += 1;
        let start = self.i;
        let mut escaped = false;
        loop {
            let Some(off) = memchr::memchr2(b'"', b'\\', &self.b[self.i..]) else {
                self.i = self.b.len();
                return Err(self.err("unterminated string"));
            };
            let run = &self.b[self.i..self.i + off];
            // Branch-free over chunks so it vectorizes; locate the byte only on error.
            if run
                .chunks(32)
                .any(|ch| ch.iter().fold(false, |a, &c| a | (c < 0x20)))
            {
                self.i += run.iter().position(|&c| c < 0x20).unwrap_or(0);
                return Err(self.err("control character in string"));
            }
            self.i += off;
            if self.b[self.i] == b'"' {
                break;
            }
            escaped = true;
            self.i += 1;
            match self.b.get(self.i) {
                Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.i += 1,
                Some(b'u') => {
                    let hex = self
                        .b
                        .get(self.i + 1..self.i + 5)
                        .ok_or_else(|| self.err("truncated \\u escape"))?;
                    if !hex.iter().all(u8::is_ascii_hexdigit) {
                        return Err(self.err("invalid \\u escape"));
                    }
                    self.i += 5;
                }
                _ => return Err(self.err("invalid escape")),
            }
        }
        let end = self.i;
        self.i += 1;
        let raw = &self.s[start..end];
        let mut owned;
        let decoded: &str = if escaped {
            owned = std::mem::take(&mut self.buf);
            owned.clear();
            decode_into(raw, &mut owned).map_err(|reason| Error::InvalidJson {
                offset: start,
                reason,
            })?;
            &owned
        } else {
            owned = String::new();
            raw
        };
        let lit = StrLit {
            path: &self.path,
            is_key,
            raw_start: start,
            raw,
        };
        let edits = visit(&lit, decoded)?;
        let key = if is_key {
            let mut k = self.spare_keys.pop().unwrap_or_default();
            k.clear();
            k.push_str(decoded);
            k
        } else {
            String::new()
        };
        if !edits.is_empty() {
            let out = self
                .out
                .get_or_insert_with(|| Vec::with_capacity(self.b.len() + 64));
            out.extend_from_slice(&self.b[self.copied..start]);
            write_edited(raw, escaped, &edits, out);
            self.copied = end;
        }
        if escaped {
            self.buf = owned;
        }
        Ok(key)
    }
}

/// Decodes the content of a JSON string literal (already checked for valid escapes).
pub fn decode_into(raw: &str, out: &mut String) -> Result<(), &'static str> {
    // Decoding never lengthens: one allocation instead of a doubling series of copies.
    out.reserve(raw.len());
    let b = raw.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let Some(off) = memchr::memchr(b'\\', &b[i..]) else {
            out.push_str(&raw[i..]);
            break;
        };
        out.push_str(&raw[i..i + off]);
        i += off;
        let (c, n) = decode_escape(&b[i..])?;
        out.push(c);
        i += n;
    }
    Ok(())
}

/// Decodes one escape at the start of `b`; returns the char and the bytes consumed.
fn decode_escape(b: &[u8]) -> Result<(char, usize), &'static str> {
    let c = match b.get(1) {
        Some(b'"') => '"',
        Some(b'\\') => '\\',
        Some(b'/') => '/',
        Some(b'b') => '\u{8}',
        Some(b'f') => '\u{c}',
        Some(b'n') => '\n',
        Some(b'r') => '\r',
        Some(b't') => '\t',
        Some(b'u') => {
            let hi = hex4(b.get(2..6).ok_or("truncated \\u escape")?)?;
            if (0xD800..0xDC00).contains(&hi) {
                if b.get(6) != Some(&b'\\') || b.get(7) != Some(&b'u') {
                    return Err("lone surrogate in \\u escape");
                }
                let lo = hex4(b.get(8..12).ok_or("truncated \\u escape")?)?;
                if !(0xDC00..0xE000).contains(&lo) {
                    return Err("invalid surrogate pair");
                }
                let cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                return Ok((char::from_u32(cp).ok_or("invalid code point")?, 12));
            }
            if (0xDC00..0xE000).contains(&hi) {
                return Err("lone surrogate in \\u escape");
            }
            return Ok((char::from_u32(hi).ok_or("invalid code point")?, 6));
        }
        _ => return Err("invalid escape"),
    };
    Ok((c, 2))
}

fn hex4(h: &[u8]) -> Result<u32, &'static str> {
    let s = std::str::from_utf8(h).map_err(|_| "invalid \\u escape")?;
    u32::from_str_radix(s, 16).map_err(|_| "invalid \\u escape")
}

/// Appends `s` escaped as JSON string content (minimal escaping).
pub fn escape_into(s: &str, out: &mut Vec<u8>) {
    let b = s.as_bytes();
    let mut last = 0;
    for (i, &c) in b.iter().enumerate() {
        let esc: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&b[last..i]);
        if esc.is_empty() {
            out.extend_from_slice(format!("\\u{c:04x}").as_bytes());
        } else {
            out.extend_from_slice(esc);
        }
        last = i + 1;
    }
    out.extend_from_slice(&b[last..]);
}

/// Maps decoded byte offsets (sorted) to raw offsets within the literal.
fn raw_offsets(raw: &str, targets: &[usize]) -> Vec<usize> {
    let b = raw.as_bytes();
    let mut out = Vec::with_capacity(targets.len());
    let (mut ri, mut di) = (0usize, 0usize);
    let mut t = targets.iter().peekable();
    loop {
        while let Some(&&x) = t.peek() {
            if x <= di {
                out.push(ri);
                t.next();
            } else {
                break;
            }
        }
        if t.peek().is_none() || ri >= b.len() {
            break;
        }
        if b[ri] == b'\\' {
            let (c, n) = decode_escape(&b[ri..]).expect("validated escape");
            ri += n;
            di += c.len_utf8();
        } else {
            // Plain bytes map one to one: jump to the next escape or the next target.
            let next_escape = memchr::memchr(b'\\', &b[ri..]).map_or(b.len(), |o| ri + o);
            let next_target = t.peek().map_or(usize::MAX, |&&x| ri + (x - di));
            let to = next_escape.min(next_target).max(ri + 1);
            di += to - ri;
            ri = to;
        }
    }
    // Targets at or past the end map to the end.
    out.resize(targets.len(), b.len());
    out
}

/// Writes the literal's content with `edits` applied, keeping unchanged raw bytes.
fn write_edited(raw: &str, escaped: bool, edits: &[Edit], out: &mut Vec<u8>) {
    let map = if escaped {
        let targets: Vec<usize> = edits
            .iter()
            .flat_map(|e| [e.range.start, e.range.end])
            .collect();
        raw_offsets(raw, &targets)
    } else {
        edits
            .iter()
            .flat_map(|e| [e.range.start, e.range.end])
            .collect()
    };
    let mut last = 0;
    for (k, e) in edits.iter().enumerate() {
        let (rs, re) = (map[2 * k], map[2 * k + 1]);
        out.extend_from_slice(&raw.as_bytes()[last..rs]);
        escape_into(&e.text, out);
        last = re;
    }
    out.extend_from_slice(&raw.as_bytes()[last..]);
}

/// True for strings that are binary payloads, never scanned as text: `data:` URLs with
/// base64 and long unbroken base64 runs (images, audio, embeddings).
pub fn is_blob(s: &str) -> bool {
    if s.len() >= 16 && s.starts_with("data:") {
        // Bytes, not a `str` slice: byte 128 may fall inside a character.
        let head = &s.as_bytes()[..s.len().min(128)];
        if let Some(i) = memchr::memmem::find(head, b";base64,") {
            return is_base64(&s[i + 8..]);
        }
    }
    s.len() >= 256 && is_base64(s)
}

fn is_base64(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_'))
}

/// Redacts every string value of a JSON document (keys are left as they are).
pub fn redact_json(
    redactor: &Redactor,
    input: &[u8],
    session: &mut Session,
) -> Result<Vec<u8>, Error> {
    Ok(redact_json_inner(redactor, input, session, 0)?.unwrap_or_else(|| input.to_vec()))
}

fn redact_json_inner(
    redactor: &Redactor,
    input: &[u8],
    session: &mut Session,
    nesting: usize,
) -> Result<Option<Vec<u8>>, Error> {
    let mut tables = Tables::default();
    rewrite(input, |lit, s| {
        if lit.is_key {
            return Ok(Vec::new());
        }
        let header = tables.header(redactor, lit.path, s);
        redact_value(
            redactor,
            session,
            lit.key(),
            s,
            nesting,
            lit.raw_start,
            Some(lit.raw),
            header,
        )
    })
}

/// A table sent one row per array element (an embeddings `input` of CSV lines): the
/// header row of the array, read with each later row of it so that its columns are known
/// (`date_of_birth`, `street`, ...). One per document walk.
#[derive(Debug, Default)]
pub(crate) struct Tables(Option<(Vec<Seg>, String)>);

impl Tables {
    /// The header row that the string value `s` at `path` is a row under, if any;
    /// remembers `s` when it is an array element that is a header row.
    pub(crate) fn header(&mut self, redactor: &Redactor, path: &[Seg], s: &str) -> Option<&str> {
        let Some((Seg::Index(_), parent)) = path.split_last() else {
            return None;
        };
        let row = matches!(&self.0, Some((p, _)) if p.as_slice() == parent);
        if !row && !s.contains('\n') && redactor.engine().is_table_header(s) {
            self.0 = Some((parent.to_vec(), s.to_string()));
        }
        self.0.as_ref().filter(|_| row).map(|(_, h)| h.as_str())
    }
}

/// Edits for one decoded string value: JSON inside the string is rewritten recursively,
/// blobs are skipped, anything else is scanned as text; a row of a table is scanned under
/// its `header` row (see [`Tables`]).
#[allow(clippy::too_many_arguments)]
pub(crate) fn redact_value(
    redactor: &Redactor,
    session: &mut Session,
    key: Option<&str>,
    s: &str,
    nesting: usize,
    raw_start: usize,
    raw: Option<&str>,
    header: Option<&str>,
) -> Result<Vec<Edit>, Error> {
    if s.is_empty() || is_blob(s) {
        return Ok(Vec::new());
    }
    let t = s.trim_ascii();
    if nesting < 4
        && ((t.starts_with('{') && t.ends_with('}')) || (t.starts_with('[') && t.ends_with(']')))
    {
        let before = session.spans.as_ref().map_or(0, Vec::len);
        match redact_json_inner(redactor, s.as_bytes(), session, nesting + 1) {
            Ok(Some(new)) => {
                if let Some(spans) = session.spans.as_mut() {
                    let end = raw_start + raw.map_or(s.len(), str::len);
                    for sp in &mut spans[before..] {
                        (sp.start, sp.end) = (raw_start, end);
                    }
                }
                let text = String::from_utf8(new).expect("rewriting keeps UTF-8");
                return Ok(vec![Edit {
                    range: 0..s.len(),
                    text,
                }]);
            }
            Ok(None) => return Ok(Vec::new()),
            Err(Error::Blocked { entity, filter }) => {
                return Err(Error::Blocked { entity, filter });
            }
            Err(_) => {
                if let Some(spans) = session.spans.as_mut() {
                    spans.truncate(before);
                }
            }
        }
    }
    let dets = match header {
        None => redactor.engine().detect_keyed(s, key),
        Some(h) => {
            // Detected under its header line; only what falls in the row counts.
            let at = h.len() + 1;
            let mut dets = redactor.engine().detect_keyed(&format!("{h}\n{s}"), key);
            dets.retain(|d| d.start >= at);
            for d in &mut dets {
                d.start -= at;
                d.end -= at;
            }
            dets
        }
    };
    if dets.is_empty() {
        return Ok(Vec::new());
    }
    let before = session.spans.as_ref().map_or(0, Vec::len);
    let mut edits = Vec::with_capacity(dets.len());
    for d in &dets {
        // Room for a token (`<ENTITY_XXXXXX>`) or a mask of the value: no regrowth.
        let mut text = String::with_capacity((d.end - d.start).max(d.entity.len() + 12));
        redactor.apply(d, &s[d.start..d.end], session, &mut text)?;
        edits.push(Edit {
            range: d.start..d.end,
            text,
        });
    }
    if let Some(spans) = session.spans.as_mut() {
        let targets: Vec<usize> = spans[before..]
            .iter()
            .flat_map(|sp| [sp.start, sp.end])
            .collect();
        let map = match raw {
            Some(raw) if raw.len() != s.len() => raw_offsets(raw, &targets),
            _ => targets,
        };
        for (k, sp) in spans[before..].iter_mut().enumerate() {
            (sp.start, sp.end) = (raw_start + map[2 * k], raw_start + map[2 * k + 1]);
        }
    }
    Ok(edits)
}

#[cfg(test)]
mod tests {

    #[test]
    fn blob_check_never_slices_inside_a_character() {
        let s = format!("data: {}", "ü".repeat(100));
        assert!(!is_blob(&s));
        assert!(is_blob(&format!(
            "data:image/png;base64,{}",
            "QUJD".repeat(8)
        )));
    }

    use super::*;

    fn upper_emails(input: &str) -> Result<String, Error> {
        let out = rewrite(input.as_bytes(), |lit, s| {
            if lit.is_key {
                return Ok(vec![]);
            }
            Ok(s.match_indices("secret")
                .map(|(i, m)| Edit {
                    range: i..i + m.len(),
                    text: "[S]\"".into(),
                })
                .collect())
        })?;
        Ok(out.map_or_else(|| input.to_string(), |o| String::from_utf8(o).unwrap()))
    }

    #[test]
    fn untouched_bytes_stay_identical() {
        let input = "{ \"a\" : [1, 2.5e-3, true, null, \"x\\u00e9y\"],\n \"b\":\"no\" }";
        assert_eq!(upper_emails(input).unwrap(), input);
    }

    #[test]
    fn edits_keep_surrounding_escapes() {
        let input = r#"{"k":"caf\u00e9 secret \"q\" secret\n"}"#;
        assert_eq!(
            upper_emails(input).unwrap(),
            r#"{"k":"caf\u00e9 [S]\" \"q\" [S]\"\n"}"#
        );
    }

    #[test]
    fn decodes_surrogate_pairs() {
        let mut s = String::new();
        decode_into(r"\ud83d\ude00 \u0040", &mut s).unwrap();
        assert_eq!(s, "😀 @");
        assert!(decode_into(r"\ud83d", &mut String::new()).is_err());
    }

    #[test]
    fn rejects_invalid_json() {
        for bad in [
            "",
            "{",
            "{\"a\":}",
            "[1,]",
            "{\"a\" 1}",
            "\"\u{1}\"",
            "01",
            "1.",
            "[1] x",
            "\"\\x\"",
            "tru",
        ] {
            assert!(upper_emails(bad).is_err(), "{bad:?} should be rejected");
        }
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert!(upper_emails(&deep).is_err());
    }

    #[test]
    fn accepts_valid_json() {
        for ok in [
            "0",
            "-1.5E+10",
            "\"\"",
            "[]",
            "{}",
            " [ {\"a\":[null]} ] ",
            "\"\\/\\b\\f\"",
        ] {
            assert_eq!(upper_emails(ok).unwrap(), ok);
        }
    }

    #[test]
    fn raw_offset_mapping() {
        let raw = r"a\nb\u00e9c";
        // decoded: a \n b é(2 bytes) c
        assert_eq!(
            raw_offsets(raw, &[0, 1, 2, 3, 5, 6]),
            vec![0, 1, 3, 4, 10, 11]
        );
    }

    #[test]
    fn blobs() {
        assert!(is_blob("data:image/png;base64,iVBORw0KGgoAAAANSUhEUg=="));
        assert!(is_blob(&"QUJD".repeat(100)));
        assert!(!is_blob("hello world"));
        assert!(!is_blob("data:text/plain,hello"));
    }
}
