//! Values identified by the field they sit in rather than by their shape: a JSON value
//! under `"dob"`, a `Password: ...` line, a CSV column headed `birth_date`.
//!
//! A `detector = "field"` filter lists the field names it owns in `fields`. Names are
//! compared normalized (lower-case letters and digits only, so `Date of Birth`,
//! `date_of_birth` and `dateOfBirth` are one name); a name starting with `*` matches as a
//! suffix (`*password` matches `DB_PASSWORD`). Three places are recognised:
//!
//! - a JSON string value whose key is a field name (the whole value);
//! - a line `Label: value` or `LABEL=value` (also YAML and `.env` style, quotes removed):
//!   the value to the end of the line, or to ` | `;
//! - a delimited table (`,` `;` tab `|`) whose header row names a field: that column's
//!   cells, until a blank line.
//!
//! The filter's validator still has to accept the value (`date`, `phone`, ...).

use std::collections::HashMap;
use std::ops::Range;

/// Longest value a field detection covers, in bytes.
pub const MAX_VALUE: usize = 160;
/// Longest label of a `Label: value` line.
const MAX_LABEL: usize = 40;

/// Field names -> filter index.
#[derive(Debug, Default)]
pub(crate) struct FieldMatcher {
    exact: HashMap<String, usize>,
    suffix: Vec<(String, usize)>,
}

/// Lower-case letters and digits of `s`.
pub(crate) fn normalize(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Longest key [`normalize_ascii`] normalizes without allocating.
pub(crate) const KEY_BUF: usize = 64;

/// [`normalize`] of an ASCII `s` of at most [`KEY_BUF`] bytes, written into `buf`
/// (every JSON string value is looked up by its key, so this runs per value); `None`
/// for other keys, which take [`normalize`].
pub(crate) fn normalize_ascii<'b>(s: &str, buf: &'b mut [u8; KEY_BUF]) -> Option<&'b str> {
    if s.len() > KEY_BUF || !s.is_ascii() {
        return None;
    }
    let mut n = 0;
    for &c in s.as_bytes() {
        if c.is_ascii_alphanumeric() {
            buf[n] = c.to_ascii_lowercase();
            n += 1;
        }
    }
    // ASCII letters and digits only, so always valid UTF-8.
    std::str::from_utf8(&buf[..n]).ok()
}

impl FieldMatcher {
    pub(crate) fn add(&mut self, name: &str, filter: usize) -> Result<(), String> {
        let (suffix, name) = match name.strip_prefix('*') {
            Some(rest) => (true, rest),
            None => (false, name),
        };
        let n = normalize(name);
        if n.is_empty() {
            return Err(format!("field name {name:?} has no letters or digits"));
        }
        if suffix {
            self.suffix.push((n, filter));
        } else {
            self.exact.insert(n, filter);
        }
        Ok(())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.suffix.is_empty()
    }

    /// The filter owning field `name`, if any. Suffix names match identifiers only
    /// (`DB_PASSWORD`), never phrases (`Reset your password`).
    pub(crate) fn lookup(&self, name: &str) -> Option<usize> {
        if name.len() > MAX_LABEL {
            return None;
        }
        let mut buf = [0; KEY_BUF];
        let owned;
        let n = match normalize_ascii(name, &mut buf) {
            Some(n) => n,
            None => {
                owned = normalize(name);
                owned.as_str()
            }
        };
        if n.is_empty() {
            return None;
        }
        if let Some(f) = self.exact.get(n) {
            return Some(*f);
        }
        if name.trim().contains(' ') {
            return None;
        }
        self.suffix
            .iter()
            .find(|(s, _)| n.ends_with(s.as_str()))
            .map(|(_, f)| *f)
    }

    /// Candidate (filter, value range) pairs in `text` at or after `from`.
    pub(crate) fn find(
        &self,
        text: &str,
        from: usize,
        key: Option<&str>,
        out: &mut Vec<(usize, Range<usize>)>,
    ) {
        if let Some(f) = key.and_then(|k| self.lookup(k)) {
            if let Some(r) = trim_value(text, 0, text.len()) {
                if r.start >= from {
                    out.push((f, r));
                }
            }
            return;
        }
        let mut table: Option<(u8, Vec<Option<usize>>)> = None;
        let mut start = 0;
        let b = text.as_bytes();
        while start <= b.len() {
            let end = memchr::memchr(b'\n', &b[start..]).map_or(b.len(), |i| start + i);
            let line = &text[start..end];
            if line.trim().is_empty() {
                table = None;
            } else if let Some((delim, cols)) = &table {
                if end > from {
                    for (i, cell) in cells(line, *delim).enumerate() {
                        if let Some(Some(f)) = cols.get(i) {
                            if let Some(r) = trim_value(text, start + cell.start, start + cell.end)
                            {
                                if r.start >= from {
                                    out.push((*f, r));
                                }
                            }
                        }
                    }
                }
            } else if let Some(t) = self.header(line) {
                table = Some(t);
            } else if end > from {
                let mut after = 0;
                if let Some((f, r)) = self.labelled(line) {
                    after = r.end;
                    if let Some(r) = trim_value(text, start + r.start, start + r.end) {
                        if r.start >= from {
                            out.push((f, r));
                        }
                    }
                }
                self.members(line, after, |f, r| {
                    if let Some(r) = trim_value(text, start + r.start, start + r.end) {
                        if r.start >= from {
                            out.push((f, r));
                        }
                    }
                });
            }
            start = end + 1;
        }
    }

