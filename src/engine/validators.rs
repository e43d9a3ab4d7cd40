//! Validators: cheap, allocation-light checks that run on detection candidates only.
//!
//! A filter names its validator in TOML (`validator = "luhn"`); the engine parses the spec once
//! with [`Validator::parse`] and calls [`Validator::check`] on the detection text (the `value`
//! capture group when the pattern has one). A validator answers one question: is this text a
//! genuine instance of the entity, or a look-alike (order number, timestamp, version string,
//! placeholder, checksum failure)?
//!
//! Available specs:
//!
//! | spec | accepts |
//! | --- | --- |
//! | `luhn` | payment card: 13-19 digits (spaces/dashes allowed, one kind), Luhn, plausible IIN and length |
//! | `iban` | IBAN: per-country length, check digits 02-98, ISO 7064 mod-97 == 1, compact or groups of 4 |
//! | `us_ssn` | US SSN area/group/serial rules, known invalid numbers rejected |
//! | `ipv4` | dotted quad that `std` parses, not `0.0.0.0` |
//! | `ipv6` | address that `std` parses, at least 2 colons and 2 hex groups / 4 hex digits |
//! | `mac` | `aa:bb:cc:dd:ee:ff`, `aa-bb-..`, `aabb.ccdd.eeff`; not all-zero / broadcast |
//! | `phone` | international (`+`/`00`, per-country number length) or national formats (trunk 0, NANP, IT mobile, 9-digit ES/PT/PL) |
//! | `email` | local part and domain sanity, TLD alphabetic 2-24 |
//! | `email_obfuscated` | `john dot doe at gmail dot com`, `john[at]gmail[dot]com`, ... normalized then `email` |
//! | `date` | a real calendar date (numeric or with a month name in EN/DE/FR/ES/IT/NL), year 1900..=2025 |
//! | `jwt` | three base64url segments, header decodes to a JSON object with `alg` |
//! | `entropy(x)` | Shannon entropy >= x bits/char and not a placeholder |
//! | `not_placeholder` | not a placeholder (`your-key-here`, `<...>`, `${VAR}`, `****`, ...) |
//! | `password` | an assigned secret value: not a placeholder, not a code reference (`os.environ`), not a type/keyword word |
//! | `password_strict` | a password in prose: `password` checks, 6+ chars, letters mixed with digits or symbols (or a 6+ digit PIN); not a plain word, version, date or URL |
//! | `aws_access_key` | `AKIA`/`ASIA`/`ABIA`/`ACCA` + 16 upper-case alphanumerics, not a placeholder |
//! | `dni` | Spanish DNI / NIE with the mod-23 control letter |
//! | `bsn` | Dutch BSN, 9 digits, 11-proof |
//! | `nino` | UK National Insurance number prefix/suffix rules |
//! | `de_tax_id` | German Steuer-ID: 11 digits, digit-frequency rule, ISO 7064 mod 11,10 check digit |
//! | `nir` | French NIR (numéro de sécurité sociale): structure + key 97 - (n mod 97) |
//! | `codice_fiscale` | Italian codice fiscale with its control character |
//! | `address` | street address candidate whose words are not common prose/tech words |
//! | `secret` | an assigned API key or token: `password` checks, >= 8 chars, entropy >= 3.0 |
//! | `pem` | a whole PEM private-key block: matching BEGIN/END labels, a base64 body of real length |

use std::net::{Ipv4Addr, Ipv6Addr};

/// A named candidate check, parsed from a filter's `validator` key.
#[derive(Debug, Clone, PartialEq)]
pub enum Validator {
    Luhn,
    Iban,
    UsSsn,
    Ipv4,
    Ipv6,
    Mac,
    Phone,
    /// A phone number under a phone label or column: what `phone` accepts, or any
    /// phone-shaped run of 6-15 digits (the label is the evidence; numbers people type
    /// there do not always follow a numbering plan).
    PhoneLabelled,
    Email,
    EmailObfuscated,
    Date,
    Jwt,
    /// Minimum Shannon entropy in bits per character, plus the placeholder check.
    Entropy(f64),
    NotPlaceholder,
    Password,
    /// A password written in prose ("my new password is X"): the `password` checks, and it
    /// must look like one (letters with digits or symbols, or a long PIN), not a word.
    PasswordStrict,
    AwsAccessKey,
    Dni,
    Bsn,
    Nino,
    DeTaxId,
    Nir,
    CodiceFiscale,
    /// Swedish personnummer / samordningsnummer: a date (day + 60 for the latter) and
    /// the Luhn digit over the 10-digit form.
    SePersonnummer,
    /// Polish PESEL: a date with the century in the month, and a weighted check digit.
    PlPesel,
    /// Danish CPR number: a date of birth and four digits (no checksum since 2007).
    DkCpr,
    /// Finnish henkilötunnus: a date, a century sign and a mod-31 check character.
    FiHetu,
    /// Norwegian fødselsnummer / D-number: a date and two mod-11 check digits.
    NoFnr,
    /// Belgian national register number: a date and a mod-97 check.
    BeNrn,
    /// Any of the national identifiers above or the older ones (DNI, BSN, NINO, Steuer-ID,
    /// NIR, codice fiscale, US SSN): for fields such as `national_id` that do not say which.
    NationalId,
    Address,
    PemPrivateKey,
    /// An assigned API key / token / secret: the `password` checks plus entropy >= 3.0
    /// bits/char and at least 8 characters.
    Secret,
}

impl Validator {
    /// Parses a spec from the TOML `validator` key. Unknown name -> `Err(message)`.
    pub fn parse(spec: &str) -> Result<Validator, String> {
        let s = spec.trim();
        if let Some(rest) = s.strip_prefix("entropy") {
            let rest = rest.trim();
            let inner = rest
                .strip_prefix('(')
                .and_then(|r| r.strip_suffix(')'))
                .ok_or_else(|| format!("validator `{s}`: expected entropy(<bits per char>)"))?;
            let min: f64 = inner
                .trim()
                .parse()
                .map_err(|_| format!("validator `{s}`: `{inner}` is not a number"))?;
            if !(0.0..=8.0).contains(&min) {
                return Err(format!(
                    "validator `{s}`: entropy must be within 0..=8 bits/char"
                ));
            }
            return Ok(Validator::Entropy(min));
        }
        Ok(match s {
            "luhn" => Validator::Luhn,
            "iban" | "iban_mod97" => Validator::Iban,
            "us_ssn" | "ssn" | "ssn_rules" => Validator::UsSsn,
            "ipv4" | "ip_parse" => Validator::Ipv4,
            "ipv6" => Validator::Ipv6,
            "mac" => Validator::Mac,
            "phone" => Validator::Phone,
            "phone_labelled" => Validator::PhoneLabelled,
            "email" => Validator::Email,
            "email_obfuscated" => Validator::EmailObfuscated,
            "date" => Validator::Date,
            "jwt" => Validator::Jwt,
            "not_placeholder" => Validator::NotPlaceholder,
            "password" => Validator::Password,
            "password_strict" => Validator::PasswordStrict,
            "aws_access_key" => Validator::AwsAccessKey,
            "dni" | "es_dni" => Validator::Dni,
            "bsn" | "nl_bsn" => Validator::Bsn,
            "nino" | "uk_nino" => Validator::Nino,
            "de_tax_id" | "steuer_id" => Validator::DeTaxId,
            "nir" | "fr_nir" => Validator::Nir,
            "codice_fiscale" | "it_fiscal_code" => Validator::CodiceFiscale,
            "se_personnummer" | "personnummer" => Validator::SePersonnummer,
            "pl_pesel" | "pesel" => Validator::PlPesel,
            "dk_cpr" | "cpr" => Validator::DkCpr,
            "fi_hetu" | "hetu" => Validator::FiHetu,
            "no_fnr" | "fodselsnummer" => Validator::NoFnr,
            "be_nrn" | "rrn" => Validator::BeNrn,
            "national_id" => Validator::NationalId,
            "address" => Validator::Address,
            "pem" | "pem_private_key" => Validator::PemPrivateKey,
            "secret" => Validator::Secret,
            other => {
                return Err(format!(
                    "unknown validator `{other}` (known: luhn, iban, us_ssn, ipv4, ipv6, mac, phone, phone_labelled, \
                     email, email_obfuscated, date, jwt, entropy(<min>), not_placeholder, password, password_strict, \
                     aws_access_key, dni, bsn, nino, de_tax_id, nir, codice_fiscale, se_personnummer, pl_pesel, dk_cpr, fi_hetu, no_fnr, \
                     be_nrn, national_id, address, pem, secret)"
                ));
            }
        })
    }

