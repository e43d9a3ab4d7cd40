//! The allow-list: detected values that are documentation placeholders and stay intact.
//!
//! It is deliberately narrow (see `filters/allow.toml`): reserved documentation e-mail
//! domains, documentation and loopback IP ranges, a few exact placeholder values, and secrets
//! whose body is an obvious placeholder word.

use std::collections::HashSet;
use std::net::IpAddr;

use serde::Deserialize;

use super::validators;

/// The `[allow]` table of a filter file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowDef {
    /// Exact values, compared case-insensitively.
    #[serde(default)]
    pub values: Vec<String>,
    /// E-mail domains (and their subdomains) reserved for documentation.
    #[serde(default)]
    pub email_domains: Vec<String>,
    /// CIDR ranges of IP addresses left intact.
    #[serde(default)]
    pub ip_ranges: Vec<String>,
    /// Phone numbers (normalized: `+` and digits) starting with one of these stay.
    #[serde(default)]
    pub phone_prefixes: Vec<String>,
    /// A secret-like value (API_KEY, PASSWORD, ...) containing one of these words is a
    /// placeholder, not a secret.
    #[serde(default)]
    pub placeholder_words: Vec<String>,
}

#[derive(Debug, Clone, Copy)]
struct Cidr {
    net: IpAddr,
    bits: u8,
}

impl Cidr {
    fn parse(s: &str) -> Result<Cidr, String> {
        let (addr, bits) = s.split_once('/').unwrap_or((s, ""));
        let net: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("bad CIDR address {s:?}"))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let bits = if bits.is_empty() {
            max
        } else {
            bits.trim()
                .parse::<u8>()
                .map_err(|_| format!("bad CIDR prefix {s:?}"))?
        };
        if bits > max {
            return Err(format!("CIDR prefix too long in {s:?}"));
        }
        Ok(Cidr { net, bits })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => prefix_eq(&n.octets(), &a.octets(), self.bits),
            (IpAddr::V6(n), IpAddr::V6(a)) => prefix_eq(&n.octets(), &a.octets(), self.bits),
            _ => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let full = usize::from(bits / 8);
    if a[..full] != b[..full] {
        return false;
    }
    let rem = bits % 8;
    rem == 0 || (a[full] ^ b[full]) & (0xffu8 << (8 - rem)) == 0
}

/// The compiled allow-list.
#[derive(Debug, Clone, Default)]
pub struct AllowList {
    values: HashSet<String>,
    /// Bit `n` (`n < 64`) set when some value is `n` bytes long, bit 63 for longer ones,
    /// and bit `b & 63` when some value ends with byte `b`: most candidates are ruled out
    /// without lower-casing or hashing them.
    value_lens: u64,
    value_last: u64,
    email_domains: Vec<String>,
    ip_ranges: Vec<Cidr>,
    phone_prefixes: Vec<String>,
    placeholder_words: Vec<String>,
    /// Per byte: bit `k` set when placeholder word `k` (of the first 64) starts with it,
    /// in either ASCII case. A secret is checked for every word in one pass.
    placeholder_first: Vec<u64>,
}

/// Entities whose values are secrets: placeholder words apply to them.
fn is_secret_entity(entity: &str) -> bool {
    matches!(
        entity,
        "API_KEY" | "AWS_SECRET" | "PASSWORD" | "BEARER_TOKEN" | "PRIVATE_KEY" | "JWT" | "SECRET"
    )
}

impl AllowList {
    /// Merges one `[allow]` table into the list.
    pub fn extend(&mut self, def: &AllowDef) -> Result<(), String> {
        self.add_values(&def.values);
        self.email_domains.extend(
            def.email_domains
                .iter()
                .map(|d| d.trim_start_matches('.').to_ascii_lowercase()),
        );
        for r in &def.ip_ranges {
            self.ip_ranges.push(Cidr::parse(r)?);
        }
        self.phone_prefixes
            .extend(def.phone_prefixes.iter().cloned());
        self.placeholder_words
            .extend(def.placeholder_words.iter().map(|w| w.to_ascii_lowercase()));
        let words: Vec<&str> = self.placeholder_words.iter().map(String::as_str).collect();
        self.placeholder_first = validators::first_byte_table(&words).to_vec();
        Ok(())
    }

    /// Adds exact values.
    pub fn add_values<I: IntoIterator<Item = S>, S: AsRef<str>>(&mut self, values: I) {
        for v in values {
            let v = v.as_ref().to_lowercase();
            self.value_lens |= len_bit(v.len());
            self.value_last |= v.bytes().last().map_or(0, last_bit);
            self.values.insert(v);
        }
    }

    /// Whether `value` may be one of the exact values: false when, lower-cased, its length
    /// or last byte is no value's. Only ASCII is judged (lower-casing may change the
    /// length of other text).
    fn may_be_value(&self, value: &str) -> bool {
        let b = value.as_bytes();
        !b.is_ascii()
            || (self.value_lens & len_bit(b.len()) != 0
                && b.last().is_none_or(|&c| self.value_last & last_bit(c) != 0))
    }

