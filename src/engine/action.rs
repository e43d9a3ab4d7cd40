//! What happens to a detected value: redact, mask, hash, pseudonymize or block.
//!
//! Pseudonyms are deterministic keyed tokens, `<EMAIL_7QK2M4>`: HMAC-SHA256 over
//! (tenant, entity, normalized value) with the redactor's key, so the same value maps to the
//! same token across requests and replicas that share the key. The [`Session`] keeps the
//! reverse map for the request so a later step can restore the original.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::{Detection, Engine, Error};

/// The transformation applied to a detected value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Replace with `[ENTITY]`.
    Redact,
    /// Replace letters and digits with `*`; cards, phones, IBANs and SSNs keep their last 4.
    Mask,
    /// Replace with a short keyed hash, `[ENTITY:1f3a9c20b4]`: joinable, not reversible.
    Hash,
    /// Replace with a deterministic token, `<ENTITY_7QK2M4>`, restorable through the session.
    Pseudonymize,
    /// Refuse the whole message.
    Block,
}

impl Action {
    /// All actions, for help texts.
    pub const ALL: [Action; 5] = [
        Action::Redact,
        Action::Mask,
        Action::Hash,
        Action::Pseudonymize,
        Action::Block,
    ];

    /// The lower-case name used in config files and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Redact => "redact",
            Action::Mask => "mask",
            Action::Hash => "hash",
            Action::Pseudonymize => "pseudonymize",
            Action::Block => "block",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Action {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Action::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| {
                format!("unknown action {s:?} (redact, mask, hash, pseudonymize, block)")
            })
    }
}

/// The key behind hashes and pseudonyms. Its bytes never appear in `Debug` output.
///
/// Holds the HMAC state with the key already absorbed (its inner and outer pads hashed),
/// so that each MAC starts from a copy of it: two SHA-256 blocks fewer per token.
#[derive(Clone)]
pub struct Key(Arc<Hmac<Sha256>>);

impl Key {
    /// A key from bytes (at least 16 are recommended).
    pub fn new(bytes: &[u8]) -> Key {
        Key(Arc::new(
            <Hmac<Sha256> as Mac>::new_from_slice(bytes).expect("HMAC takes any key length"),
        ))
    }

    /// A fresh random key (tokens then differ between processes).
    pub fn random() -> Key {
        Key::new(&Self::random_bytes())
    }

    /// 32 random bytes (from /dev/urandom; std's random hasher keys as a fallback).
    pub fn random_bytes() -> [u8; 32] {
        let mut buf = [0u8; 32];
        if std::fs::File::open("/dev/urandom")
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut buf))
            .is_err()
        {
            // Fallback: std's per-process random hasher keys.
            use std::hash::{BuildHasher, Hasher};
            for chunk in buf.chunks_mut(8) {
                let mut h = std::collections::hash_map::RandomState::new().build_hasher();
                h.write_usize(chunk.as_ptr() as usize);
                chunk.copy_from_slice(&h.finish().to_le_bytes());
            }
        }
        buf
    }

    fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut m = (*self.0).clone();
        for p in parts {
            m.update(&(p.len() as u64).to_le_bytes());
            m.update(p);
        }
        m.finalize().into_bytes().into()
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

/// Per-message state: the reverse map of pseudonyms and detection counts.
#[derive(Debug, Default)]
pub struct Session {
    /// token -> original value.
    reverse: HashMap<String, String>,
    /// Detections counted by entity and the action taken.
    pub counts: BTreeMap<(Arc<str>, Action), u64>,
    /// When set, every detection is recorded here (entity, filter, action; no value).
    pub spans: Option<Vec<SpanRecord>>,
    record_values: bool,
}

/// One detection as reported by `veilgate redact --spans`.
#[derive(Debug, Clone)]
pub struct SpanRecord {
    pub entity: Arc<str>,
    pub filter: Arc<str>,
    pub action: Action,
    /// Byte range in the input as given (for JSON, inside the raw string literal).
    pub start: usize,
    pub end: usize,
    /// Only filled when explicitly asked for (`--show-values`).
    pub value: Option<String>,
}

impl Session {
    /// A session that records spans (values only if `values`).
    pub fn recording(values: bool) -> Session {
        Session {
            spans: Some(Vec::new()),
            record_values: values,
            ..Session::default()
        }
    }

    /// The original value of a pseudonym token issued in this session.
    pub fn original(&self, token: &str) -> Option<&str> {
        self.reverse.get(token).map(String::as_str)
    }