    /// `true` if `value` (the detection text) is a genuine instance.
    pub fn check(&self, value: &str) -> bool {
        match self {
            Validator::Luhn => check_card(value),
            Validator::Iban => check_iban(value),
            Validator::UsSsn => check_us_ssn(value),
            Validator::Ipv4 => check_ipv4(value),
            Validator::Ipv6 => check_ipv6(value),
            Validator::Mac => check_mac(value),
            Validator::Phone => check_phone(value),
            Validator::PhoneLabelled => check_phone(value) || check_phone_labelled(value),
            Validator::Email => check_email(value),
            Validator::EmailObfuscated => check_email_obfuscated(value),
            Validator::Date => check_date(value),
            Validator::Jwt => check_jwt(value),
            Validator::Entropy(min) => !is_placeholder(value) && shannon_entropy(value) >= *min,
            Validator::NotPlaceholder => !is_placeholder(value),
            Validator::Password => check_password(value),
            Validator::PasswordStrict => check_password_strict(value),
            Validator::AwsAccessKey => check_aws_access_key(value),
            Validator::Dni => check_dni(value),
            Validator::Bsn => check_bsn(value),
            Validator::Nino => check_nino(value),
            Validator::DeTaxId => check_de_tax_id(value),
            Validator::Nir => check_nir(value),
            Validator::CodiceFiscale => check_codice_fiscale(value),
            Validator::SePersonnummer => check_se_personnummer(value),
            Validator::PlPesel => check_pl_pesel(value),
            Validator::DkCpr => check_dk_cpr(value),
            Validator::FiHetu => check_fi_hetu(value),
            Validator::NoFnr => check_no_fnr(value),
            Validator::BeNrn => check_be_nrn(value),
            Validator::NationalId => check_national_id(value),
            Validator::Address => check_address(value),
            Validator::PemPrivateKey => check_pem(value),
            Validator::Secret => {
                value.trim().chars().count() >= 8
                    && check_password(value)
                    && shannon_entropy(value.trim()) >= 3.0
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// shared helpers

/// Digits of `s` (ASCII), skipping everything else.
fn digits_of(s: &str) -> Vec<u8> {
    s.bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| b - b'0')
        .collect()
}

fn all_same<T: PartialEq>(v: &[T]) -> bool {
    v.windows(2).all(|w| w[0] == w[1])
}

/// `0123456789...` or `9876543210...` (wrapping), the shape of keyboard-mashed test numbers.
fn is_sequential(d: &[u8]) -> bool {
    if d.len() < 6 {
        return false;
    }
    let up = d.windows(2).all(|w| (w[0] + 1) % 10 == w[1]);
    let down = d.windows(2).all(|w| (w[1] + 1) % 10 == w[0]);
    up || down
}

/// Shannon entropy in bits per character (over chars). ASCII is counted in a table;
/// any other character falls back to a small list.
pub fn shannon_entropy(s: &str) -> f64 {
    let mut ascii = [0u32; 128];
    // The ASCII characters seen, as bits: the sum below visits only them, in code order.
    let mut seen = 0u128;
    let mut other: Vec<(char, u32)> = Vec::new();
    let mut n = 0u32;
    for c in s.chars() {
        n += 1;
        if c.is_ascii() {
            ascii[c as usize] += 1;
            seen |= 1 << (c as u32);
        } else {
            match other.iter_mut().find(|(k, _)| *k == c) {
                Some((_, v)) => *v += 1,
                None => other.push((c, 1)),
            }
        }
    }
    if n == 0 {
        return 0.0;
    }
    let n = f64::from(n);
    // One term per distinct count (most characters of a key occur once or twice).
    let mut terms = [f64::NAN; 16];
    let mut term = |c: u32| {
        let compute = || {
            let p = f64::from(c) / n;
            -p * p.log2()
        };
        match terms.get_mut(c as usize) {
            Some(t) if t.is_nan() => {
                *t = compute();
                *t
            }
            Some(t) => *t,
            None => compute(),
        }
    };
    let mut sum = 0.0;
    while seen != 0 {
        let c = seen.trailing_zeros() as usize;
        seen &= seen - 1;
        sum += term(ascii[c]);
    }
    for &(_, c) in &other {
        sum += term(c);
    }
    sum
}

/// Placeholder words that mark a documentation value wherever they appear.
const PLACEHOLDER_WORDS: &[&str] = &[
    "your",
    "placeholder",
    "changeme",
    "change_me",
    "change-me",
    "dummy",
    "redacted",
    "xxxx",
    "****",
    "....",
    "\u{2026}",
    "replace_me",
    "replace-me",
    "replaceme",
    "insert_",
    "todo",
    "fixme",
    "secret_here",
    "key_here",
    "key-here",
    "token_here",
    "token-here",
];

/// `true` for values that are obviously not a real secret: empty, one repeated character,
/// made of filler characters only, template references (`<...>`, `${...}`, `{{...}}`, `%(x)s`,
/// `$VAR`), or containing a placeholder word. "example" counts when it stands as its own
/// word (`sk-example-key`, `example_token`), not when fused into a random-looking key
/// (AWS' documented `...EXAMPLE` keys are still redacted: redacting a fake key is harmless).
pub fn is_placeholder(value: &str) -> bool {
    let v = value.trim();
    if v.is_empty() {
        return true;
    }
    let mut chars = v.chars();
    let first = chars.next();
    if chars.all(|c| Some(c) == first) {
        return true;
    }
    if v.chars()
        .all(|c| matches!(c, 'x' | 'X' | '*' | '0' | '.' | '-' | '_' | '#' | '•' | ' '))
    {
        return true;
    }
    if (v.starts_with('<') && v.ends_with('>'))
        || (v.starts_with('[') && v.ends_with(']'))
        || (v.starts_with('{') && v.ends_with('}'))
        || is_template(v.as_bytes())
        || v.starts_with("$(")
    {
        return true;
    }
    // `$VAR` / `$env:VAR` shell references.
    if let Some(rest) = v.strip_prefix('$') {
        let rest = rest.strip_prefix("env:").unwrap_or(rest);
        if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return true;
        }
    }
    if has_placeholder_word(v) {
        return true;
    }
    has_delimited_word(v, "example") || has_delimited_word(v, "sample")
}

/// Holds `${`, `{{` or `%(`: a template variable.
fn is_template(b: &[u8]) -> bool {
    memchr::memchr3_iter(b'$', b'{', b'%', b).any(|i| {
        matches!(
            (b[i], b.get(i + 1)),
            (b'$' | b'{', Some(b'{')) | (b'%', Some(b'('))
        )
    })
}

const _: () = assert!(PLACEHOLDER_WORDS.len() <= 64);

/// Bit `k` set in entry `b` when `PLACEHOLDER_WORDS[k]` starts with byte `b` (either ASCII
/// case).
const PLACEHOLDER_FIRST: [u64; 256] = first_byte_table(PLACEHOLDER_WORDS);

/// The table [`any_word_start`] takes: bit `k` of entry `b` set when `words[k]` (one of the
/// first 64, not empty) starts with byte `b` in either ASCII case.
pub(crate) const fn first_byte_table(words: &[&str]) -> [u64; 256] {
    let mut t = [0u64; 256];
    let mut k = 0;
    while k < words.len() && k < 64 {
        let w = words[k].as_bytes();
        if !w.is_empty() {
            t[w[0].to_ascii_lowercase() as usize] |= 1 << k;
            t[w[0].to_ascii_uppercase() as usize] |= 1 << k;
        }
        k += 1;
    }
    t
}

/// Whether `accept(position, length)` holds for a place in `h` where one of `words`
/// starts, ignoring ASCII case. `first[b]` has bit `k` set when word `k` (lower case)
/// starts with byte `b` in either case: only those positions are compared, in one pass.
/// Words past the 64th are not seen.
pub(crate) fn any_word_start<W: AsRef<[u8]>>(
    h: &[u8],
    first: &[u64],
    words: &[W],
    mut accept: impl FnMut(usize, usize) -> bool,
) -> bool {
    for (i, &c) in h.iter().enumerate() {
        let mut bits = first.get(usize::from(c)).copied().unwrap_or(0);
        while bits != 0 {
            let w = words[bits.trailing_zeros() as usize].as_ref();
            bits &= bits - 1;
            if h[i..].len() >= w.len()
                && h[i..i + w.len()].eq_ignore_ascii_case(w)
                && accept(i, w.len())
            {
                return true;
            }
        }
    }
    false
}

/// One of [`PLACEHOLDER_WORDS`] occurs in `v` (ASCII case-insensitive) as a placeholder:
/// anywhere in a short or low-entropy value, but inside a long random token
/// (`...7MnyoUrSSko...` in a 170-character OAuth token) only where it touches a delimiter
/// or an end (`sk-your-key`, `YOUR_TOKEN`). One pass over the value: only positions whose
/// byte can start a word are compared, and the entropy is computed at most once.
fn has_placeholder_word(v: &str) -> bool {
    let h = v.as_bytes();
    let mut random: Option<bool> = None;
    any_word_start(h, &PLACEHOLDER_FIRST, PLACEHOLDER_WORDS, |i, n| {
        i == 0
            || i + n == h.len()
            || !h[i - 1].is_ascii_alphanumeric()
            || !h[i + n].is_ascii_alphanumeric()
            || !*random.get_or_insert_with(|| h.len() >= 32 && shannon_entropy(v) >= 4.0)
    })
}

/// `word` occurs in `v` (ASCII case-insensitive) with a non-alphanumeric character or the
/// end of the string on both sides.
fn has_delimited_word(v: &str, word: &str) -> bool {
    let h = v.as_bytes();
    let n = word.len();
    let mut from = 0;
    while let Some(i) = find_ignore_ascii_case(h, word.as_bytes(), from) {
        if (i == 0 || !h[i - 1].is_ascii_alphanumeric())
            && (i + n == h.len() || !h[i + n].is_ascii_alphanumeric())
        {
            return true;
        }
        from = i + 1;
    }
    false
}

/// The first position at or after `from` where `needle` occurs in `h`, ignoring ASCII
/// case; `needle` is lower case. Jumps between its first byte's occurrences, so a value
/// is checked without lower-casing a copy of it.
pub(crate) fn find_ignore_ascii_case(h: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    let Some((&first, rest)) = needle.split_first() else {
        return (from <= h.len()).then_some(from);
    };
    let mut i = from;
    while i + needle.len() <= h.len() {
        let off = memchr::memchr2(
            first,
            first.to_ascii_uppercase(),
            &h[i..=h.len() - needle.len()],
        )?;
        let at = i + off;
        if h[at + 1..at + needle.len()].eq_ignore_ascii_case(rest) {
            return Some(at);
        }
        i = at + 1;
    }
    None
}

// ---------------------------------------------------------------------------------------------
// payment cards

fn check_card(value: &str) -> bool {
    let mut sep: Option<u8> = None;
    let mut d = Vec::with_capacity(19);
    for b in value.bytes() {
        match b {
            b'0'..=b'9' => d.push(b - b'0'),
            b' ' | b'-' => {
                if sep.is_some_and(|s| s != b) {
                    return false;
                }
                sep = Some(b);
            }
            _ => return false,
        }
    }
    if !(12..=19).contains(&d.len()) || all_same(&d) || is_sequential(&d) {
        return false;
    }
    if !luhn(&d) {
        return false;
    }
    let prefix = |k: usize| d[..k].iter().fold(0u32, |a, &x| a * 10 + u32::from(x));
    let len = d.len();
    let p1 = prefix(1);
    let p2 = prefix(2);
    let p4 = prefix(4);
    match p1 {
        4 => matches!(len, 13 | 16 | 19), // Visa
        3 => match p2 {
            34 | 37 => len == 15,                          // Amex
            35 => (16..=19).contains(&len),                // JCB
            30 | 36 | 38 | 39 => (14..=19).contains(&len), // Diners
            _ => false,
        },
        // Mastercard 2-series; legacy 15-digit JCB 2131
        2 => (2221..=2720).contains(&p4) && len == 16 || p4 == 2131 && len == 15,
        // legacy 15-digit JCB 1800
        1 => p4 == 1800 && len == 15,
        5 => match p2 {
            51..=55 => len == 16,                     // Mastercard
            50 | 56..=59 => (12..=19).contains(&len), // Maestro
            _ => false,
        },
        // Discover 6011 / 644-649 / 65, UnionPay 62 (16-19); Maestro 6x (12-19)
        6 => (16..=19).contains(&len) || (12..=15).contains(&len) && matches!(p2, 63 | 67),
        _ => false,
    }
}

fn luhn(d: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, &x) in d.iter().rev().enumerate() {
        let mut v = u32::from(x);
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum % 10 == 0
}

// ---------------------------------------------------------------------------------------------
// IBAN

/// IBAN length per country (SWIFT IBAN registry, plus long-standing partial-member countries).
const IBAN_LENGTHS: &[(&str, usize)] = &[
    ("AD", 24),
    ("AE", 23),
    ("AL", 28),
    ("AT", 20),
    ("AZ", 28),
    ("BA", 20),
    ("BE", 16),
    ("BG", 22),
    ("BH", 22),
    ("BI", 27),
    ("BR", 29),
    ("BY", 28),
    ("CH", 21),
    ("CR", 22),
    ("CY", 28),
    ("CZ", 24),
    ("DE", 22),
    ("DJ", 27),
    ("DK", 18),
    ("DO", 28),
    ("EE", 20),
    ("EG", 29),
    ("ES", 24),
    ("FI", 18),
    ("FK", 18),
    ("FO", 18),
    ("FR", 27),
    ("GB", 22),
    ("GE", 22),
    ("GI", 23),
    ("GL", 18),
    ("GR", 27),
    ("GT", 28),
    ("HN", 28),
    ("HR", 21),
    ("HU", 28),
    ("IE", 22),
    ("IL", 23),
    ("IQ", 23),
    ("IS", 26),
    ("IT", 27),
    ("JO", 30),
    ("KW", 30),
    ("KZ", 20),
    ("LB", 28),
    ("LC", 32),
    ("LI", 21),
    ("LT", 20),
    ("LU", 20),
    ("LV", 21),
    ("LY", 25),
    ("MC", 27),
    ("MD", 24),
    ("ME", 22),
    ("MK", 19),
    ("MN", 20),
    ("MR", 27),
    ("MT", 31),
    ("MU", 30),
    ("NI", 28),
    ("NL", 18),
    ("NO", 15),
    ("OM", 23),
    ("PK", 24),
    ("PL", 28),
    ("PS", 29),
    ("PT", 25),
    ("QA", 29),
    ("RO", 24),
    ("RS", 22),
    ("RU", 33),
    ("SA", 24),
    ("SC", 31),
    ("SD", 18),
    ("SE", 24),
    ("SI", 19),
    ("SK", 24),
    ("SM", 27),
    ("SO", 23),
    ("ST", 25),
    ("SV", 28),
    ("TL", 23),
    ("TN", 24),
    ("TR", 26),
    ("UA", 29),
    ("VA", 22),
    ("VG", 24),
    ("XK", 20),
    ("YE", 30),
];

fn check_iban(value: &str) -> bool {
    let v = value.trim();
    // Grouped form: groups of 4 separated by single spaces, the last group 1-4.
    if v.contains(' ') {
        let groups: Vec<&str> = v.split(' ').collect();
        let last = groups.len() - 1;
        for (i, g) in groups.iter().enumerate() {
            let ok = if i == last {
                (1..=4).contains(&g.len())
            } else {
                g.len() == 4
            };
            if !ok {
                return false;
            }
        }
    }
    let compact: Vec<u8> = v
        .bytes()
        .filter(|&b| b != b' ')
        .map(|b| b.to_ascii_uppercase())
        .collect();
    if compact.len() < 15 || !compact.iter().all(u8::is_ascii_alphanumeric) {
        return false;
    }
    if !compact[..2].iter().all(u8::is_ascii_uppercase)
        || !compact[2..4].iter().all(u8::is_ascii_digit)
    {
        return false;
    }
    let cc = std::str::from_utf8(&compact[..2]).unwrap_or("");
    let Some(&(_, len)) = IBAN_LENGTHS.iter().find(|(c, _)| *c == cc) else {
        return false;
    };
    if compact.len() != len {
        return false;
    }
    let check = u32::from(compact[2] - b'0') * 10 + u32::from(compact[3] - b'0');
    if !(2..=98).contains(&check) {
        return false;
    }
    if all_same(&compact[4..]) {
        return false;
    }
    let mut rem: u32 = 0;
    for &b in compact[4..].iter().chain(compact[..4].iter()) {
        if b.is_ascii_digit() {
            rem = (rem * 10 + u32::from(b - b'0')) % 97;
        } else {
            let n = u32::from(b - b'A') + 10;
            rem = (rem * 100 + n) % 97;
        }
    }
    rem == 1
}

// ---------------------------------------------------------------------------------------------
// US SSN

fn check_us_ssn(value: &str) -> bool {
    let v = value.trim();
    let d = digits_of(v);
    if d.len() != 9
        || !v
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'-' || b == b' ')
    {
        return false;
    }
    // Separators, if any, must be one kind in the 3-2-4 positions.
    if v.len() == 11 {
        let b = v.as_bytes();
        if b[3] != b[6] || !(b[3] == b'-' || b[3] == b' ') {
            return false;
        }
    } else if v.len() != 9 {
        return false;
    }
    let area = u32::from(d[0]) * 100 + u32::from(d[1]) * 10 + u32::from(d[2]);
    let group = u32::from(d[3]) * 10 + u32::from(d[4]);
    let serial = d[5..].iter().fold(0u32, |a, &x| a * 10 + u32::from(x));
    if area == 0 || area == 666 || area >= 900 || group == 0 || serial == 0 {
        return false;
    }
    let n: String = d.iter().map(|x| char::from(b'0' + x)).collect();
    // Woolworth wallet card, the 1962 promotional number, the textbook sequence.
    !matches!(n.as_str(), "078051120" | "219099999" | "123456789") && !all_same(&d)
}

// ---------------------------------------------------------------------------------------------
// network

fn check_ipv4(value: &str) -> bool {
    match value.trim().parse::<Ipv4Addr>() {
        Ok(ip) => !ip.is_unspecified(),
        Err(_) => false,
    }
}

fn check_ipv6(value: &str) -> bool {
    let v = value.trim();
    let v = v
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(v);
    if v.bytes().filter(|&b| b == b':').count() < 2 {
        return false;
    }
    if v.parse::<Ipv6Addr>().is_err() {
        return false;
    }
    let groups: Vec<&str> = v.split(':').filter(|g| !g.is_empty()).collect();
    let hex_digits: usize = groups
        .iter()
        .map(|g| g.bytes().filter(u8::is_ascii_hexdigit).count())
        .sum();
    // "::", "::1" and two-letter look-alikes (`de::ad`) are not worth a detection.
    groups.len() >= 2 && hex_digits >= 5
}

fn check_mac(value: &str) -> bool {
    let v = value.trim();
    let b = v.as_bytes();
    let hex: Vec<u8> = if b.len() == 17 {
        let sep = b[2];
        if sep != b':' && sep != b'-' {
            return false;
        }
        for i in (2..17).step_by(3) {
            if b[i] != sep {
                return false;
            }
        }
        let h: Vec<u8> = b
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 3 != 2)
            .map(|(_, &c)| c)
            .collect();
        h
    } else if b.len() == 14 {
        if b[4] != b'.' || b[9] != b'.' {
            return false;
        }
        b.iter().filter(|&&c| c != b'.').copied().collect()
    } else {
        return false;
    };
    if hex.len() != 12 || !hex.iter().all(u8::is_ascii_hexdigit) {
        return false;
    }
    let lower: Vec<u8> = hex.iter().map(u8::to_ascii_lowercase).collect();
    !(lower.iter().all(|&c| c == b'0') || lower.iter().all(|&c| c == b'f'))
}