    /// One of the placeholder words occurs in `v`, ignoring ASCII case.
    fn has_placeholder_word(&self, v: &[u8]) -> bool {
        let words = &self.placeholder_words;
        validators::any_word_start(v, &self.placeholder_first, words, |_, _| true)
            // Words past the table, and an empty word (which every value holds).
            || words.iter().enumerate().any(|(k, w)| {
                (k >= 64 || w.is_empty())
                    && validators::find_ignore_ascii_case(v, w.as_bytes(), 0).is_some()
            })
    }

    /// True if this detected `value` of `entity` must be left intact.
    pub fn allows(&self, entity: &str, value: &str) -> bool {
        if !self.values.is_empty()
            && self.may_be_value(value)
            && self.values.contains(&*lowercase(value))
        {
            return true;
        }
        match entity {
            "EMAIL" => {
                let domain = value.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
                let domain = domain.trim_end_matches('.').as_bytes();
                // The listed domains are lower case: compare ignoring ASCII case rather
                // than lower-casing a copy of every e-mail's domain.
                self.email_domains.iter().any(|d| {
                    let d = d.as_bytes();
                    domain.eq_ignore_ascii_case(d)
                        || (domain.len() > d.len()
                            && domain[domain.len() - d.len()..].eq_ignore_ascii_case(d)
                            && domain[domain.len() - d.len() - 1] == b'.')
                })
            }
            "IP_ADDRESS" => {
                let v = value.trim_matches(|c| c == '[' || c == ']');
                match v.parse::<IpAddr>() {
                    Ok(ip) => self.ip_ranges.iter().any(|c| c.contains(ip)),
                    Err(_) => false,
                }
            }
            "PHONE" if !self.phone_prefixes.is_empty() => {
                let norm = super::action::normalize("PHONE", value);
                self.phone_prefixes
                    .iter()
                    .any(|p| norm.starts_with(p.as_str()))
            }
            e if is_secret_entity(e) => {
                self.has_placeholder_word(value.as_bytes()) || is_filler(value)
            }
            _ => false,
        }
    }
}

fn len_bit(n: usize) -> u64 {
    1 << n.min(63)
}

fn last_bit(b: u8) -> u64 {
    1 << (b.to_ascii_lowercase() & 63)
}

/// `value.to_lowercase()`, borrowed when that changes nothing (ASCII without capitals,
/// the common case), so checking a candidate against the allow-list allocates nothing.
fn lowercase(value: &str) -> std::borrow::Cow<'_, str> {
    if value
        .bytes()
        .all(|b| b.is_ascii() && !b.is_ascii_uppercase())
    {
        std::borrow::Cow::Borrowed(value)
    } else {
        std::borrow::Cow::Owned(value.to_lowercase())
    }
}

/// A value made only of filler characters (`xxxx`, `****`, `....`, `0000`) once its
/// prefix (`sk-`, `ghp_`) is removed.
fn is_filler(value: &str) -> bool {
    let body = value.rsplit(['-', '_']).next().unwrap_or(value);
    body.len() >= 4
        && body
            .bytes()
            .all(|b| matches!(b, b'x' | b'X' | b'*' | b'.' | b'0' | b'#'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list() -> AllowList {
        let mut a = AllowList::default();
        a.extend(&AllowDef {
            values: vec!["sk-your-api-key-here".into()],
            email_domains: vec!["example.com".into()],
            ip_ranges: vec![
                "192.0.2.0/24".into(),
                "2001:db8::/32".into(),
                "127.0.0.0/8".into(),
            ],
            phone_prefixes: vec![],
            placeholder_words: vec!["your".into()],
        })
        .unwrap();
        a
    }

    #[test]
    fn email_domains_and_subdomains() {
        let a = list();
        assert!(a.allows("EMAIL", "user@example.com"));
        assert!(a.allows("EMAIL", "USER@mail.Example.COM"));
        assert!(!a.allows("EMAIL", "user@notexample.com"));
        assert!(!a.allows("EMAIL", "user@example.co"));
    }

    #[test]
    fn ip_ranges() {
        let a = list();
        assert!(a.allows("IP_ADDRESS", "192.0.2.55"));
        assert!(a.allows("IP_ADDRESS", "127.0.0.1"));
        assert!(a.allows("IP_ADDRESS", "2001:db8::1"));
        assert!(!a.allows("IP_ADDRESS", "192.0.3.1"));
        assert!(!a.allows("IP_ADDRESS", "8.8.8.8"));
        assert!(!a.allows("IP_ADDRESS", "2001:db9::1"));
    }

    #[test]
    fn placeholders() {
        let a = list();
        assert!(a.allows("API_KEY", "sk-your-api-key-here"));
        assert!(a.allows("API_KEY", "SK-YOUR-KEY"));
        assert!(a.allows("API_KEY", "sk-xxxxxxxxxxxxxxxx"));
        assert!(!a.allows("API_KEY", "sk-9f8Qm2L0aZ"));
        assert!(!a.allows("EMAIL", "your.name@acme.io"));
    }
}