    /// All (token, original) pairs.
    pub fn pseudonyms(&self) -> impl Iterator<Item = (&str, &str)> {
        self.reverse.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Total detections.
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }
}

/// How answers (response bodies) are treated.
///
/// Default: pseudonyms issued for the request are restored, and PII the model produced
/// itself is redacted (`[EMAIL]`), except names (`PERSON`): answers mention public figures
/// and fictional people far more often than the user's own data, and the user's own names
/// come back restored from their pseudonyms anyway.
#[derive(Debug, Clone)]
pub struct ResponsePolicy {
    /// Restore pseudonyms issued in this session.
    pub restore: bool,
    /// Action for values the model produced; `None` leaves answers unscanned.
    pub action: Option<Action>,
    /// Entities not scanned in answers.
    pub skip: Vec<Arc<str>>,
}

impl Default for ResponsePolicy {
    fn default() -> Self {
        ResponsePolicy {
            restore: true,
            action: Some(Action::Redact),
            skip: vec!["PERSON".into()],
        }
    }
}

impl ResponsePolicy {
    /// Whether detections of `entity` are acted on in answers.
    pub fn scans(&self, entity: &str) -> bool {
        self.action.is_some() && !self.skip.iter().any(|e| &**e == entity)
    }
}

/// Applies a policy (an action per entity) to detections. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Redactor {
    engine: Arc<Engine>,
    all: Option<Action>,
    per_entity: HashMap<Arc<str>, Action>,
    key: Key,
    tenant: Arc<str>,
    response: ResponsePolicy,
    /// Values left alone for this redactor's tenant (lower-cased).
    allow: Arc<std::collections::HashSet<String>>,
}

impl Redactor {
    /// A redactor with each filter's default action and a random key.
    pub fn new(engine: Arc<Engine>) -> Redactor {
        Redactor {
            engine,
            all: None,
            per_entity: HashMap::new(),
            key: Key::random(),
            tenant: "default".into(),
            response: ResponsePolicy::default(),
            allow: Arc::default(),
        }
    }

    /// Sets how answers are treated.
    pub fn with_response_policy(mut self, policy: ResponsePolicy) -> Redactor {
        self.response = policy;
        self
    }

    /// How answers are treated.
    pub fn response_policy(&self) -> &ResponsePolicy {
        &self.response
    }