// ---------------------------------------------------------------------------------------------
// phone numbers

/// Country calling code -> national significant number length range.
const CALLING_CODES: &[(&str, usize, usize)] = &[
    ("1", 10, 10),
    ("7", 10, 10),
    ("20", 9, 10),
    ("27", 9, 9),
    ("30", 10, 10),
    ("31", 9, 9),
    ("32", 8, 9),
    ("33", 9, 9),
    ("34", 9, 9),
    ("36", 8, 9),
    ("39", 6, 11),
    ("40", 9, 9),
    ("41", 9, 9),
    ("43", 6, 13),
    ("44", 9, 10),
    ("45", 8, 8),
    ("46", 7, 10),
    ("47", 8, 8),
    ("48", 9, 9),
    ("49", 6, 13),
    ("51", 8, 9),
    ("52", 10, 10),
    ("54", 10, 11),
    ("55", 10, 11),
    ("56", 9, 9),
    ("57", 10, 10),
    ("60", 8, 10),
    ("61", 9, 9),
    ("62", 8, 12),
    ("63", 8, 10),
    ("64", 8, 10),
    ("65", 8, 8),
    ("66", 8, 9),
    ("81", 9, 10),
    ("82", 8, 10),
    ("84", 9, 10),
    ("86", 10, 11),
    ("90", 10, 10),
    ("91", 10, 10),
    ("92", 9, 10),
    ("234", 8, 10),
    ("254", 9, 9),
    ("351", 9, 9),
    ("352", 6, 11),
    ("353", 7, 9),
    ("354", 7, 7),
    ("356", 8, 8),
    ("357", 8, 8),
    ("358", 6, 12),
    ("359", 8, 9),
    ("370", 8, 8),
    ("371", 8, 8),
    ("372", 7, 8),
    ("380", 9, 9),
    ("381", 8, 9),
    ("385", 8, 9),
    ("386", 8, 8),
    ("420", 9, 9),
    ("421", 9, 9),
    ("852", 8, 8),
    ("880", 10, 10),
    ("966", 9, 9),
    ("971", 8, 9),
    ("972", 8, 9),
];

/// Splits a phone candidate into digit groups; `None` if it holds characters a phone number
/// never has. The leading `+` and a `(0)` trunk marker are reported separately.
/// More digits than any phone number has: such a candidate is no phone, whatever else.
const PHONE_DIGITS_MAX: usize = 32;

/// A phone candidate's digit groups, kept on the stack (validated per candidate).
struct PhoneShape {
    plus: bool,
    paren_trunk: bool,
    digits: [u8; PHONE_DIGITS_MAX],
    len: usize,
    /// Where each group ends in `digits`.
    ends: [u8; PHONE_DIGITS_MAX],
    count: usize,
}

impl PhoneShape {
    /// Every digit, in order.
    fn all(&self) -> &[u8] {
        &self.digits[..self.len]
    }

    /// The groups as slices of [`PhoneShape::all`], and how many there are.
    fn groups(&self) -> ([&[u8]; PHONE_DIGITS_MAX], usize) {
        let mut g: [&[u8]; PHONE_DIGITS_MAX] = [&[]; PHONE_DIGITS_MAX];
        let mut start = 0;
        for (slot, &end) in g.iter_mut().zip(&self.ends[..self.count]) {
            *slot = &self.digits[start..usize::from(end)];
            start = usize::from(end);
        }
        (g, self.count)
    }
}

fn phone_shape(v: &str) -> Option<PhoneShape> {
    let mut s = v.trim();
    let plus = s.starts_with('+');
    if plus {
        s = &s[1..];
    }
    let mut paren_trunk = false;
    let mut digits = [0u8; PHONE_DIGITS_MAX];
    let mut ends = [0u8; PHONE_DIGITS_MAX];
    let (mut len, mut count) = (0usize, 0usize);
    // Digits of the group being read: `digits[group_start..len]`.
    let mut group_start = 0;
    let mut seps_in_row = 0;
    let b = s.as_bytes();
    let mut i = 0;
    let mut opens = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_digit() {
            if len == PHONE_DIGITS_MAX {
                return None;
            }
            digits[len] = c - b'0';
            len += 1;
            seps_in_row = 0;
            i += 1;
            continue;
        }
        if len > group_start {
            ends[count] = len as u8;
            count += 1;
            group_start = len;
        }
        match c {
            b'(' if b.get(i + 1) == Some(&b'0') && b.get(i + 2) == Some(&b')') => {
                paren_trunk = true;
                i += 3;
                seps_in_row = 0;
                continue;
            }
            b'(' => {
                opens += 1;
                // "(+49) 30 ...": a plus sign may open the parenthesis.
                if b.get(i + 1) == Some(&b'+') && len == 0 {
                    i += 1;
                }
            }
            b')' => {
                if opens == 0 {
                    return None;
                }
                opens -= 1;
            }
            b' ' | b'-' | b'.' | b'/' => {
                seps_in_row += 1;
                if seps_in_row > 1 {
                    return None;
                }
            }
            _ => return None,
        }
        i += 1;
    }
    if len > group_start {
        ends[count] = len as u8;
        count += 1;
    }
    if opens != 0 || count == 0 {
        return None;
    }
    Some(PhoneShape {
        plus,
        paren_trunk,
        digits,
        len,
        ends,
        count,
    })
}

/// The lengths of `groups` (at most [`PHONE_DIGITS_MAX`] of them), on the stack.
fn group_lens(groups: &[&[u8]]) -> ([usize; PHONE_DIGITS_MAX], usize) {
    let mut lens = [0; PHONE_DIGITS_MAX];
    for (l, g) in lens.iter_mut().zip(groups) {
        *l = g.len();
    }
    (lens, groups.len().min(PHONE_DIGITS_MAX))
}

fn looks_like_date_or_version(v: &str, groups: &[&[u8]]) -> bool {
    // Version-like: dots only and some group of one digit, e.g. 10.0.19041.1234, 1.2.3.4.
    if v.contains('.') && !v.contains(' ') && !v.contains('-') && groups.len() >= 3 {
        let (buf, n) = group_lens(groups);
        let lens = &buf[..n];
        if lens.contains(&1) || !lens.iter().all(|&l| l == lens[0] || l == 2) {
            // FR 06.12.34.56.78 has only 2-digit groups, US 415.555.2671 is 3-3-4.
            if lens != [3, 3, 4] {
                return true;
            }
        }
    }
    if groups.len() >= 3 {
        let num = |g: &[u8]| g.iter().fold(0u32, |a, &x| a * 10 + u32::from(x));
        let (a, b, c) = (groups[0], groups[1], groups[2]);
        // D/M/YYYY or M/D/YYYY
        if a.len() <= 2 && b.len() <= 2 && c.len() == 4 {
            let (x, y, yr) = (num(a), num(b), num(c));
            if (1900..=2099).contains(&yr)
                && ((1..=31).contains(&x) && (1..=12).contains(&y)
                    || (1..=12).contains(&x) && (1..=31).contains(&y))
            {
                return true;
            }
        }
        // YYYY-MM-DD
        if a.len() == 4 && b.len() <= 2 && c.len() <= 2 {
            let (yr, m, d) = (num(a), num(b), num(c));
            if (1900..=2099).contains(&yr) && (1..=12).contains(&m) && (1..=31).contains(&d) {
                return true;
            }
        }
        // dd.mm.yy with exactly three groups
        if groups.len() == 3 && a.len() == 2 && b.len() == 2 && c.len() == 2 {
            let (x, y) = (num(a), num(b));
            if (1..=31).contains(&x) && (1..=12).contains(&y) {
                return true;
            }
        }
    }
    false
}

fn nanp_ok(d: &[u8]) -> bool {
    // d: 10 digits, NPA-NXX-XXXX
    d.len() == 10
        && d[0] >= 2
        && d[3] >= 2
        && !(d[1] == 1 && d[2] == 1)
        && !(d[4] == 1 && d[5] == 1)
}

/// Cuts a trailing extension: "x123", " ext. 12", " extension 4".
fn strip_extension(v: &str) -> &str {
    // Every marker holds an `x`: most numbers are done here, without a lower-cased copy.
    if memchr::memchr2(b'x', b'X', v.as_bytes()).is_none() {
        return v;
    }
    let lower = v.to_ascii_lowercase();
    for marker in ["extension", "ext.", "ext", "x"] {
        if let Some(i) = lower.rfind(marker) {
            let rest = &lower[i + marker.len()..];
            let rest = rest.trim_start();
            if !rest.is_empty()
                && rest.len() <= 5
                && rest.bytes().all(|b| b.is_ascii_digit())
                && i > 0
            {
                return v[..i].trim_end();
            }
        }
    }
    v
}

fn check_phone(value: &str) -> bool {
    let v = strip_extension(value.trim());
    let Some(shape) = phone_shape(v) else {
        return false;
    };
    let all = shape.all();
    let (group_buf, count) = shape.groups();
    let groups = &group_buf[..count];
    // Ascending/descending runs are test data when typed as one run; "01 23 45 67 89" is the
    // canonical French format and stays valid.
    let trunk_grouped = all.first() == Some(&0) && groups.len() > 1;
    if all.len() < 7 || all.len() > 17 || all_same(all) || (is_sequential(all) && !trunk_grouped) {
        return false;
    }
    // Long zero runs are amounts, not numbers people dial.
    if all.windows(5).any(|w| w.iter().all(|&x| x == 0)) {
        return false;
    }
    if looks_like_date_or_version(v, groups) {
        return false;
    }
    // ISBN-13 / EAN book numbers (978-3-16-148410-0): no dialled number has 13 digits
    // starting with 978 or 979.
    if !shape.plus && all.len() == 13 && all[..2] == [9, 7] && matches!(all[2], 8 | 9) {
        return false;
    }
    if shape.plus {
        return international(all);
    }
    // Country code in parentheses without "+": "(351) 968 301 661", "(0049) 30 1234567".
    if let Some(inner) = v.strip_prefix('(').and_then(|r| r.split(')').next()) {
        let inner = inner.trim_start_matches('+');
        let inner = inner.strip_prefix("00").unwrap_or(inner);
        if (1..=3).contains(&inner.len()) && inner.bytes().all(|b| b.is_ascii_digit()) {
            let d = if all.starts_with(&[0, 0]) {
                &all[2..]
            } else {
                all
            };
            // "(+358) 279739829": a plus sign says it; without one, two groups are
            // enough for a 3-digit code, which no area code is confused with.
            let marked = v[1..].starts_with('+') || inner.len() == 3;
            if inner != "0"
                && known_calling_code(d)
                && international(d)
                && (groups.len() > 2 || marked && groups.len() == 2)
            {
                return true;
            }
        }
    }
    if all.len() > 2 && all[0] == 0 && all[1] == 0 {
        return international(&all[2..]);
    }
    if shape.paren_trunk {
        return false;
    }
    national(groups, all)
}