    /// Streaming: where pending text must be held so a `Label: value` line is seen
    /// whole. The unfinished last line is held while it may still become, or is, a
    /// labelled line of a known field; `text.len()` otherwise.
    pub(crate) fn hold(&self, text: &str, from: usize) -> usize {
        let line_start = text.rfind('\n').map_or(0, |i| i + 1).max(from);
        let line = &text[line_start..];
        if line.len() > MAX_LABEL + MAX_VALUE + 8 {
            return text.len();
        }
        let t = line.trim_start_matches([' ', '\t', '>', '-', '*', '#', '{', '[', ',']);
        let held = match t.find([':', '=']) {
            Some(sep) => self
                .lookup(t[..sep].trim().trim_matches(['"', '\'']))
                .is_some(),
            None => {
                let label = t.trim_matches(['"', '\'']);
                let n = normalize(label);
                if label.len() > MAX_LABEL {
                    false
                } else if !label.contains(' ') {
                    // An identifier so far (`DB_PASS`, `Date`): it may still become one.
                    label
                        .chars()
                        .all(|c| c.is_alphanumeric() || "_-.".contains(c))
                } else {
                    // A phrase: only while it is the start of a known field name.
                    self.exact.keys().any(|k| k.starts_with(&n))
                }
            }
        };
        if held { line_start } else { text.len() }
    }

    /// Whether `line` is a header row naming at least one field.
    pub(crate) fn is_header(&self, line: &str) -> bool {
        !self.is_empty() && self.header(line).is_some()
    }

    /// A header row: delimited cells, at least one of which is a field name.
    fn header(&self, line: &str) -> Option<(u8, Vec<Option<usize>>)> {
        // A header's first cell is a short name: reject prose before counting anything.
        // Searched with memchr: every prose line gets here.
        let b = line.as_bytes();
        let head = &b[..b.len().min(MAX_LABEL + 3)];
        let first_end = match (
            memchr::memchr3(b',', b';', b'\t', head),
            memchr::memchr(b'|', head),
        ) {
            (Some(x), Some(y)) => x.min(y),
            (x, y) => x.or(y)?,
        };
        if line.len() > 1024 || first_end > MAX_LABEL + 2 {
            return None;
        }
        let counts = [b',', b';', b'\t', b'|'].map(|d| memchr::memchr_iter(d, b).count());
        let (i, _) = counts
            .iter()
            .enumerate()
            .max_by_key(|(i, c)| (**c, std::cmp::Reverse(*i)))?;
        let delim = [b',', b';', b'\t', b'|'][i];
        let mut any = false;
        let mut cols = Vec::new();
        for c in cells(line, delim) {
            let cell = line[c].trim().trim_matches('"');
            // Header cells are short names, never sentences.
            if cell.len() > MAX_LABEL || cell.split_whitespace().count() > 4 {
                return None;
            }
            let f = self.lookup(cell);
            any |= f.is_some();
            cols.push(f);
        }
        any.then_some((delim, cols))
    }