    /// Restores pseudonyms in an answer and treats PII the model produced, per the
    /// response policy.
    pub fn respond_str<'a>(
        &self,
        text: &'a str,
        session: &mut Session,
    ) -> Result<Cow<'a, str>, Error> {
        let (out, _) =
            super::stream::render(self, session, text, 0, None, super::stream::Mode::Response)?;
        Ok(if out == text {
            Cow::Borrowed(text)
        } else {
            Cow::Owned(out)
        })
    }

    /// Applies `action` to every entity (per-entity settings still win).
    pub fn with_action(mut self, action: Action) -> Redactor {
        self.all = Some(action);
        self
    }

    /// Applies `action` to one entity.
    pub fn with_entity_action(mut self, entity: &str, action: Action) -> Redactor {
        self.per_entity.insert(entity.into(), action);
        self
    }

    /// Sets the key behind hashes and pseudonyms.
    pub fn with_key(mut self, key: Key) -> Redactor {
        self.key = key;
        self
    }

    /// Leaves these values (exact, case-insensitive) as they are, on top of the engine's
    /// allow-list: a tenant's own addresses, product names, test accounts.
    pub fn with_allow_values<I: IntoIterator<Item = S>, S: AsRef<str>>(
        mut self,
        values: I,
    ) -> Redactor {
        let mut set = (*self.allow).clone();
        set.extend(values.into_iter().map(|v| v.as_ref().trim().to_lowercase()));
        self.allow = Arc::new(set);
        self
    }

    /// Sets the tenant mixed into pseudonyms.
    pub fn with_tenant(mut self, tenant: &str) -> Redactor {
        self.tenant = tenant.into();
        self
    }

    /// The detection engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The action for one detection in an answer.
    pub(crate) fn response_action(&self) -> Action {
        self.response.action.unwrap_or(Action::Redact)
    }

    /// The action for one detection.
    pub fn action_for(&self, d: &Detection) -> Action {
        self.per_entity
            .get(&d.entity)
            .copied()
            .or(self.all)
            .unwrap_or_else(|| self.engine.filters()[d.filter_index].action)
    }

    /// Detects and transforms `text`. Returns `Cow::Borrowed` when nothing was found.
    pub fn redact_str<'a>(
        &self,
        text: &'a str,
        session: &mut Session,
    ) -> Result<Cow<'a, str>, Error> {
        self.redact_str_keyed(text, None, session)
    }

    /// Like [`Redactor::redact_str`], for a JSON string value under object key `key`.
    pub fn redact_str_keyed<'a>(
        &self,
        text: &'a str,
        key: Option<&str>,
        session: &mut Session,
    ) -> Result<Cow<'a, str>, Error> {
        let dets = self.engine.detect_keyed(text, key);
        if dets.is_empty() {
            return Ok(Cow::Borrowed(text));
        }
        let mut out = String::with_capacity(text.len() + 16);
        let mut last = 0;
        for d in &dets {
            out.push_str(&text[last..d.start]);
            self.apply(d, &text[d.start..d.end], session, &mut out)?;
            last = d.end;
        }
        out.push_str(&text[last..]);
        Ok(Cow::Owned(out))
    }

    /// Writes the replacement of one detection to `out` and records it in the session.
    /// The span offsets recorded are those of `d`, relative to the text it was found in.
    pub fn apply(
        &self,
        d: &Detection,
        value: &str,
        session: &mut Session,
        out: &mut String,
    ) -> Result<(), Error> {
        self.apply_action(self.action_for(d), d, value, session, out)
    }

    /// [`Redactor::apply`] with an explicit action.
    pub fn apply_action(
        &self,
        action: Action,
        d: &Detection,
        value: &str,
        session: &mut Session,
        out: &mut String,
    ) -> Result<(), Error> {
        if !self.allow.is_empty() && self.allow.contains(&value.to_lowercase()) {
            out.push_str(value);
            return Ok(());
        }
        *session
            .counts
            .entry((d.entity.clone(), action))
            .or_insert(0) += 1;
        if let Some(spans) = session.spans.as_mut() {
            spans.push(SpanRecord {
                entity: d.entity.clone(),
                filter: d.filter.clone(),
                action,
                start: d.start,
                end: d.end,
                value: session.record_values.then(|| value.to_string()),
            });
        }
        match action {
            Action::Redact => {
                out.push('[');
                out.push_str(&d.entity);
                out.push(']');
            }
            Action::Mask => mask_into(&d.entity, value, out),
            Action::Hash => {
                let norm = normalize(&d.entity, value);
                let mac = self.key.mac(&[
                    b"hash",
                    self.tenant.as_bytes(),
                    d.entity.as_bytes(),
                    norm.as_bytes(),
                ]);
                out.push('[');
                out.push_str(&d.entity);
                out.push(':');
                for b in &mac[..5] {
                    push_hex(*b, out);
                }
                out.push(']');
            }
            Action::Pseudonymize => self.token_into(&d.entity, value, session, out),
            Action::Block => {
                return Err(Error::Blocked {
                    entity: d.entity.clone(),
                    filter: d.filter.clone(),
                });
            }
        }
        Ok(())
    }

    /// The pseudonym token of `value`, registered in the session's reverse map.
    pub fn token(&self, entity: &str, value: &str, session: &mut Session) -> String {
        let mut out = String::new();
        self.token_into(entity, value, session, &mut out);
        out
    }

    /// Appends the pseudonym token of `value` to `out` and registers it in the session's
    /// reverse map (the map keeps the only allocated copy of the token).
    fn token_into(&self, entity: &str, value: &str, session: &mut Session, out: &mut String) {
        let norm = normalize(entity, value);
        let mac = self.key.mac(&[
            b"pseudonym",
            self.tenant.as_bytes(),
            entity.as_bytes(),
            norm.as_bytes(),
        ]);
        // 6 base32 characters (30 bits); on a collision with another value in this session,
        // widen deterministically.
        let start = out.len();
        for width in [6usize, 10, 16] {
            out.truncate(start);
            out.push('<');
            out.push_str(entity);
            out.push('_');
            base32_into(&mac, width, out);
            out.push('>');
            let token = &out[start..];
            match session.reverse.get(token) {
                Some(orig) if normalize(entity, orig) != norm => continue,
                Some(_) => return,
                None => {
                    session.reverse.insert(token.to_string(), value.to_string());
                    return;
                }
            }
        }
        unreachable!("80-bit tokens do not collide")
    }
}