fn check_phone_labelled(value: &str) -> bool {
    let v = strip_extension(value.trim());
    let Some(shape) = phone_shape(v) else {
        return false;
    };
    let all = shape.all();
    let (group_buf, count) = shape.groups();
    let groups = &group_buf[..count];
    // Decimals and amounts: "1.250,00", "3.5".
    let amount = groups.len() == 2 && v.contains(['.', ',']) && !v.contains(' ');
    (6..=15).contains(&all.len())
        && !all_same(all)
        && !is_sequential(all)
        && !amount
        && !looks_like_date_or_version(v, groups)
}

/// The number starts with a calling code of the table (not just any 1-3 digits).
/// Up to three digit values as a string, written into `buf`.
fn digits_str<'b>(d: &[u8], buf: &'b mut [u8; 3]) -> &'b str {
    let n = d.len().min(3);
    for (o, x) in buf.iter_mut().zip(&d[..n]) {
        *o = b'0' + x;
    }
    std::str::from_utf8(&buf[..n]).unwrap_or("")
}

fn known_calling_code(d: &[u8]) -> bool {
    (1..=3).any(|n| {
        d.len() > n && {
            let mut buf = [0; 3];
            let cc = digits_str(&d[..n], &mut buf);
            CALLING_CODES.iter().any(|(c, _, _)| *c == cc)
        }
    })
}

fn international(d: &[u8]) -> bool {
    if d.is_empty() || d[0] == 0 || d.len() > 15 || d.len() < 7 {
        return false;
    }
    for cc_len in 1..=3 {
        if d.len() <= cc_len {
            break;
        }
        let mut buf = [0; 3];
        let cc = digits_str(&d[..cc_len], &mut buf);
        if let Some(&(_, lo, hi)) = CALLING_CODES.iter().find(|(c, _, _)| *c == cc) {
            let nsn = &d[cc_len..];
            let fits = |n: &[u8]| (lo..=hi).contains(&n.len()) && !all_same(n);
            if cc == "1" {
                // Written with an explicit +1: any 10 digits (test-data generators do not
                // respect NANP area/exchange rules, and neither do all real writers).
                return nsn.len() == 10 && !all_same(nsn);
            }
            if nsn.first() == Some(&0) && cc != "39" {
                // "+49 030 ..." is a common mistake for "+49 (0)30 ..."; a number of the
                // country's length that starts with 0 is still written as a phone number.
                return fits(&nsn[1..]) || fits(nsn);
            }
            return fits(nsn);
        }
    }
    // Unknown country: E.164 allows 8-15 digits in total.
    (8..=15).contains(&d.len())
}

fn national(groups: &[&[u8]], all: &[u8]) -> bool {
    let (buf, count) = group_lens(groups);
    let lens = &buf[..count];
    let n = all.len();
    // "250 300 450": lists of round numbers, not a phone number.
    if groups.len() >= 3 && groups.iter().all(|g| g.last() == Some(&0)) {
        return false;
    }
    // A lone final digit is a check digit (ISBN "0-0728-4445-0", "07 284445 0"), not
    // how national numbers are grouped.
    if groups.len() >= 3 && groups.last().is_some_and(|g| g.len() == 1) {
        return false;
    }
    if all[0] == 0 {
        // Trunk prefix (EU, UK): 9-13 digits (Austria and Germany go up to 13).
        // 4-4-4 is how card numbers are written, not phones.
        if lens == [4, 4, 4] {
            return false;
        }
        return (9..=13).contains(&n) && all[1] != 0;
    }
    if n == 11 && all[0] == 1 {
        return match lens {
            [11] => nanp_ok(&all[1..]),
            [1, 3, 3, 4] | [1, 3, 7] | [4, 3, 4] => true,
            _ => false,
        };
    }
    if n == 10 {
        // A bare run must follow NANP rules; an explicitly grouped NPA-NXX-XXXX is accepted
        // as written (generated and real-world numbers often break the exchange rules).
        match lens {
            [10] if nanp_ok(all) => return true,
            // Italian mobile 3xx xxxxxxx: the operator prefixes are 31x-39x, and the
            // subscriber part is not a test run (1234567, 0000000).
            [3, 7] if all[0] == 3 => {
                return all[1] != 0 && !is_sequential(&all[3..]) && !all_same(&all[3..]);
            }
            [3, 3, 4] | [3, 7] | [6, 4] => return true,
            _ => {}
        }
        // Italian mobile numbers: 3xx xxx xxxx.
        return all[0] == 3 && matches!(lens, [10] | [3, 3, 4] | [3, 7] | [3, 3, 2, 2]);
    }
    if n == 9 && all[0] >= 2 {
        // ES / PT / PL and similar closed 9-digit plans. Three groups of three digits is also
        // how tables of small numbers look ("521 972 380"): accepted all the same (PT and PL
        // landlines and mobiles are written that way); round numbers were rejected above.
        if lens == [3, 3, 3] {
            return all[0] >= 2;
        }
        return matches!(lens, [9] | [2, 3, 2, 2] | [3, 2, 2, 2] | [2, 3, 4] | [2, 7]);
    }
    false
}

// ---------------------------------------------------------------------------------------------
// e-mail

fn check_email(value: &str) -> bool {
    let v = value.trim();
    let Some((local, domain)) = v.rsplit_once('@') else {
        return false;
    };
    if local.is_empty() || local.len() > 64 || domain.len() > 253 || domain.len() < 4 {
        return false;
    }
    let double_dot = |s: &str| s.as_bytes().windows(2).any(|w| w == b"..");
    if local.starts_with('.') || local.ends_with('.') || double_dot(local) {
        return false;
    }
    if !local
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._%+-!#$&'*/=?^`{|}~".contains(&b))
    {
        return false;
    }
    if double_dot(domain) || !domain.contains('.') {
        return false;
    }
    let mut tld = "";
    for l in domain.split('.') {
        if l.is_empty()
            || l.len() > 63
            || l.starts_with('-')
            || l.ends_with('-')
            || !l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return false;
        }
        tld = l;
    }
    (2..=24).contains(&tld.len()) && tld.bytes().all(|b| b.is_ascii_alphabetic())
}

/// Normalizes `john dot doe at gmail dot com`, `john[at]gmail[dot]com`, `john (at) gmail (dot) com`,
/// `john at gmail.com` to an address, then checks it. Requires at least one obfuscated `at`.
fn check_email_obfuscated(value: &str) -> bool {
    let mut spaced = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        match c {
            '[' | ']' | '(' | ')' | '{' | '}' | '<' | '>' => spaced.push(' '),
            _ => spaced.push(c),
        }
    }
    let bracketed = value.contains(['[', '(', '{', '<']);
    let mut out = String::with_capacity(value.len());
    let mut ats = 0;
    let mut local_words: Vec<&str> = Vec::new();
    for tok in spaced.split_whitespace() {
        if ats == 0 && !tok.eq_ignore_ascii_case("at") {
            local_words.push(tok);
        }
        if tok.eq_ignore_ascii_case("at") || tok == "@" {
            out.push('@');
            ats += 1;
        } else if tok.eq_ignore_ascii_case("dot")
            || tok.eq_ignore_ascii_case("punkt")
            || tok.eq_ignore_ascii_case("point")
            || tok == "."
        {
            out.push('.');
        } else {
            out.push_str(tok);
        }
    }
    if ats != 1 || out.contains("@@") {
        return false;
    }
    // A bare " at " is English prose far more often than an address: "look at this dot com".
    if !bracketed {
        const PROSE: &[&str] = &[
            "look",
            "looking",
            "looked",
            "me",
            "us",
            "him",
            "her",
            "them",
            "it",
            "this",
            "that",
            "here",
            "there",
            "home",
            "work",
            "arrive",
            "arrived",
            "stay",
            "meet",
            "see",
            "is",
            "was",
            "be",
            "are",
            "were",
            "am",
            "available",
            "reach",
            "call",
            "email",
            "contact",
            "mail",
            "write",
            "ping",
            "hit",
            "find",
            "found",
            "started",
            "start",
            "live",
            "lives",
            "based",
            "working",
            "works",
            "job",
            "jobs",
            "engineer",
            "team",
            "staff",
            "now",
            "just",
            "again",
            "once",
            "point",
            "time",
            "least",
            "most",
            "best",
            "all",
            "not",
        ];
        if local_words.len() == 1 && PROSE.contains(&local_words[0].to_ascii_lowercase().as_str()) {
            return false;
        }
        // "john at gmail.com": with a real dot in the domain and a bare one-word local part,
        // only well-known mailbox providers count ("docs at docs.rs" is prose).
        let dot_words = spaced
            .split_whitespace()
            .any(|t| t.eq_ignore_ascii_case("dot"));
        let (local, domain) = out.split_once('@').unwrap_or(("", ""));
        let name_like = local.contains(['.', '_']) || local.bytes().any(|b| b.is_ascii_digit());
        if !dot_words && !name_like {
            const PROVIDERS: &[&str] = &[
                "gmail",
                "googlemail",
                "yahoo",
                "ymail",
                "hotmail",
                "outlook",
                "live",
                "msn",
                "icloud",
                "me",
                "mac",
                "aol",
                "proton",
                "protonmail",
                "pm",
                "gmx",
                "web",
                "t-online",
                "freenet",
                "posteo",
                "mailbox",
                "orange",
                "free",
                "wanadoo",
                "laposte",
                "sfr",
                "libero",
                "virgilio",
                "tiscali",
                "alice",
                "telefonica",
                "terra",
                "ziggo",
                "kpnmail",
                "planet",
                "xs4all",
                "skynet",
                "telenet",
                "bluewin",
                "yandex",
                "mail",
                "zoho",
                "fastmail",
                "tutanota",
                "hey",
                "comcast",
                "verizon",
                "att",
                "sbcglobal",
                "btinternet",
                "sky",
                "virginmedia",
                "seznam",
                "wp",
                "o2",
                "interia",
                "onet",
            ];
            let first = domain.split('.').next().unwrap_or("").to_ascii_lowercase();
            if !PROVIDERS.contains(&first.as_str()) {
                return false;
            }
        }
    }
    // No spaces in between words other than the obfuscation keywords: out has none by construction.
    check_email(&out)
}

// ---------------------------------------------------------------------------------------------
// dates

const MONTHS: &[(&str, u32)] = &[
    // English
    ("january", 1),
    ("february", 2),
    ("march", 3),
    ("april", 4),
    ("may", 5),
    ("june", 6),
    ("july", 7),
    ("august", 8),
    ("september", 9),
    ("october", 10),
    ("november", 11),
    ("december", 12),
    ("jan", 1),
    ("feb", 2),
    ("mar", 3),
    ("apr", 4),
    ("jun", 6),
    ("jul", 7),
    ("aug", 8),
    ("sep", 9),
    ("sept", 9),
    ("oct", 10),
    ("nov", 11),
    ("dec", 12),
    // German
    ("januar", 1),
    ("jänner", 1),
    ("janner", 1),
    ("februar", 2),
    ("märz", 3),
    ("marz", 3),
    ("maerz", 3),
    ("mai", 5),
    ("juni", 6),
    ("juli", 7),
    ("oktober", 10),
    ("dezember", 12),
    ("mär", 3),
    ("mrz", 3),
    ("okt", 10),
    ("dez", 12),
    // French
    ("janvier", 1),
    ("février", 2),
    ("fevrier", 2),
    ("mars", 3),
    ("avril", 4),
    ("juin", 6),
    ("juillet", 7),
    ("août", 8),
    ("aout", 8),
    ("septembre", 9),
    ("octobre", 10),
    ("novembre", 11),
    ("décembre", 12),
    ("decembre", 12),
    ("janv", 1),
    ("févr", 2),
    ("fevr", 2),
    ("avr", 4),
    ("juil", 7),
    ("déc", 12),
    // Spanish
    ("enero", 1),
    ("febrero", 2),
    ("marzo", 3),
    ("abril", 4),
    ("mayo", 5),
    ("junio", 6),
    ("julio", 7),
    ("agosto", 8),
    ("septiembre", 9),
    ("setiembre", 9),
    ("octubre", 10),
    ("noviembre", 11),
    ("diciembre", 12),
    ("ene", 1),
    ("abr", 4),
    ("ago", 8),
    ("dic", 12),
    // Italian
    ("gennaio", 1),
    ("febbraio", 2),
    ("aprile", 4),
    ("maggio", 5),
    ("giugno", 6),
    ("luglio", 7),
    ("settembre", 9),
    ("ottobre", 10),
    ("dicembre", 12),
    ("gen", 1),
    ("mag", 5),
    ("giu", 6),
    ("lug", 7),
    ("set", 9),
    ("ott", 10),
    // Dutch
    ("januari", 1),
    ("februari", 2),
    ("maart", 3),
    ("mei", 5),
    ("augustus", 8),
    ("mrt", 3),
];

