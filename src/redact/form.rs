//! `application/x-www-form-urlencoded` bodies: values are decoded, scanned, re-encoded.

use crate::engine::{Error, Redactor, Session};

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes a form component (`+` is a space).
pub(crate) fn decode(s: &[u8]) -> Result<String, Error> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let v = s
                    .get(i + 1)
                    .copied()
                    .and_then(hex)
                    .zip(s.get(i + 2).copied().and_then(hex));
                match v {
                    Some((h, l)) => {
                        out.push(h << 4 | l);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|e| Error::InvalidUtf8 {
        offset: e.utf8_error().valid_up_to(),
    })
}

/// Percent-encodes a form component.
pub(crate) fn encode(s: &str, out: &mut Vec<u8>) {
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => out.push(b),
            b' ' => out.push(b'+'),
            _ => out.extend_from_slice(format!("%{b:02X}").as_bytes()),
        }
    }
}

/// Redacts every value of a form body; unchanged pairs keep their bytes.
pub(crate) fn redact_form(
    redactor: &Redactor,
    session: &mut Session,
    body: &[u8],
) -> Result<Option<Vec<u8>>, Error> {
    let mut out = Vec::with_capacity(body.len());
    let mut changed = false;
    for (i, pair) in body.split(|&b| b == b'&').enumerate() {
        if i > 0 {
            out.push(b'&');
        }
        let (key, value) = match pair.iter().position(|&b| b == b'=') {
            Some(p) => (&pair[..p], Some(&pair[p + 1..])),
            None => (pair, None),
        };
        let Some(value) = value else {
            out.extend_from_slice(pair);
            continue;
        };
        let text = decode(value)?;
        let key_text = decode(key)?;
        let new = redactor.redact_str_keyed(&text, Some(&key_text), session)?;
        out.extend_from_slice(key);
        out.push(b'=');
        if new == text {
            out.extend_from_slice(value);
        } else {
            changed = true;
            encode(&new, &mut out);
        }
    }
    Ok(changed.then_some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_round_trip() {
        let d = decode(b"a+b%40c.io%20%E2%82%AC%zz").unwrap();
        assert_eq!(d, "a b@c.io €%zz");
        let mut out = Vec::new();
        encode("a b@c.io", &mut out);
        assert_eq!(out, b"a+b%40c.io");
        assert!(decode(b"%ff").is_err());
    }
}