/// Appends the two lower-case hex digits of `b`.
fn push_hex(b: u8, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(char::from(HEX[usize::from(b >> 4)]));
    out.push(char::from(HEX[usize::from(b & 15)]));
}

/// Appends the Crockford base32 of the first `n * 5` bits of `bytes`.
fn base32_into(bytes: &[u8], n: usize, out: &mut String) {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let (mut acc, mut bits, mut i) = (0u32, 0u32, 0usize);
    for _ in 0..n {
        if bits < 5 {
            acc = (acc << 8) | u32::from(bytes[i]);
            i += 1;
            bits += 8;
        }
        bits -= 5;
        out.push(ALPHABET[((acc >> bits) & 31) as usize] as char);
    }
}

/// Crockford base32 of the first `n * 5` bits of `bytes`.
#[cfg(test)]
fn base32(bytes: &[u8], n: usize) -> String {
    let mut out = String::with_capacity(n);
    base32_into(bytes, n, &mut out);
    out
}

/// The form of a value that identifies it: tokens and hashes are computed over this, so
/// `Jane@ACME.io` and `jane@acme.io` share a pseudonym.
pub fn normalize(entity: &str, value: &str) -> String {
    match entity {
        "EMAIL" => value.trim().to_lowercase(),
        "PHONE" => {
            let mut s = String::with_capacity(value.len());
            let v = value.trim();
            if v.starts_with('+') {
                s.push('+');
            } else if let Some(rest) = v.strip_prefix("00") {
                if rest.starts_with(|c: char| c.is_ascii_digit()) {
                    s.push('+');
                    s.extend(rest.chars().filter(char::is_ascii_digit));
                    return s;
                }
            }
            s.extend(v.chars().filter(char::is_ascii_digit));
            s
        }
        "CREDIT_CARD" | "IBAN" | "US_SSN" | "MAC_ADDRESS" => value
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_uppercase())
            .collect(),
        "IP_ADDRESS" => value.trim().to_ascii_lowercase(),
        "PERSON" | "STREET_ADDRESS" => {
            // The words joined by single spaces, lower-cased (in place when ASCII, where
            // that is the same as `to_lowercase`).
            let mut joined = String::with_capacity(value.len());
            for w in value.split_whitespace() {
                if !joined.is_empty() {
                    joined.push(' ');
                }
                joined.push_str(w);
            }
            if joined.is_ascii() {
                joined.make_ascii_lowercase();
                joined
            } else {
                joined.to_lowercase()
            }
        }
        _ => value.to_string(),
    }
}

fn mask_into(entity: &str, value: &str, out: &mut String) {
    let keep = match entity {
        "CREDIT_CARD" | "PHONE" | "IBAN" | "US_SSN" => 4,
        _ => 0,
    };
    let alnum = value.chars().filter(|c| c.is_alphanumeric()).count();
    let mut seen = 0;
    for c in value.chars() {
        if c.is_alphanumeric() {
            seen += 1;
            out.push(if seen > alnum.saturating_sub(keep) {
                c
            } else {
                '*'
            });
        } else {
            out.push(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_is_crockford() {
        assert_eq!(base32(&[0, 0, 0, 0], 6), "000000");
        assert_eq!(base32(&[0xff, 0xff, 0xff, 0xff], 6), "ZZZZZZ");
        assert_eq!(base32(&[0x08, 0x86, 0, 0], 3), "123");
    }

    #[test]
    fn normalization() {
        assert_eq!(normalize("EMAIL", " Jane@ACME.io"), "jane@acme.io");
        assert_eq!(normalize("PHONE", "+44 20 7946 0958"), "+442079460958");
        assert_eq!(normalize("PHONE", "0049 30 1234567"), "+49301234567");
        assert_eq!(normalize("PHONE", "(415) 555-2671"), "4155552671");
        assert_eq!(normalize("IBAN", "gb82 west 1234"), "GB82WEST1234");
    }

    #[test]
    fn masking_keeps_last_four_of_cards() {
        let mut s = String::new();
        mask_into("CREDIT_CARD", "4111 1111 1111 1111", &mut s);
        assert_eq!(s, "**** **** **** 1111");
        s.clear();
        mask_into("EMAIL", "ab@cd.io", &mut s);
        assert_eq!(s, "**@**.**");
    }

    #[test]
    fn key_debug_hides_bytes() {
        assert_eq!(
            format!("{:?}", Key::new(b"super secret")),
            "Key(<redacted>)"
        );
    }
}