fn month_number(word: &str) -> Option<u32> {
    let w = word.trim_end_matches('.').to_lowercase();
    MONTHS.iter().find(|(m, _)| *m == w).map(|&(_, n)| n)
}

fn days_in_month(y: u32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

const MIN_YEAR: u32 = 1900;
const MAX_YEAR: u32 = 2025;

fn valid_ymd(y: u32, m: u32, d: u32) -> bool {
    (MIN_YEAR..=MAX_YEAR).contains(&y)
        && (1..=12).contains(&m)
        && d >= 1
        && d <= days_in_month(y, m)
}

/// Two-digit years: 00..=25 -> 20xx, else 19xx (dates of birth).
fn expand_year(s: &str) -> Option<u32> {
    let n: u32 = s.parse().ok()?;
    match s.len() {
        4 => Some(n),
        2 => Some(if n <= MAX_YEAR % 100 {
            2000 + n
        } else {
            1900 + n
        }),
        _ => None,
    }
}

fn check_date(value: &str) -> bool {
    let v = value.trim();
    if v.is_empty() {
        return false;
    }
    if v.bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'/' | b'-'))
    {
        return check_numeric_date(v);
    }
    check_text_date(v)
}

fn check_numeric_date(v: &str) -> bool {
    let seps: Vec<u8> = v.bytes().filter(|b| !b.is_ascii_digit()).collect();
    if seps.len() != 2 || seps[0] != seps[1] {
        // Compact YYYYMMDD.
        if seps.is_empty() && v.len() == 8 {
            let (y, m, d) = (
                v[..4].parse().unwrap_or(0),
                v[4..6].parse().unwrap_or(0),
                v[6..].parse().unwrap_or(0),
            );
            return valid_ymd(y, m, d);
        }
        return false;
    }
    let parts: Vec<&str> = v.split(char::from(seps[0])).collect();
    if parts.len() != 3 || parts.iter().any(|p| p.is_empty() || p.len() > 4) {
        return false;
    }
    let num = |s: &str| s.parse::<u32>().unwrap_or(0);
    if parts[0].len() == 4 {
        return parts[1].len() <= 2
            && parts[2].len() <= 2
            && valid_ymd(num(parts[0]), num(parts[1]), num(parts[2]));
    }
    if parts[0].len() > 2 || parts[1].len() > 2 {
        return false;
    }
    let Some(y) = expand_year(parts[2]) else {
        return false;
    };
    let (a, b) = (num(parts[0]), num(parts[1]));
    valid_ymd(y, b, a) || valid_ymd(y, a, b)
}