    /// `Label: value`, `LABEL=value`, `"label": "value"` at the start of a line.
    fn labelled(&self, line: &str) -> Option<(usize, Range<usize>)> {
        let lead = line.len()
            - line
                .trim_start_matches([' ', '\t', '>', '-', '*', '#', '{', '[', ','])
                .len();
        let rest = &line[lead..];
        let head = &rest.as_bytes()[..rest.len().min(MAX_LABEL + 3)];
        let sep = memchr::memchr2(b':', b'=', head)?;
        if sep == 0 || sep > MAX_LABEL + 2 {
            return None;
        }
        let label = rest[..sep].trim().trim_matches(['"', '\'']);
        if label.is_empty()
            || !label
                .chars()
                .all(|c| c.is_alphanumeric() || " _-./()".contains(c))
        {
            return None;
        }
        let f = self.lookup(label)?;
        let vstart = lead + sep + 1;
        // A quoted value ends at its closing quote (`"dob": "1985-03-12", ...`).
        let v = line[vstart..].trim_start();
        if let Some(q) = v.chars().next().filter(|c| *c == '"' || *c == '\'') {
            let open = line.len() - v.len();
            let close = line[open + 1..].find(q)?;
            return Some((f, open + 1..open + 1 + close));
        }
        let mut vend = line.len();
        if let Some(i) = line[vstart..].find(" | ") {
            vend = vstart + i;
        }
        // `Pwd=x;Encrypt=true`: a connection string's next `Key=` ends the value.
        if let Some(i) = line[vstart..vend].find(';') {
            let after = line[vstart + i + 1..vend].trim_start();
            if after.split_once('=').is_some_and(|(k, _)| {
                !k.is_empty()
                    && k.chars()
                        .all(|c| c.is_alphanumeric() || c == ' ' || c == '_')
            }) {
                vend = vstart + i;
            }
        }
        Some((f, vstart..vend))
    }
}

impl FieldMatcher {
    /// JSON members `"key": "value"` (or `"key": 12345`) of a known field anywhere in
    /// `line` from `from`: a record pasted on one line of a prompt, a log line with a
    /// JSON payload. A line without `":` costs one memchr pass.
    fn members(&self, line: &str, from: usize, mut found: impl FnMut(usize, Range<usize>)) {
        let b = line.as_bytes();
        let mut at = from;
        while let Some(i) = memchr::memchr(b':', &b[at..]) {
            let colon = at + i;
            at = colon + 1;
            // The key: a short quoted name right before the colon.
            let k_end = line[from..colon].trim_end_matches(' ').len() + from;
            if k_end < from + 2 || b[k_end - 1] != b'"' {
                continue;
            }
            let lo = (k_end - 1).saturating_sub(MAX_LABEL + 1).max(from);
            let Some(q) = memchr::memrchr(b'"', &b[lo..k_end - 1]).map(|q| lo + q) else {
                continue;
            };
            let Some(f) = line.get(q + 1..k_end - 1).and_then(|k| self.lookup(k)) else {
                continue;
            };
            let v = colon + 1 + (line.len() - colon - 1 - line[colon + 1..].trim_start().len());
            match b.get(v) {
                Some(b'"') => {
                    // To the closing quote; an escaped quote does not close.
                    let mut e = v + 1;
                    while let Some(j) = memchr::memchr2(b'"', b'\\', &b[e..]) {
                        if b[e + j] == b'"' {
                            found(f, v + 1..e + j);
                            at = e + j + 1;
                            break;
                        }
                        e += j + 2;
                        if e >= b.len() {
                            break;
                        }
                    }
                }
                Some(c) if c.is_ascii_digit() => {
                    let e = b[v..]
                        .iter()
                        .position(|c| matches!(c, b',' | b'}' | b']' | b' '))
                        .map_or(b.len(), |j| v + j);
                    found(f, v..e);
                    at = e;
                }
                _ => {}
            }
        }
    }
}

/// Byte ranges of the cells of a delimited line; double quotes protect delimiters.
fn cells(line: &str, delim: u8) -> impl Iterator<Item = Range<usize>> + '_ {
    let b = line.as_bytes();
    let mut i = 0;
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let start = i;
        let mut quoted = false;
        while i < b.len() {
            match b[i] {
                b'"' => quoted = !quoted,
                c if c == delim && !quoted => break,
                _ => {}
            }
            i += 1;
        }
        let r = start..i;
        if i >= b.len() {
            done = true;
        } else {
            i += 1;
        }
        Some(r)
    })
}

/// Whether a field value has the shape its entity needs at the very least: passwords have
/// no spaces, addresses a digit and a letter, phones at least seven digits.
pub(crate) fn plausible(entity: &str, value: &str) -> bool {
    match entity {
        "PASSWORD" => !value.contains(char::is_whitespace),
        "STREET_ADDRESS" => {
            value.contains(|c: char| c.is_ascii_digit()) && value.contains(char::is_alphabetic)
        }
        "PHONE" => value.bytes().filter(u8::is_ascii_digit).count() >= 7,
        _ => true,
    }
}

