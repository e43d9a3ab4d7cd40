//! Finding pseudonym tokens in model output and restoring the originals.
//!
//! Models copy tokens such as `<EMAIL_7QK2M4>` back into their answers, but not always
//! verbatim. Restored variants (see `tests`):
//!
//! - exact: `<EMAIL_7QK2M4>`;
//! - re-cased: `<email_7qk2m4>`, `<Email_7Qk2M4>`;
//! - re-spaced: up to two spaces after `<`, before `>` and around the `_`s
//!   (`< EMAIL_7QK2M4 >`, `<EMAIL _ 7QK2M4>`);
//! - cut anywhere across stream chunks (the streaming holdback keeps a partial token).
//!
//! Tokens this session did not issue are left as they are.

use std::ops::Range;

/// Longest text a (re-spaced) token can occupy.
pub const MAX_TOKEN_LEN: usize = 64;

/// A token found in text: its byte range and its canonical form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRef {
    pub range: Range<usize>,
    pub canonical: String,
}

fn token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b' '
}

/// Canonical form of a candidate `<...>` body: spaces removed, upper-cased; `None` if it
/// does not have the token shape `ENTITY_CODE`.
fn canonical(body: &[u8]) -> Option<String> {
    let mut s = String::with_capacity(body.len() + 2);
    s.push('<');
    let mut spaces = 0;
    for &b in body {
        if b == b' ' {
            spaces += 1;
            continue;
        }
        s.push(b.to_ascii_uppercase() as char);
    }
    s.push('>');
    let inner = &s[1..s.len() - 1];
    let (entity, code) = inner.rsplit_once('_')?;
    let ok = spaces <= 6
        && !entity.is_empty()
        && entity.as_bytes()[0].is_ascii_alphabetic()
        && matches!(code.len(), 6 | 10 | 16)
        && code.bytes().all(|b| b.is_ascii_alphanumeric());
    ok.then_some(s)
}

/// All token-shaped spans in `text`, in order.
pub fn find_tokens(text: &str) -> Vec<TokenRef> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(off) = memchr::memchr(b'<', &b[i..]) {
        let start = i + off;
        let mut j = start + 1;
        while j < b.len() && j - start < MAX_TOKEN_LEN && token_char(b[j]) {
            j += 1;
        }
        if j < b.len() && b[j] == b'>' {
            if let Some(canonical) = canonical(&b[start + 1..j]) {
                out.push(TokenRef {
                    range: start..j + 1,
                    canonical,
                });
                i = j + 1;
                continue;
            }
        }
        i = start + 1;
    }
    out
}

/// Where a partial token may begin at the end of `text` (at or after `from`); `text.len()`
/// if the text cannot end inside a token.
pub fn token_hold(text: &str, from: usize) -> usize {
    let b = text.as_bytes();
    let lo = b.len().saturating_sub(MAX_TOKEN_LEN).max(from);
    match memchr::memrchr(b'<', &b[lo..]) {
        Some(off) if b[lo + off + 1..].iter().all(|&c| token_char(c)) => lo + off,
        _ => b.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(text: &str) -> Vec<String> {
        find_tokens(text).into_iter().map(|t| t.canonical).collect()
    }

    #[test]
    fn finds_exact_recased_and_respaced_tokens() {
        assert_eq!(canon("hi <EMAIL_7QK2M4>!"), ["<EMAIL_7QK2M4>"]);
        assert_eq!(canon("hi <email_7qk2m4>"), ["<EMAIL_7QK2M4>"]);
        assert_eq!(
            canon("< EMAIL_7QK2M4 > and <CREDIT_CARD _ 7QK2M4>"),
            ["<EMAIL_7QK2M4>", "<CREDIT_CARD_7QK2M4>"]
        );
        assert_eq!(canon("<US_SSN_ABCDEF1234>"), ["<US_SSN_ABCDEF1234>"]);
    }

    #[test]
    fn ignores_other_angle_brackets() {
        assert!(canon("a <b> c <div class> <EMAIL_7QK> 1 < 2 > 0 <_ABCDEF>").is_empty());
        assert!(canon("<EMAIL_7QK2M4").is_empty());
    }

    #[test]
    fn ranges_cover_the_written_form() {
        let t = "x < Email_7qk2m4 > y";
        let r = &find_tokens(t)[0].range;
        assert_eq!(&t[r.clone()], "< Email_7qk2m4 >");
    }

    #[test]
    fn holds_partial_tokens_only() {
        assert_eq!(token_hold("hello <EMAIL_7Q", 0), 6);
        assert_eq!(token_hold("hello <", 0), 6);
        assert_eq!(token_hold("hello <EMAIL_7QK2M4> done", 0), 25);
        assert_eq!(token_hold("a < b, c", 0), 8);
        assert_eq!(token_hold("x <EMAIL", 3), 8);
    }
}