fn check_text_date(v: &str) -> bool {
    let mut day: Option<u32> = None;
    let mut month: Option<u32> = None;
    let mut year: Option<u32> = None;
    for raw in v.split(|c: char| c.is_whitespace() || c == ',' || c == '/' || c == '-') {
        let tok = raw.trim_matches(|c: char| c == '.' || c == ',');
        if tok.is_empty() {
            continue;
        }
        let lower = tok.to_lowercase();
        if matches!(
            lower.as_str(),
            "de" | "del" | "of" | "the" | "le" | "il" | "am" | "on"
        ) {
            continue;
        }
        if lower.starts_with(|c: char| c.is_ascii_digit()) {
            let digits: String = lower.chars().take_while(char::is_ascii_digit).collect();
            let suffix = &lower[digits.len()..];
            if !matches!(
                suffix,
                "" | "st" | "nd" | "rd" | "th" | "er" | "re" | "º" | "°" | "o" | "ª" | "e"
            ) {
                return false;
            }
            match digits.len() {
                1 | 2 if day.is_none() => day = digits.parse().ok(),
                4 if year.is_none() && suffix.is_empty() => year = digits.parse().ok(),
                _ => return false,
            }
        } else if let Some(m) = month_number(&lower) {
            if month.is_some() {
                return false;
            }
            month = Some(m);
        } else {
            return false;
        }
    }
    match (day, month, year) {
        (Some(d), Some(m), Some(y)) => valid_ymd(y, m, d),
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------
// JWT

/// Decodes base64, standard or URL-safe alphabet, padding optional; `None` on any
/// invalid character or a dangling sextet.
pub(crate) fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4 + 1);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for b in s.bytes() {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if bits >= 6 {
        return None; // a single dangling sextet is never valid
    }
    Some(out)
}

fn check_jwt(value: &str) -> bool {
    let parts: Vec<&str> = value.trim().split('.').collect();
    if parts.len() != 3 || parts[0].len() < 10 || parts[1].is_empty() {
        return false;
    }
    let is_b64url = |p: &str| {
        p.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if !parts.iter().all(|p| is_b64url(p)) {
        return false;
    }
    let Some(header) = base64_decode(parts[0]) else {
        return false;
    };
    match serde_json::from_slice::<serde_json::Value>(&header) {
        Ok(serde_json::Value::Object(map)) => map.contains_key("alg"),
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------
// secrets

/// Words that appear as the value of `password=`-like keys in schemas, docs and code but are
/// not passwords.
const NON_PASSWORD_WORDS: &[&str] = &[
    "string",
    "str",
    "null",
    "none",
    "nil",
    "true",
    "false",
    "undefined",
    "required",
    "optional",
    "hidden",
    "text",
    "password",
    "passwd",
    "secret",
    "boolean",
    "bool",
    "int",
    "integer",
    "object",
    "empty",
    "blank",
    "unset",
    "default",
    "value",
    "any",
    "varchar",
    "masked",
    "sensitive",
    "self",
    "this",
    "input",
    "prompt",
    "getpass",
    "env",
    "os",
    "process",
    "config",
    "settings",
    "mypassword",
    "pass",
    "pwd",
    "yes",
    "no",
    "on",
    "off",
];

fn check_password(value: &str) -> bool {
    let v = value.trim();
    if v.chars().count() < 4 || is_placeholder(v) {
        return false;
    }
    let lower = v.to_ascii_lowercase();
    if NON_PASSWORD_WORDS.contains(&lower.as_str()) {
        return false;
    }
    // Code references: os.environ, process.env.DB_PASSWORD, config.password, args.pwd.
    let b = v.as_bytes();
    let ident = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
            && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
    };
    // Code references: os.environ, process.env.DB_PASSWORD, config.password,
    // getpass.getpass, request.headers.get: a dotted chain of identifiers.
    // Random tokens also have dots (`ya29.a0AfH6...`), but their segments mix digits into
    // the letters; code identifiers carry digits at most at the end (`python3`, `v2`).
    // Identifiers are cased by words (`environ`, `DB_PASSWORD`, `dbPassword`, `HttpClient`);
    // a lower-case letter followed by two or more capitals and a lower-case letter again
    // (`DrhQKEAYhnt`) is how random strings look, not names.
    let wordy = |seg: &str| {
        let t = seg.trim_end_matches(|c: char| c.is_ascii_digit());
        let sb = seg.as_bytes();
        let random_case = (1..sb.len()).any(|i| {
            sb[i - 1].is_ascii_lowercase() && {
                let caps = sb[i..]
                    .iter()
                    .take_while(|c| c.is_ascii_uppercase())
                    .count();
                caps >= 2 && sb.get(i + caps).is_some_and(u8::is_ascii_lowercase)
            }
        });
        ident(seg) && !t.bytes().any(|c| c.is_ascii_digit()) && !random_case
    };
    if v.contains('.') && v.split('.').all(wordy) {
        return false;
    }
    // An ALL_CAPS identifier is an environment variable name (`password=DB_PASSWORD`).
    if b.len() >= 4
        && b.iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == b'_')
        && b.contains(&b'_')
    {
        return false;
    }
    // Prose after a "Password:" label ("Reset your password: click the link below"):
    // several words, one of them a function word. Passphrases ("correct horse battery
    // staple") have none.
    const PROSE_WORDS: &[&str] = &[
        "the", "a", "an", "to", "of", "for", "and", "or", "is", "are", "be", "your", "my", "our",
        "this", "that", "here", "below", "above", "click", "see", "please", "link", "not", "no",
        "will", "must", "should", "can", "with", "on", "in", "at", "by", "from", "via", "if",
        "then", "enter", "type", "use", "reset", "forgot", "provided", "required", "sent",
    ];
    let words: Vec<&str> = v.split_whitespace().collect();
    if words.len() >= 2
        && words.iter().any(|w| {
            PROSE_WORDS.contains(
                &w.to_ascii_lowercase()
                    .trim_matches(|c: char| !c.is_ascii_alphanumeric()),
            )
        })
    {
        return false;
    }
    // File paths (`passwd: /etc/passwd`, `pwd: ~/src`).
    if v.starts_with('/') || v.starts_with("~/") || v.starts_with("./") {
        return false;
    }
    // Redaction markers and masks.
    if lower.starts_with("<redacted")
        || lower.starts_with("[redacted")
        || lower.starts_with("[filtered")
    {
        return false;
    }
    true
}

fn check_password_strict(value: &str) -> bool {
    let v = value.trim();
    if v.chars().count() < 6 || !check_password(v) || v.contains("://") {
        return false;
    }
    let letters = v.chars().filter(|c| c.is_alphabetic()).count();
    let digits = v.bytes().filter(u8::is_ascii_digit).count();
    let others = v.chars().filter(|c| !c.is_alphanumeric()).count();
    if letters == 0 {
        // A PIN-like run of digits; dates, times and amounts have separators.
        return others == 0 && digits >= 6 && !all_same(v.as_bytes());
    }
    if digits == 0 && others == 0 {
        // A plain word ("expired", "incorrect", "Sommer"), whatever its case.
        return false;
    }
    // Versions and identifiers with one letter: v3.15.9, 2.0.1-a.
    if letters <= 1
        && v.chars()
            .all(|c| c.is_alphabetic() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_'))
    {
        return false;
    }
    // Dates with a month name and ordinals: 12th, 3rd, Jan-2024.
    let lower = v.to_ascii_lowercase();
    if letters <= 3
        && ["st", "nd", "rd", "th"].iter().any(|s| {
            lower
                .strip_suffix(s)
                .is_some_and(|d| !d.is_empty() && d.bytes().all(|c| c.is_ascii_digit()))
        })
    {
        return false;
    }
    true
}

fn check_aws_access_key(value: &str) -> bool {
    let v = value.trim();
    if v.len() != 20 {
        return false;
    }
    let (prefix, body) = v.split_at(4);
    matches!(
        prefix,
        "AKIA" | "ASIA" | "ABIA" | "ACCA" | "AGPA" | "AIDA" | "AROA" | "ANPA" | "ANVA" | "APKA"
    ) && body
        .bytes()
        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        && !is_placeholder(body)
        && !all_same(body.as_bytes())
        && shannon_entropy(body) >= 2.5
}

/// A PEM private key block: BEGIN and END labels agree and the body (headers such as
/// `Proc-Type:` aside, escaped `\n` allowed) is at least 40 base64 characters.
fn check_pem(value: &str) -> bool {
    let v = value.trim();
    let Some(rest) = v.strip_prefix("-----BEGIN ") else {
        return false;
    };
    let Some((label, rest)) = rest.split_once("-----") else {
        return false;
    };
    let end = format!("-----END {label}-----");
    let Some(body) = rest.strip_suffix(end.as_str()) else {
        return false;
    };
    let body = body.replace("\\r", "\n").replace("\\n", "\n");
    let mut b64 = 0usize;
    for line in body.lines() {
        let line = line.trim();
        if line.is_empty() || line.contains(':') {
            continue; // RFC 1421 headers: Proc-Type, DEK-Info
        }
        if !line
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=')
        {
            return false;
        }
        b64 += line.len();
    }
    b64 >= 40
}

// ---------------------------------------------------------------------------------------------
// government identifiers

fn check_dni(value: &str) -> bool {
    const LETTERS: &[u8; 23] = b"TRWAGMYFPDXBNJZSQVHLCKE";
    let compact: Vec<u8> = value
        .trim()
        .bytes()
        .filter(|&b| b != b'-' && b != b' ' && b != b'.')
        .map(|b| b.to_ascii_uppercase())
        .collect();
    if compact.len() != 9 {
        return false;
    }
    let (num_part, letter) = (&compact[..8], compact[8]);
    let mut n: u32 = match num_part[0] {
        b'X' => 0,
        b'Y' => 1,
        b'Z' => 2,
        b'0'..=b'9' => u32::from(num_part[0] - b'0'),
        _ => return false,
    };
    for &b in &num_part[1..] {
        if !b.is_ascii_digit() {
            return false;
        }
        n = n * 10 + u32::from(b - b'0');
    }
    if all_same(&num_part[1..]) && num_part[0].is_ascii_digit() && num_part[0] == num_part[1] {
        return false;
    }
    LETTERS[(n % 23) as usize] == letter
}

fn check_bsn(value: &str) -> bool {
    let v = value.trim();
    if !v
        .bytes()
        .all(|b| b.is_ascii_digit() || b == b'.' || b == b' ' || b == b'-')
    {
        return false;
    }
    let d = digits_of(v);
    if d.len() != 9 || all_same(&d) || is_sequential(&d) {
        return false;
    }
    let mut sum: i32 = 0;
    for (i, &x) in d[..8].iter().enumerate() {
        sum += (9 - i as i32) * i32::from(x);
    }
    sum -= i32::from(d[8]);
    sum % 11 == 0 && sum != 0
}

// ---------------------------------------------------------------------------------------------
// personal numbers of the Nordic countries, Poland and Belgium: a date of birth in the
// number, and (but for Denmark) check digits.

/// The digits of `v` when its other bytes are all in `seps`, else `None`.
fn digits_only(v: &str, seps: &[u8]) -> Option<Vec<u8>> {
    v.bytes()
        .all(|b| b.is_ascii_digit() || seps.contains(&b))
        .then(|| digits_of(v))
}

/// Two digits of `d` from `i`, as a number.
fn two(d: &[u8], i: usize) -> u32 {
    u32::from(d[i]) * 10 + u32::from(d[i + 1])
}

/// A real day of `m` in `y` (any century: personal numbers outlive the DOB year range).
fn real_day(y: u32, m: u32, d: u32) -> bool {
    d >= 1 && d <= days_in_month(y, m)
}

/// Luhn over digits, the last being the check digit.
fn luhn_ok(d: &[u8]) -> bool {
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| {
            let x = u32::from(x);
            if i % 2 == 1 {
                let y = x * 2;
                if y > 9 { y - 9 } else { y }
            } else {
                x
            }
        })
        .sum();
    sum % 10 == 0
}

fn check_se_personnummer(value: &str) -> bool {
    let v = value.trim();
    let Some(d) = digits_only(v, b"-+") else {
        return false;
    };
    // At most one separator, before the last four digits.
    let sep = v.bytes().filter(|b| matches!(b, b'-' | b'+')).count();
    if sep > 1 || (sep == 1 && !matches!(v.as_bytes()[v.len() - 5], b'-' | b'+')) {
        return false;
    }
    let (century, d) = match d.len() {
        10 => (None, &d[..]),
        12 => (Some(two(&d, 0)), &d[2..]),
        _ => return false,
    };
    if century.is_some_and(|c| !(18..=20).contains(&c)) || all_same(d) || is_sequential(d) {
        return false;
    }
    let yy = two(d, 0);
    let y = century.map_or(if yy <= 25 { 2000 + yy } else { 1900 + yy }, |c| {
        c * 100 + yy
    });
    let (m, mut day) = (two(d, 2), two(d, 4));
    if day > 60 {
        day -= 60; // samordningsnummer
    }
    real_day(y, m, day) && luhn_ok(d)
}

fn check_pl_pesel(value: &str) -> bool {
    let Some(d) = digits_only(value.trim(), b"") else {
        return false;
    };
    if d.len() != 11 || all_same(&d) || is_sequential(&d) {
        return false;
    }
    let (yy, mm) = (two(&d, 0), two(&d, 2));
    let (century, m) = match mm {
        1..=12 => (1900, mm),
        21..=32 => (2000, mm - 20),
        41..=52 => (2100, mm - 40),
        61..=72 => (2200, mm - 60),
        81..=92 => (1800, mm - 80),
        _ => return false,
    };
    const W: [u32; 10] = [1, 3, 7, 9, 1, 3, 7, 9, 1, 3];
    let sum: u32 = d.iter().zip(W).map(|(&x, w)| u32::from(x) * w).sum();
    real_day(century + yy, m, two(&d, 4)) && (10 - sum % 10) % 10 == u32::from(d[10])
}

fn check_dk_cpr(value: &str) -> bool {
    let Some(d) = digits_only(value.trim(), b"- ") else {
        return false;
    };
    if d.len() != 10 || all_same(&d) || is_sequential(&d) || value.trim().len() > 11 {
        return false;
    }
    // The century follows from the seventh digit and the year; any of them will do for
    // a day's validity but 29 February.
    let yy = two(&d, 4);
    let y = match (d[6], yy) {
        (0..=3, _) | (4 | 9, 37..) => 1900 + yy,
        (4 | 9, _) | (5..=8, ..=57) => 2000 + yy,
        (5..=8, _) => 1800 + yy,
        _ => return false,
    };
    real_day(y, two(&d, 2), two(&d, 0))
}

fn check_fi_hetu(value: &str) -> bool {
    const CHECK: &[u8; 31] = b"0123456789ABCDEFHJKLMNPRSTUVWXY";
    let b = value.trim().as_bytes();
    if b.len() != 11 || !b[..6].iter().chain(&b[7..10]).all(u8::is_ascii_digit) {
        return false;
    }
    let century = match b[6] {
        b'+' => 1800,
        b'-' | b'U'..=b'Y' => 1900,
        b'A'..=b'F' => 2000,
        _ => return false,
    };
    let d: Vec<u8> = b[..6].iter().chain(&b[7..10]).map(|x| x - b'0').collect();
    if all_same(&d) {
        return false;
    }
    let n = d.iter().fold(0u32, |n, &x| n * 10 + u32::from(x));
    real_day(century + two(&d, 4), two(&d, 2), two(&d, 0))
        && b[10].to_ascii_uppercase() == CHECK[(n % 31) as usize]
}

fn check_no_fnr(value: &str) -> bool {
    let Some(d) = digits_only(value.trim(), b" ") else {
        return false;
    };
    if d.len() != 11 || all_same(&d) || is_sequential(&d) {
        return false;
    }
    let mut day = two(&d, 0);
    if day > 40 {
        day -= 40; // D-number
    }
    let mut m = two(&d, 2);
    if m > 40 {
        m -= 40; // H-number
    }
    let yy = two(&d, 4);
    let individual = u32::from(d[6]) * 100 + two(&d, 7);
    let y = match individual {
        0..=499 => 1900 + yy,
        500..=749 if yy >= 54 => 1800 + yy,
        900..=999 if yy >= 40 => 1900 + yy,
        500..=999 if yy <= 39 => 2000 + yy,
        _ => return false,
    };
    let k = |w: &[u32]| {
        let s: u32 = d.iter().zip(w).map(|(&x, w)| u32::from(x) * w).sum();
        match 11 - s % 11 {
            11 => Some(0),
            10 => None,
            k => Some(k),
        }
    };
    real_day(y, m, day)
        && k(&[3, 7, 6, 1, 8, 9, 4, 5, 2]) == Some(u32::from(d[9]))
        && k(&[5, 4, 3, 2, 7, 6, 5, 4, 3, 2]) == Some(u32::from(d[10]))
}

fn check_be_nrn(value: &str) -> bool {
    let Some(d) = digits_only(value.trim(), b".- ") else {
        return false;
    };
    if d.len() != 11 || all_same(&d) || is_sequential(&d) {
        return false;
    }
    let serial = u32::from(d[6]) * 100 + two(&d, 7);
    if !(1..=997).contains(&serial) {
        return false;
    }
    let base = d[..9].iter().fold(0u64, |n, &x| n * 10 + u64::from(x));
    let check = u64::from(two(&d, 9));
    let born_2000 = 97 - (2_000_000_000 + base) % 97 == check;
    if !born_2000 && 97 - base % 97 != check {
        return false;
    }
    // Month and day may be 0 (unknown); BIS numbers add 20 or 40 to the month.
    let (yy, mut m, day) = (two(&d, 0), two(&d, 2), two(&d, 4));
    if m > 40 {
        m -= 40;
    } else if m > 20 {
        m -= 20;
    }
    let y = if born_2000 { 2000 + yy } else { 1900 + yy };
    match (m, day) {
        (0, 0..=31) | (1..=12, 0) => true,
        (1..=12, _) => real_day(y, m, day),
        _ => false,
    }
}

fn check_national_id(value: &str) -> bool {
    check_se_personnummer(value)
        || check_pl_pesel(value)
        || check_dk_cpr(value)
        || check_fi_hetu(value)
        || check_no_fnr(value)
        || check_be_nrn(value)
        || check_dni(value)
        || check_bsn(value)
        || check_nino(value)
        || check_de_tax_id(value)
        || check_nir(value)
        || check_codice_fiscale(value)
        || check_us_ssn(value)
}

fn check_nino(value: &str) -> bool {
    let compact: Vec<u8> = value
        .trim()
        .bytes()
        .filter(|&b| b != b' ')
        .map(|b| b.to_ascii_uppercase())
        .collect();
    if compact.len() != 9 {
        return false;
    }
    let (a, b) = (compact[0], compact[1]);
    let bad_first = b"DFIQUV";
    let bad_second = b"DFIOQUV";
    if !a.is_ascii_uppercase()
        || !b.is_ascii_uppercase()
        || bad_first.contains(&a)
        || bad_second.contains(&b)
    {
        return false;
    }
    let prefix = [a, b];
    if [b"BG", b"GB", b"NK", b"KN", b"TN", b"NT", b"ZZ"]
        .iter()
        .any(|p| **p == prefix)
    {
        return false;
    }
    let digits = &compact[2..8];
    if !digits.iter().all(u8::is_ascii_digit) || all_same(digits) {
        return false;
    }
    matches!(compact[8], b'A'..=b'D')
}

fn check_de_tax_id(value: &str) -> bool {
    let v = value.trim();
    if !v
        .bytes()
        .all(|b| b.is_ascii_digit() || b == b' ' || b == b'/')
    {
        return false;
    }
    let d = digits_of(v);
    if d.len() != 11 || d[0] == 0 {
        return false;
    }
    // In the first 10 digits exactly one digit occurs twice or three times, the rest at most once.
    let mut counts = [0u8; 10];
    for &x in &d[..10] {
        counts[x as usize] += 1;
    }
    let multi: Vec<u8> = counts.iter().copied().filter(|&c| c > 1).collect();
    if multi.len() != 1 || multi[0] > 3 {
        return false;
    }
    // ISO 7064 MOD 11,10
    let mut product: u32 = 10;
    for &x in &d[..10] {
        let mut sum = (u32::from(x) + product) % 10;
        if sum == 0 {
            sum = 10;
        }
        product = (sum * 2) % 11;
    }
    let mut check = 11 - product;
    if check == 10 {
        check = 0;
    }
    check == u32::from(d[10])
}

fn check_nir(value: &str) -> bool {
    let compact: Vec<u8> = value
        .trim()
        .bytes()
        .filter(|&b| b != b' ' && b != b'.')
        .map(|b| b.to_ascii_uppercase())
        .collect();
    if compact.len() != 15 {
        return false;
    }
    if !matches!(compact[0], b'1' | b'2' | b'3' | b'4' | b'7' | b'8') {
        return false;
    }
    if !compact[3].is_ascii_digit() || !compact[4].is_ascii_digit() {
        return false;
    }
    let month = u32::from(compact[3] - b'0') * 10 + u32::from(compact[4] - b'0');
    if !((1..=12).contains(&month) || (20..=42).contains(&month) || (50..=99).contains(&month)) {
        return false;
    }
    // Corsica: department 2A / 2B are replaced by 19 / 18 for the key computation.
    let mut s: String = String::with_capacity(15);
    let mut corsica_adjust: u64 = 0;
    for (i, &b) in compact[..13].iter().enumerate() {
        if i == 6 && (b == b'A' || b == b'B') && compact[5] == b'2' {
            s.push('0');
            corsica_adjust = if b == b'A' { 1_000_000 } else { 2_000_000 };
            continue;
        }
        if !b.is_ascii_digit() {
            return false;
        }
        s.push(char::from(b));
    }
    if !compact[13..].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let Ok(mut n) = s.parse::<u64>() else {
        return false;
    };
    n -= corsica_adjust.min(n);
    let key = u64::from(compact[13] - b'0') * 10 + u64::from(compact[14] - b'0');
    97 - (n % 97) == key
}

fn check_codice_fiscale(value: &str) -> bool {
    let c: Vec<u8> = value
        .trim()
        .bytes()
        .map(|b| b.to_ascii_uppercase())
        .collect();
    if c.len() != 16 || !c.iter().all(u8::is_ascii_alphanumeric) {
        return false;
    }
    // Values of characters in odd (1-based) positions: digits 0-9, then letters A-Z.
    const ODD_DIGITS: [u32; 10] = [1, 0, 5, 7, 9, 13, 15, 17, 19, 21];
    const ODD_LETTERS: [u32; 26] = [
        1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24,
        23,
    ];
    let mut sum = 0u32;
    for (i, &b) in c[..15].iter().enumerate() {
        let idx = if b.is_ascii_digit() {
            (b - b'0') as usize
        } else {
            (b - b'A') as usize + 10
        };
        // positions are 1-based: odd positions are even indices
        if i % 2 == 0 {
            sum += if idx < 10 {
                ODD_DIGITS[idx]
            } else {
                ODD_LETTERS[idx - 10]
            };
        } else {
            sum += if b.is_ascii_digit() {
                u32::from(b - b'0')
            } else {
                u32::from(b - b'A')
            };
        }
    }
    let expected = b'A' + (sum % 26) as u8;
    c[15] == expected
}

// ---------------------------------------------------------------------------------------------
// street addresses

/// Words that, inside a candidate street name, betray prose, headings or tech text.
const ADDRESS_STOPWORDS: &[&str] = &[
    "the",
    "a",
    "an",
    "and",
    "or",
    "of",
    "to",
    "in",
    "for",
    "with",
    "by",
    "is",
    "are",
    "was",
    "my",
    "our",
    "your",
    "this",
    "that",
    "these",
    "those",
    "best",
    "top",
    "easy",
    "fast",
    "better",
    "right",
    "wrong",
    "only",
    "same",
    "other",
    "next",
    "last",
    "first",
    "step",
    "steps",
    "version",
    "chapter",
    "section",
    "page",
    "part",
    "phase",
    "level",
    "item",
    "items",
    "data",
    "api",
    "email",
    "slack",
    "online",
    "error",
    "errors",
    "string",
    "spring",
    "monitoring",
    "offering",
    "rendering",
    "sharing",
    "clustering",
    "filtering",
    "scoring",
    "ordering",
    "engineering",
    "during",
    "go",
    "down",
    "up",
    "out",
    "key",
    "main.rs",
    "lib",
    "test",
    "tests",
    "jahr",
    "jahre",
    "ende",
    "anfang",
    "montag",
    "dienstag",
    "mittwoch",
    "donnerstag",
    "freitag",
    "samstag",
    "sonntag",
    "januar",
    "februar",
    "märz",
    "april",
    "mai",
    "juni",
    "juli",
    "august",
    "september",
    "oktober",
    "november",
    "dezember",
    "tag",
    "tage",
    "abend",
    "morgen",
    "wochenende",
    "minuten",
    "stunden",
    "punkt",
    "prozent",
    "euro",
    "uhr",
    "beispiel",
    "bring",
    "ring",
    "wiring",
    "hiring",
    "tiering",
    "storing",
    "exploring",
    "mentoring",
    "refactoring",
    "authoring",
    "coloring",
    "colouring",
    "gathering",
    "recurring",
    "measuring",
    "featuring",
    "securing",
    "restoring",
    "comparing",
    "preparing",
    "declaring",
    "pairing",
    "repairing",
    "caring",
    "hearing",
    "wearing",
    "bearing",
    "steering",
    "centering",
    "clearing",
    "buffering",
    "tutoring",
    "notepad",
    "different",
    "feature",
    "design",
    "travel",
    "destinations",
    "user",
    "users",
    "code",
    "release",
    "sprint",
    "week",
    "days",
    "hours",
    "minutes",
    "years",
    "months",
    "times",
    "nature",
    "science",
    "figure",
    "table",
    "handler",
    "router",
];

/// Street-type words that may open an address without a house number ("rue de Hubert").
const STREET_LEADS: &[&str] = &[
    "rue",
    "avenue",
    "boulevard",
    "chemin",
    "impasse",
    "allée",
    "quai",
    "calle",
    "avenida",
    "via",
    "viale",
    "piazza",
    "corso",
    "rua",
    "ul.",
    "ulica",
    "al.",
    "aleja",
    "plac",
];

fn check_address(value: &str) -> bool {
    let v = value.trim();
    if v.len() < 6 {
        return false;
    }
    // A house number, or a street-type word first: "see the attached form" is no address.
    let first = v.split_whitespace().next().unwrap_or("").to_lowercase();
    if !v.bytes().any(|b| b.is_ascii_digit()) && !STREET_LEADS.contains(&first.as_str()) {
        return false;
    }
    let mut words = 0;
    for w in v.split(|c: char| c.is_whitespace() || c == ',') {
        let w = w.trim_matches(|c: char| c == '.' || c == ',' || c == '\'' || c == '"');
        if w.is_empty() {
            continue;
        }
        words += 1;
        let lower = w.to_lowercase();
        // All-caps tokens are state codes and postcodes ("IN 02082", "OR", "SW1A 2AA").
        let all_caps = w.len() <= 4
            && w.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if !all_caps && ADDRESS_STOPWORDS.contains(&lower.as_str()) {
            // Lower-case particles are legit inside FR/ES/IT/NL/DE street names ("rue de la Paix",
            // "Via dei Mille", "Am Markt"); only capitalised or English stopwords count.
            let allowed_particle =
                matches!(lower.as_str(), "a" | "in" | "am" | "of" | "the" | "and")
                    && w.chars().next().is_some_and(char::is_lowercase);
            if !allowed_particle {
                return false;
            }
        }
    }
    words >= 2
}

// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    fn v(spec: &str) -> Validator {
        Validator::parse(spec).expect("known validator")
    }

    #[test]
    fn parse_specs() {
        assert_eq!(v("luhn"), Validator::Luhn);
        assert_eq!(v("entropy(3.5)"), Validator::Entropy(3.5));
        assert_eq!(v(" entropy( 4 ) "), Validator::Entropy(4.0));
        assert!(Validator::parse("entropy(x)").is_err());
        assert!(Validator::parse("entropy").is_err());
        assert!(Validator::parse("nope").is_err());
        for s in [
            "iban",
            "us_ssn",
            "ipv4",
            "ipv6",
            "mac",
            "phone",
            "email",
            "email_obfuscated",
            "date",
            "jwt",
            "not_placeholder",
            "password",
            "aws_access_key",
            "dni",
            "bsn",
            "nino",
            "de_tax_id",
            "nir",
            "codice_fiscale",
            "address",
        ] {
            assert!(Validator::parse(s).is_ok(), "{s}");
        }
    }

    #[test]
    fn luhn_cards() {
        let l = v("luhn");
        for ok in [
            "4111111111111111",
            "4111 1111 1111 1111",
            "4111-1111-1111-1111",
            "4012888888881881",
            "378282246310005",
            "3782 822463 10005",
            "371449635398431",
            "5555555555554444",
            "5105105105105100",
            "2223003122003222",
            "6011111111111117",
            "6011000990139424",
            "3530111333300000",
            "30569309025904",
            "38520000023237",
            "6200000000000005",
            "4222222222222",
            "213119935181900",
            "180012345678905",
            "502009281598",
        ] {
            assert!(l.check(ok), "{ok}");
        }
        for bad in [
            "4111111111111112",
            "4111 1111-1111 1111",
            "1234567812345670",
            "0000000000000000",
            "7111111111111117", // Luhn-valid, no such IIN
            "37828224631000",   // Amex with wrong length
            "411111111111",     // too short
            "12345678901234567890",
            "4111 1111 1111 111a",
        ] {
            assert!(!l.check(bad), "{bad}");
        }
    }

    #[test]
    fn ibans() {
        let i = v("iban");
        for ok in [
            "GB82WEST12345698765432",
            "GB82 WEST 1234 5698 7654 32",
            "DE89370400440532013000",
            "DE89 3704 0044 0532 0130 00",
            "FR1420041010050500013M02606",
            "FR14 2004 1010 0505 0001 3M02 606",
            "NL91ABNA0417164300",
            "ES9121000418450200051332",
            "IT60X0542811101000000123456",
            "BE68539007547034",
            "CH9300762011623852957",
            "AT611904300234573201",
            "NO9386011117947",
        ] {
            assert!(i.check(ok), "{ok}");
        }
        for bad in [
            "GB82WEST12345698765433",
            "DE89370400440532013001",
            "DE8937040044053201300",     // wrong length
            "XX89370400440532013000",    // unknown country
            "GB82 WEST 123 45698765432", // bad grouping
            "NL91ABNA04171643",
            "de89370400440532013000x",
        ] {
            assert!(!i.check(bad), "{bad}");
        }
    }

    #[test]
    fn ssns() {
        let s = v("us_ssn");
        for ok in ["536-22-1234", "536 22 1234", "536221234", "772-15-3309"] {
            assert!(s.check(ok), "{ok}");
        }
        for bad in [
            "000-12-3456",
            "666-12-3456",
            "912-34-5678",
            "536-00-1234",
            "536-22-0000",
            "078-05-1120",
            "219-09-9999",
            "123-45-6789",
            "536-22 1234",
            "111-11-1111",
            "53-622-1234",
        ] {
            assert!(!s.check(bad), "{bad}");
        }
    }

    #[test]
    fn ips() {
        let v4 = v("ipv4");
        for ok in [
            "192.168.1.20",
            "10.0.0.5",
            "8.8.8.8",
            "1.2.3.4",
            "127.0.0.1",
        ] {
            assert!(v4.check(ok), "{ok}");
        }
        for bad in ["0.0.0.0", "256.1.1.1", "1.2.3", "01.2.3.4", "1.2.3.4.5"] {
            assert!(!v4.check(bad), "{bad}");
        }
        let v6 = v("ipv6");
        for ok in [
            "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
            "2001:db8:85a3::8a2e:370:7334",
            "fe80::1ff:fe23:4567:890a",
            "fe80::1",
            "::ffff:192.0.2.128",
            "2a00:1450:4001:82a::200e",
        ] {
            assert!(v6.check(ok), "{ok}");
        }
        for bad in [
            "::", "::1", "12:34:56", "10:30:00", "std::io", "de::ad", "1:2",
        ] {
            assert!(!v6.check(bad), "{bad}");
        }
    }

    #[test]
    fn macs() {
        let m = v("mac");
        for ok in [
            "00:1A:2B:3C:4D:5E",
            "00-1a-2b-3c-4d-5e",
            "001a.2b3c.4d5e",
            "f4:5c:89:ab:cd:01",
        ] {
            assert!(m.check(ok), "{ok}");
        }
        for bad in [
            "00:00:00:00:00:00",
            "FF:FF:FF:FF:FF:FF",
            "00:1A-2B:3C:4D:5E",
            "00:1A:2B:3C:4D",
            "00:1G:2B:3C:4D:5E",
        ] {
            assert!(!m.check(bad), "{bad}");
        }
    }

    #[test]
    fn phones() {
        let l = v("phone_labelled");
        for ok in [
            "0072613018",
            "0017 558953",
            "(003)-1727941",
            "+31(0)004-574337",
            "08-43 49 88",
            "+1 415 555 2671",
        ] {
            assert!(l.check(ok), "{ok}");
        }
        for bad in [
            "12345",
            "2024-03-15",
            "1.2.3",
            "0000000000",
            "123456789",
            "3.14",
            "12.03.1961",
            "abc",
        ] {
            assert!(!l.check(bad), "{bad}");
        }
        let p = v("phone");
        for ok in [
            "+4915112345678",
            "+44 20 7946 0958",
            "+44 (0)20 7946 0958",
            "+33 1 23 45 67 89",
            "0049 30 1234567",
            "+1 (415) 555-2671",
            "+1-415-555-2671",
            "(415) 555-2671",
            "415-555-2671",
            "415.555.2671",
            "1-800-275-2273",
            "212-555-0147",
            "020 7946 0958",
            "07700 900123",
            "030 12345678",
            "0151 12345678",
            "030/1234567",
            "01 23 45 67 89",
            "06.12.34.56.78",
            "612 345 678",
            "91 123 45 67",
            "02 1234 5678",
            "347 123 4567",
            "020-1234567",
            "06-12345678",
            "+39 02 1234 5678",
            "+34 612 345 678",
            "+351 912 345 678",
            "+48 512 345 678",
            "+420 601 123 456",
            "+41 44 668 18 00",
            "+32 470 12 34 56",
            "4155552671",
            "+49 030 1234567",
            "(351) 968 301 661",
            "533 186 091",
            "02239 09960 308",
            "(555) 123-4567",
            "123-456-7891",
            "+1-012-345-6789",
            "001-415-555-2671x1234",
            "415-555-2671 ext. 12",
            "349 7861258",
            "320-5645874",
            "366/7515832",
        ] {
            assert!(p.check(ok), "{ok}");
        }
        for bad in [
            "2024-01-15 10",
            "1.2.3.4",
            "10.0.19041.1234",
            "2024-123456",
            "100234567",
            "0012345",
            "978-3-16-148410-0",
            "4111 1111 1111 1112",
            "0151 1283 0367",
            "1234567890",
            "123-456-7890",
            "0123456789",
            "1155552671",
            "5555555555",
            "4155552671x",
            "1-2-3-4-5-6-7",
            "4294967296x",
            "+44 20 7946",
            "+33 1 23 45 67 89 12",
            "01.02.2024",
            "15/01/2024 12",
            "250 000 000",
            "123 45 6789",
            "12 34 56",
            "0728-4445-0",
            "07 284445 0",
            "978-0-07-284445-0",
            "9780072844450",
            "300 5645874",
            "349 1234567",
            "349 0000000",
        ] {
            assert!(!p.check(bad), "{bad}");
        }
    }

    #[test]
    fn emails() {
        let e = v("email");
        for ok in [
            "jane.doe@acme.io",
            "JANE.DOE@ACME.IO",
            "jane+billing@mail.acme.co.uk",
            "a_b-c@sub.example-corp.com",
        ] {
            assert!(e.check(ok), "{ok}");
        }
        for bad in [
            "jane@localhost",
            "jane..doe@acme.io",
            ".jane@acme.io",
            "jane@-acme.io",
            "jane@acme.c0m",
            "jane@acme..io",
            "@acme.io",
            "jane@acme.i",
        ] {
            assert!(!e.check(bad), "{bad}");
        }
        let o = v("email_obfuscated");
        for ok in [
            "john dot doe at gmail dot com",
            "john[at]gmail[dot]com",
            "john (at) gmail (dot) com",
            "john at gmail.com",
            "jane.doe [at] acme [dot] co [dot] uk",
            "john{at}gmail{dot}com",
        ] {
            assert!(o.check(ok), "{ok}");
        }
        for bad in [
            "meet at noon",
            "john at gmail",
            "look at this dot com",
            "at gmail dot com",
        ] {
            assert!(!o.check(bad), "{bad}");
        }
    }

    #[test]
    fn dates() {
        let d = v("date");
        for ok in [
            "1985-03-12",
            "12/03/1985",
            "03/12/1985",
            "12.03.1985",
            "12-03-85",
            "12 March 1985",
            "March 12, 1985",
            "Mar 12th, 1985",
            "12. März 1985",
            "12 mars 1985",
            "1er janvier 1990",
            "12 de marzo de 1985",
            "12 marzo 1985",
            "12 maart 1985",
            "29 February 2000",
            "3 Sept. 1971",
            "31/12/1999",
            "12/31/1999",
        ] {
            assert!(d.check(ok), "{ok}");
        }
        for bad in [
            "1985-13-12",
            "31/02/1985",
            "29 February 1900",
            "12 Smarch 1985",
            "1899-12-31",
            "2030-01-01",
            "12/03",
            "12.03-1985",
            "32.01.1985",
            "March 1985",
        ] {
            assert!(!d.check(bad), "{bad}");
        }
    }

    #[test]
    fn jwts() {
        let j = v("jwt");
        let tok = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
        assert!(j.check(tok));
        // header without "alg"
        assert!(!j.check("eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"));
        assert!(!j.check("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0"));
        assert!(!j.check("not.a.jwt"));
        assert_eq!(
            base64_decode("eyJhbGciOiJub25lIn0").as_deref(),
            Some(&b"{\"alg\":\"none\"}"[..])
        );
    }

    #[test]
    fn placeholder_words_inside_random_tokens() {
        // "your" fused into a long random token is chance, not a placeholder.
        assert!(!is_placeholder(
            "EAAGccMUDPO6gvoPJ0kBeFyyDCfatvYBcUz9oL9aJGSZUCvv8g5U9dQ2U3Fg3NOv1ITWZvMYtY8ItjCaWG2LCOG2zUAs8rimbQUts8ogw74Km5FOXtgujduC7MnyoUrSSko4R8i6pWSvNf40DmIGk5CaHBB"
        ));
        assert!(is_placeholder(
            "sk-proj-yourkeyhere-Qm9vbGVhbi1zZWNyZXQtdmFsdWU"
        ));
        assert!(is_placeholder("YOUR_API_KEY_HERE"));
        assert!(is_placeholder("yourapikey"));
    }

    #[test]
    fn entropy_and_placeholders() {
        let e = v("entropy(3.5)");
        assert!(e.check("sk-proj-Ab3dE6fGh9JkLmN0pQrStUvWxYz1234567890abcdEFGH"));
        assert!(e.check("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"));
        for bad in [
            "sk-your-api-key-here",
            "aaaaaaaaaaaaaaaaaaaaaaaa",
            "xxxxxxxxxxxxxxxx",
            "<your-api-key>",
            "${OPENAI_API_KEY}",
            "{{ api_key }}",
            "********",
            "sk-example-key-1234567890",
            "PLACEHOLDER_TOKEN_VALUE_123",
            "abababababab",
        ] {
            assert!(!e.check(bad), "{bad}");
        }
        assert!(shannon_entropy("abcd") > 1.99 && shannon_entropy("abcd") < 2.01);
        assert!(is_placeholder("$DB_PASSWORD"));
        assert!(!is_placeholder("hunter2hunter"));
    }

    #[test]
    fn passwords() {
        let p = v("password");
        for ok in [
            "hunter2!",
            "S3cr3t-P@ss",
            "correcthorsebatterystaple",
            "Tr0ub4dor&3",
        ] {
            assert!(p.check(ok), "{ok}");
        }
        for bad in [
            "<your password>",
            "********",
            "${DB_PASSWORD}",
            "string",
            "null",
            "os.environ",
            "process.env.DB_PASSWORD",
            "DB_PASSWORD",
            "changeme",
            "abc",
            "[REDACTED]",
            "xxxxxxxx",
        ] {
            assert!(!p.check(bad), "{bad}");
        }
        // Random passwords with dots are not code references.
        assert!(p.check("DrhQKEAYhnt.MuVA4"));
        assert!(!p.check("config.dbPassword"));
        assert!(!p.check("settings.DATABASES"));
    }

    #[test]
    fn passwords_in_prose() {
        let p = v("password_strict");
        for ok in [
            "Football2013",
            "Passwort1970",
            "A%v6nde+PAg-W=RKRrYTc1",
            "Estate1994?",
            "C^#!f&s2Qg*~8",
            "hunter2!",
            "84937261",
        ] {
            assert!(p.check(ok), "{ok}");
        }
        for bad in [
            "expired",
            "incorrect",
            "reset",
            "Sommer",
            "PASSWORD",
            "v3.15.9",
            "2024-01-05",
            "12.03.2024",
            "12th",
            "abc1",
            "https://acme.io/reset",
            "<your-new-password>",
            "********",
            "111111",
        ] {
            assert!(!p.check(bad), "{bad}");
        }
    }

    #[test]
    fn pem_blocks() {
        let p = v("pem");
        let body =
            "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\nq3Jk9lT0x2VqP8mN5rW1yZ4aB6cD";
        assert!(p.check(&format!(
            "-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----"
        )));
        assert!(p.check(&format!(
            "-----BEGIN RSA PRIVATE KEY-----\\n{}\\n-----END RSA PRIVATE KEY-----",
            body.replace('\n', "\\n")
        )));
        assert!(p.check(&format!(
            "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,3F17F5316E2BAC89\n\n{body}\n-----END RSA PRIVATE KEY-----"
        )));
        assert!(!p.check(&format!(
            "-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----"
        )));
        assert!(!p.check("-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----"));
        assert!(!p.check("-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----"));
    }

    #[test]
    fn secrets() {
        let s = v("secret");
        assert!(s.check("3f9a7c1e8b2d4f6a0c5e9b7d1f3a8c2e"));
        assert!(s.check("u7T!kq2-Zx9wLp4R"));
        for bad in [
            "request.headers.get",
            "changeme",
            "true",
            "aaaaaaaabbbbbbbb",
            "${SECRET}",
            "short1",
        ] {
            assert!(!s.check(bad), "{bad}");
        }
    }

    #[test]
    fn aws_keys() {
        let a = v("aws_access_key");
        assert!(a.check("AKIAZ7QK2M4PLX9RT3VB"));
        assert!(a.check("ASIAY34FZKBOKMUTVV7A"));
        assert!(a.check("AKIAIOSFODNN7EXAMPLE")); // fused EXAMPLE: still redacted
        assert!(!a.check("AKIAXXXXXXXXXXXXXXXX"));
        assert!(!a.check("AKIA0000000000000000"));
        assert!(!a.check("AKIAZ7QK2M4PLX9RT3V"));
        assert!(!a.check("AXYZZ7QK2M4PLX9RT3VB"));
    }

    #[test]
    fn government_ids() {
        let dni = v("dni");
        for ok in [
            "12345678Z",
            "12345678-Z",
            "X1234567L",
            "Y1234567X",
            "Z1234567R",
        ] {
            assert!(dni.check(ok), "{ok}");
        }
        for bad in ["12345678A", "X1234567A", "1234567Z", "00000000T"] {
            assert!(!dni.check(bad), "{bad}");
        }
        let bsn = v("bsn");
        for ok in ["111222333", "123456782", "1112.22.333"] {
            assert!(bsn.check(ok), "{ok}");
        }
        for bad in ["111222334", "123456789", "000000000"] {
            assert!(!bsn.check(bad), "{bad}");
        }
        let nino = v("nino");
        for ok in ["AB123456C", "AB 12 34 56 C", "JG103759A"] {
            assert!(nino.check(ok), "{ok}");
        }
        for bad in [
            "GB123456A",
            "DA123456A",
            "AO123456A",
            "AB123456E",
            "AB000000A",
            "AB12345C",
        ] {
            assert!(!nino.check(bad), "{bad}");
        }
        let tax = v("de_tax_id");
        for ok in ["86095742719", "65929970489", "86 095 742 719"] {
            assert!(tax.check(ok), "{ok}");
        }
        for bad in ["86095742710", "01234567890", "11111111111", "1234567890"] {
            assert!(!tax.check(bad), "{bad}");
        }
        let nir = v("nir");
        for ok in [
            "185057800608491",
            "1 85 05 78 006 084 91",
            "2 69 05 49 588 157 80",
        ] {
            assert!(nir.check(ok), "{ok}");
        }
        for bad in ["185057800608492", "585057800608491", "185157800608491"] {
            assert!(!nir.check(bad), "{bad}");
        }
        let cf = v("codice_fiscale");
        for ok in ["RSSMRA85T10A562S", "MRTMTT25D09F205Z"] {
            assert!(cf.check(ok), "{ok}");
        }
        for bad in ["RSSMRA85T10A562T", "RSSMRA85T10A562", "MRTMTT25D09F205A"] {
            assert!(!cf.check(bad), "{bad}");
        }
    }

    #[test]
    fn nordic_polish_and_belgian_personal_numbers() {
        let cases: [(&str, &[&str], &[&str]); 6] = [
            (
                "se_personnummer",
                &[
                    "811228-9874",
                    "19811228-9874",
                    "198112289874",
                    "8112289874",
                    "900101-2393",
                    "040229-1231",
                    "811288-9871", // samordningsnummer: day + 60
                ],
                &[
                    "811228-9875",   // Luhn
                    "811328-9874",   // month 13
                    "030229-1231",   // 29 February 2003
                    "17811228-9874", // century
                    "81-1228-9874",  // separator placement
                    "0000000000",
                    "0123456789",
                ],
            ),
            (
                "pl_pesel",
                &["44051401359", "02270803624", "90123145670", "85031101922"],
                &[
                    "44051401358",
                    "44131401359",
                    "44053201359",
                    "11111111111",
                    "12345678901",
                ],
            ),
            (
                "dk_cpr",
                &["150384-2617", "1503842617", "290296-1234", "010203-4566"],
                &[
                    "320184-2617",
                    "151384-2617",
                    "290297-1234",
                    "1503-84-2617",
                    "0000000000",
                ],
            ),
            (
                "fi_hetu",
                &["131052-308T", "010101A123N", "280264-570K", "131052-308t"],
                &["131052-308U", "131052G308T", "321052-308T", "131052-30T"],
            ),
            (
                "no_fnr",
                &["24127649827", "15038426165", "30099951296", "241276 49827"],
                &["24127649828", "24127649837", "32127649827", "11111111111"],
            ),
            (
                "be_nrn",
                &[
                    "85073003328",
                    "85.07.30-033.28",
                    "01020345603",
                    "93011422851",
                ],
                &[
                    "85073003329",
                    "85.07.30-033.27",
                    "85133003395",
                    "00000000097",
                ],
            ),
        ];
        let any = v("national_id");
        for (name, ok, bad) in cases {
            let val = v(name);
            for s in ok {
                assert!(val.check(s), "{name}: {s}");
                assert!(any.check(s), "national_id: {s}");
            }
            for s in bad {
                assert!(!val.check(s), "{name}: {s}");
            }
        }
        for s in [
            "12345678Z",
            "123456782",
            "AB123456C",
            "RSSMRA85T10A562S",
            "536-22-1234",
        ] {
            assert!(any.check(s), "national_id: {s}");
        }
        for s in ["order 4471", "2024-11-05", "1234567890", "v2.14.3"] {
            assert!(!any.check(s), "national_id: {s}");
        }
    }

    #[test]
    fn addresses() {
        let a = v("address");
        for ok in [
            "1600 Amphitheatre Parkway",
            "221B Baker Street, London NW1 6XE",
            "12 rue de la Paix, 75002 Paris",
            "Hauptstraße 5",
            "Am Markt 3",
            "Via dei Mille 5, 00185 Roma",
            "Kaiserring 4",
            "8426 Mccarthy Knolls Suite 321, East Jesse, IN 02082",
            "Studio 6\nSam Extension",
        ] {
            assert!(a.check(ok), "{ok}");
        }
        assert!(!a.check("see the attached form"));
        for bad in [
            "3 Best Way",
            "2 The Road",
            "String 3",
            "Monitoring 2",
            "Im Jahr 3",
            "Am Montag 3",
        ] {
            assert!(!a.check(bad), "{bad}");
        }
    }
}