/// The value inside `text[start..end]`: surrounding spaces, quotes and trailing `,;` cut.
fn trim_value(text: &str, start: usize, end: usize) -> Option<Range<usize>> {
    let s = &text[start..end];
    let lead = s.len() - s.trim_start_matches([' ', '\t', '"', '\'', '\r']).len();
    let body = s[lead..].trim_end_matches([' ', '\t', '"', '\'', '\r', ',', ';']);
    if body.is_empty() || body.len() > MAX_VALUE {
        return None;
    }
    Some(start + lead..start + lead + body.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_keys_normalize_on_the_stack_as_on_the_heap() {
        let mut buf = [0; KEY_BUF];
        for k in [
            "First_Name",
            "DB_PASSWORD",
            "e-mail",
            "x",
            "",
            "__",
            "Date of Birth 2",
        ] {
            assert_eq!(
                normalize_ascii(k, &mut buf),
                Some(normalize(k).as_str()),
                "{k}"
            );
        }
        let long = "a".repeat(KEY_BUF + 1);
        assert_eq!(normalize_ascii(&long, &mut buf), None);
        assert_eq!(normalize_ascii(&long[1..], &mut buf), Some(&long[1..]));
        // Non-ASCII keys take the allocating path (Unicode lower-casing).
        assert_eq!(normalize_ascii("Prénom", &mut buf), None);
        assert_eq!(matcher().lookup("Date_Of_Birth"), Some(0));
        assert_eq!(matcher().lookup("DB_PASSWORD"), Some(1));
    }

    fn matcher() -> FieldMatcher {
        let mut m = FieldMatcher::default();
        m.add("dob", 0).unwrap();
        m.add("date_of_birth", 0).unwrap();
        m.add("*password", 1).unwrap();
        m
    }

    fn found<'a>(text: &'a str, key: Option<&str>) -> Vec<(usize, &'a str)> {
        let mut out = Vec::new();
        matcher().find(text, 0, key, &mut out);
        out.into_iter().map(|(f, r)| (f, &text[r])).collect()
    }

    #[test]
    fn json_keys() {
        assert_eq!(
            found(" 1985-03-12 ", Some("dateOfBirth")),
            [(0, "1985-03-12")]
        );
        assert_eq!(found("x", Some("name")), []);
    }

    #[test]
    fn labelled_lines() {
        let t = "Name: Jo\nDate of Birth: 12/03/1985\n  DB_PASSWORD=\"s3cr3t\"\npassword: hunter2 | ok\n";
        assert_eq!(
            found(t, None),
            [(0, "12/03/1985"), (1, "s3cr3t"), (1, "hunter2")]
        );
        assert_eq!(found("The password is: weak", None), []);
        // Labels may carry brackets ("Né(e) le"); they count as the letters inside.
        assert_eq!(
            found("Date (of) Birth: 1985-03-12\nNote (x): 1985-03-12", None),
            [(0, "1985-03-12")]
        );
        assert_eq!(
            found("{\"dob\": \"1985-03-12\", \"x\": 1}", None),
            [(0, "1985-03-12")]
        );
    }

    #[test]
    fn json_members_anywhere_on_a_line() {
        let t = r#"[{"name":"Yuki Sato","dob":"1990-04-12","note":"a \"dob\": here"},{"x":1,"DB_PASSWORD" : "s3\"cr3t","date_of_birth": 19900412}]"#;
        assert_eq!(
            found(t, None),
            [(0, "1990-04-12"), (1, r#"s3\"cr3t"#), (0, "19900412")]
        );
        // The labelled first member is found once, the next one too.
        assert_eq!(
            found(r#"{"dob": "1985-03-12", "password": "hunter2"}"#, None),
            [(0, "1985-03-12"), (1, "hunter2")]
        );
        for none in [
            "Note: the dob field is optional",
            r#"he said "dob": nothing"#,
            r#"{"a": 1, "dob": null, "password": true}"#,
            r#"{"dob": "unterminated"#,
        ] {
            assert_eq!(found(none, None), [], "{none}");
        }
    }

    #[test]
    fn streaming_hold_keeps_label_lines_only() {
        let m = matcher();
        assert_eq!(m.hold("ok\nDate of", 0), 3, "may become 'Date of Birth'");
        assert_eq!(m.hold("ok\nDate of Birth: 12/03", 0), 3);
        assert_eq!(m.hold("ok\nDB_PASS", 0), 3);
        assert_eq!(m.hold("ok\nhello, write to ", 0), 19);
        assert_eq!(m.hold("ok\nSure thing", 0), 13);
        assert_eq!(m.hold("ok\nNote: fine", 0), 13);
    }

    #[test]
    fn csv_columns() {
        let t =
            "name;DOB;city\nJo;1985-03-12;Rome\n\"Doe; J\";\"01.02.1990\";Oslo\n\nx;1999-01-01;y";
        assert_eq!(found(t, None), [(0, "1985-03-12"), (0, "01.02.1990")]);
    }
}
