#![allow(clippy::explicit_auto_deref)] // `*` picks the `&str` element type for `pick`
//! Generators for realistic values (with real checksums) and the checksum validators
//! the self-check test uses.

use super::data::*;
use super::rng::*;

// ---------------------------------------------------------------- checksums

pub fn luhn_ok(s: &str) -> bool {
    let d: Vec<u32> = s
        .chars()
        .filter(|c| c.is_ascii_digit())
        .map(|c| c as u32 - 48)
        .collect();
    if d.len() < 12 {
        return false;
    }
    let mut sum = 0;
    for (i, x) in d.iter().rev().enumerate() {
        let mut v = *x;
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

fn luhn_digit(payload: &str) -> char {
    for c in b'0'..=b'9' {
        let s = format!("{payload}{}", c as char);
        if luhn_ok(&s) {
            return c as char;
        }
    }
    unreachable!()
}

fn mod97(digits_and_letters: &str) -> u32 {
    let mut m: u32 = 0;
    for c in digits_and_letters.chars() {
        let v = if c.is_ascii_digit() {
            c as u32 - 48
        } else {
            c.to_ascii_uppercase() as u32 - 55
        };
        if v >= 10 {
            m = (m * 100 + v) % 97;
        } else {
            m = (m * 10 + v) % 97;
        }
    }
    m
}

pub const IBAN_LEN: &[(&str, usize)] = &[
    ("DE", 22),
    ("FR", 27),
    ("ES", 24),
    ("IT", 27),
    ("NL", 18),
    ("BE", 16),
    ("AT", 20),
    ("CH", 21),
    ("GB", 22),
    ("LU", 20),
    ("PL", 28),
    ("PT", 25),
    ("IE", 22),
];

pub fn iban_ok(s: &str) -> bool {
    let c: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    if c.len() < 15 || !c.is_ascii() {
        return false;
    }
    match IBAN_LEN.iter().find(|(cc, _)| *cc == &c[..2]) {
        Some((_, n)) if *n == c.len() => {}
        _ => return false,
    }
    let re = format!("{}{}", &c[4..], &c[..4]);
    mod97(&re) == 1
}

pub fn ssn_ok(s: &str) -> bool {
    let d: String = s.chars().filter(|c| c.is_ascii_digit()).collect();
    if d.len() != 9 {
        return false;
    }
    let area: u32 = d[..3].parse().unwrap();
    let group: u32 = d[3..5].parse().unwrap();
    let serial: u32 = d[5..].parse().unwrap();
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

// ---------------------------------------------------------------- base64

pub fn b64(data: &[u8], url: bool, pad: bool) -> String {
    let table: &[u8] = if url { B64URL } else { B64 };
    let mut out = String::new();
    for ch in data.chunks(3) {
        let b = [ch[0], *ch.get(1).unwrap_or(&0), *ch.get(2).unwrap_or(&0)];
        let n = ((b[0] as u32) << 16) | ((b[1] as u32) << 8) | b[2] as u32;
        let k = ch.len() + 1;
        for i in 0..4 {
            if i < k {
                out.push(table[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else if pad {
                out.push('=');
            }
        }
    }
    out
}

pub fn b64_decode(s: &str) -> Option<Vec<u8>> {
    let mut bits: u32 = 0;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => continue,
            _ => return None,
        } as u32;
        bits = (bits << 6) | v;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    Some(out)
}

// ---------------------------------------------------------------- people

#[derive(Clone, Debug)]
pub struct Person {
    pub given: String,
    pub family: String,
    pub region: &'static str,
    /// Family name written first (East Asian / Vietnamese convention).
    pub family_first: bool,
}

impl Person {
    pub fn full(&self) -> String {
        if self.family_first {
            format!("{} {}", self.family, self.given)
        } else {
            format!("{} {}", self.given, self.family)
        }
    }
    /// "DUPONT Jean"
    pub fn upper(&self) -> String {
        format!("{} {}", self.family.to_uppercase(), self.given)
    }
    /// "Dupont, Jean"
    pub fn rev(&self) -> String {
        format!("{}, {}", self.family, self.given)
    }
    /// "J. Dupont"
    pub fn initial(&self) -> String {
        let first: String = self.given.chars().take(1).collect();
        format!("{first}. {}", self.family)
    }
}

/// Locale index: 0 EN, 1 DE, 2 FR, 3 ES, 4 IT, 5 NL.
pub fn person(r: &mut Rng, loc: usize) -> Person {
    let native = ["en", "de", "fr", "es", "it", "nl"][loc];
    let reg = if r.chance(0.5) {
        REGIONS.iter().find(|x| x.code == native).unwrap()
    } else {
        r.pick_of(REGIONS)
    };
    let mut given = r.pick_of(reg.given).to_string();
    let mut family = r.pick_of(reg.family).to_string();
    match reg.code {
        "es" | "latam" if r.chance(0.4) => {
            let f2 = r.pick_of(reg.family);
            if *f2 != family {
                family = format!("{family} {f2}");
            }
        }
        "de" | "nl" | "fr" if r.chance(0.06) => {
            let f2 = r.pick_of(reg.family);
            if *f2 != family && !f2.contains(' ') && !family.contains(' ') {
                family = format!("{family}-{f2}");
            }
        }
        _ => {}
    }
    if matches!(reg.code, "en" | "de" | "nordic" | "slavic" | "it") && r.chance(0.08) {
        let g2 = r.pick_of(reg.given);
        if *g2 != given && !g2.contains('-') && !given.contains('-') {
            given = format!("{given} {g2}");
        }
    }
    let family_first = match reg.code {
        "vi" => true,
        "zh" => r.chance(0.5),
        "ko" => r.chance(0.4),
        "ja" => r.chance(0.2),
        _ => false,
    };
    Person {
        given,
        family,
        region: reg.code,
        family_first,
    }
}

/// ASCII folding for e-mail local parts.
pub fn fold(s: &str, german: bool) -> String {
    let mut out = String::new();
    for c in s.chars() {
        let rep: &str = match c {
            'ä' | 'Ä' if german => "ae",
            'ö' | 'Ö' if german => "oe",
            'ü' | 'Ü' if german => "ue",
            'ß' => "ss",
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ạ' | 'ả' | 'ấ' | 'ầ' | 'ẩ' | 'ẫ'
            | 'ậ' | 'ắ' | 'ằ' | 'ẳ' | 'ẵ' | 'ặ' | 'À' | 'Á' | 'Â' | 'Ä' | 'Å' | 'Ā' => {
                "a"
            }
            'æ' => "ae",
            'ç' | 'č' | 'ć' | 'Č' | 'Ç' => "c",
            'đ' | 'Đ' => "d",
            'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ě' | 'ệ' | 'ế' | 'ề' | 'ể' | 'ễ' | 'ẹ' | 'ẻ' | 'ẽ'
            | 'É' | 'È' | 'Ê' => "e",
            'ğ' => "g",
            'ì' | 'í' | 'î' | 'ï' | 'ı' | 'ī' | 'ị' | 'ỉ' | 'ĩ' | 'Í' | 'Î' | 'İ' => {
                "i"
            }
            'ł' | 'Ł' => "l",
            'ñ' | 'ń' | 'ň' => "n",
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ơ' | 'ọ' | 'ỏ' | 'ố' | 'ồ' | 'ổ' | 'ỗ'
            | 'ộ' | 'ớ' | 'ờ' | 'ở' | 'ỡ' | 'ợ' | 'Ö' | 'Ø' | 'Ó' | 'Ō' => "o",
            'ř' => "r",
            'ś' | 'š' | 'ş' | 'Š' | 'Ş' | 'Ś' => "s",
            'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ư' | 'ụ' | 'ủ' | 'ứ' | 'ừ' | 'ử' | 'ữ' | 'ự' | 'ů'
            | 'Ü' | 'Ú' => "u",
            'ý' | 'ỳ' | 'ỹ' | 'ỷ' | 'ỵ' => "y",
            'ž' | 'ź' | 'ż' | 'Ž' => "z",
            c if c.is_ascii_alphanumeric() => {
                out.push(c.to_ascii_lowercase());
                continue;
            }
            _ => "",
        };
        out.push_str(rep);
    }
    out
}

pub fn email_for(r: &mut Rng, p: &Person, loc: usize) -> String {
    let german = p.region == "de";
    let g = fold(p.given.split([' ', '-']).next().unwrap(), german);
    let fam_first_word = p
        .family
        .split(' ')
        .find(|w| !PARTICLES.contains(&w.to_lowercase().as_str()))
        .unwrap_or(&p.family);
    let f = if r.chance(0.5) {
        fold(&p.family, german)
    } else {
        fold(fam_first_word, german)
    };
    let domain = if r.chance(0.45) {
        r.pick_of(COMPANY_DOMAINS).to_string()
    } else {
        r.pick_of(FREEMAIL[loc]).to_string()
    };
    let local = match r.below(9) {
        0..=2 => format!("{g}.{f}"),
        3 => format!("{}.{f}", &g[..1.min(g.len())]),
        4 => format!("{g}{f}{}", r.range(1, 99)),
        5 => format!("{f}.{g}"),
        6 => format!("{g}_{f}{}", r.range(70, 2005)),
        7 => format!("{g}+{}", ["news", "shop", "work", "billing"][r.below(4)]),
        _ => format!("{}{f}", &g[..1.min(g.len())]),
    };
    let local = if local.starts_with('.') || local.is_empty() {
        format!("user{}", r.digits(4))
    } else {
        local
    };
    format!("{local}@{domain}")
}

pub fn random_email(r: &mut Rng, loc: usize) -> String {
    let p = person(r, loc);
    email_for(r, &p, loc)
}

// ---------------------------------------------------------------- phones

pub fn phone(r: &mut Rng, country: &str, mobile: bool) -> String {
    let d = |r: &mut Rng, n| r.digits(n);
    match country {
        "US" => {
            let a = format!("{}{}{}", r.range(2, 9), r.range(0, 8), r.below(10));
            let mut e = format!("{}{}", r.range(2, 9), d(r, 2));
            if e == "555" || e.ends_with("11") {
                e = "472".into();
            }
            let l = d(r, 4);
            match r.below(7) {
                0 => format!("+1 {a} {e} {l}"),
                1 => format!("({a}) {e}-{l}"),
                2 => format!("{a}-{e}-{l}"),
                3 => format!("{a}.{e}.{l}"),
                4 => format!("+1{a}{e}{l}"),
                5 => format!("+1 ({a}) {e}-{l}"),
                _ => format!("1-{a}-{e}-{l}"),
            }
        }
        "UK" => {
            if mobile {
                let n = format!("7{}{}", r.pick_of(&["4", "5", "7", "8", "9"]), d(r, 8));
                match r.below(3) {
                    0 => format!("0{} {}", &n[..4], &n[4..]),
                    1 => format!("+44 {} {}", &n[..4], &n[4..]),
                    _ => format!("+44{n}"),
                }
            } else {
                let n = format!("{}{}", r.pick_of(&["3", "7", "8"]), d(r, 7));
                match r.below(3) {
                    0 => format!("020 {} {}", &n[..4], &n[4..]),
                    1 => format!("+44 20 {} {}", &n[..4], &n[4..]),
                    _ => format!("+44 (0)20 {} {}", &n[..4], &n[4..]),
                }
            }
        }
        "DE" => {
            if mobile {
                let p = r
                    .pick_of(&[
                        "151", "152", "157", "160", "162", "170", "171", "172", "175", "176",
                        "178", "179",
                    ])
                    .to_string();
                let n = {
                    let k = r.range(7, 8);
                    d(r, k)
                };
                match r.below(5) {
                    0 => format!("+49 {p} {n}"),
                    1 => format!("0{p} {n}"),
                    2 => format!("0{p}/{n}"),
                    3 => format!("+49{p}{n}"),
                    _ => format!("0{p}-{}-{}", &n[..3], &n[3..]),
                }
            } else {
                let p = r
                    .pick_of(&["30", "40", "89", "69", "221", "711", "211", "341"])
                    .to_string();
                let n = format!("{}{}", r.range(2, 9), {
                    let k = r.range(5, 7);
                    d(r, k)
                });
                match r.below(6) {
                    0 => format!("+49 {p} {n}"),
                    1 => format!("0{p} {n}"),
                    2 => format!("(0{p}) {n}"),
                    3 => format!("+49 (0){p} {n}"),
                    4 => format!("0049 {p} {n}"),
                    _ => format!("0{p}-{n}"),
                }
            }
        }
        "FR" => {
            let first = if mobile { r.range(6, 7) } else { r.range(1, 5) };
            let g: Vec<String> = (0..4).map(|_| d(r, 2)).collect();
            match r.below(6) {
                0 => format!("+33 {first} {} {} {} {}", g[0], g[1], g[2], g[3]),
                1 => format!("0{first} {} {} {} {}", g[0], g[1], g[2], g[3]),
                2 => format!("0{first}.{}.{}.{}.{}", g[0], g[1], g[2], g[3]),
                3 => format!("0{first}{}{}{}{}", g[0], g[1], g[2], g[3]),
                4 => format!("+33 (0){first} {} {} {} {}", g[0], g[1], g[2], g[3]),
                _ => format!("+33{first}{}{}{}{}", g[0], g[1], g[2], g[3]),
            }
        }
        "ES" => {
            let n = if mobile {
                format!("{}{}", r.range(6, 7), d(r, 8))
            } else {
                format!("9{}{}", r.pick_of(&["1", "3", "6", "5"]), d(r, 7))
            };
            match r.below(5) {
                0 => format!("+34 {} {} {}", &n[..3], &n[3..6], &n[6..]),
                1 => format!("{} {} {}", &n[..3], &n[3..6], &n[6..]),
                2 => format!("{} {} {} {}", &n[..3], &n[3..5], &n[5..7], &n[7..]),
                3 => format!("+34{n}"),
                _ => format!("+34 {} {} {} {}", &n[..2], &n[2..5], &n[5..7], &n[7..]),
            }
        }
        "IT" => {
            if mobile {
                let n = format!(
                    "3{}{}",
                    r.pick_of(&["20", "28", "33", "35", "38", "40", "47", "49", "66", "91"]),
                    d(r, 7)
                );
                match r.below(4) {
                    0 => format!("+39 {} {} {}", &n[..3], &n[3..6], &n[6..]),
                    1 => format!("{} {} {}", &n[..3], &n[3..6], &n[6..]),
                    2 => format!("{} {}", &n[..3], &n[3..]),
                    _ => format!("+39 {n}"),
                }
            } else {
                let p = r.pick_of(&["02", "06", "011", "051", "055"]).to_string();
                let n = d(r, 8);
                match r.below(3) {
                    0 => format!("+39 {p} {} {}", &n[..4], &n[4..]),
                    1 => format!("{p} {} {}", &n[..4], &n[4..]),
                    _ => format!("{p}-{n}"),
                }
            }
        }
        "NL" => {
            if mobile {
                let n = d(r, 8);
                match r.below(4) {
                    0 => format!("+31 6 {n}"),
                    1 => format!("06-{n}"),
                    2 => format!("06 {} {}", &n[..4], &n[4..]),
                    _ => format!("+316{n}"),
                }
            } else {
                let p = r.pick_of(&["20", "10", "30", "70", "40"]).to_string();
                let n = format!("{}{}", r.range(2, 9), d(r, 6));
                match r.below(3) {
                    0 => format!("0{p}-{n}"),
                    1 => format!("+31 {p} {} {}", &n[..3], &n[3..]),
                    _ => format!("0{p} {} {}", &n[..3], &n[3..]),
                }
            }
        }
        "BE" => {
            if mobile {
                let p = format!("4{}{}", r.range(6, 9), r.below(10));
                let g: Vec<String> = (0..3).map(|_| d(r, 2)).collect();
                match r.below(3) {
                    0 => format!("+32 {p} {} {} {}", g[0], g[1], g[2]),
                    1 => format!("0{p} {} {} {}", g[0], g[1], g[2]),
                    _ => format!("0{p}/{}.{}.{}", g[0], g[1], g[2]),
                }
            } else {
                let n = format!("{}{} {} {}", r.range(2, 9), d(r, 2), d(r, 2), d(r, 2));
                if r.chance(0.5) {
                    format!("+32 2 {n}")
                } else {
                    format!("02 {n}")
                }
            }
        }
        "AT" => {
            if mobile {
                let p = r.pick_of(&["664", "676", "650", "660", "699"]).to_string();
                let n = d(r, 7);
                match r.below(3) {
                    0 => format!("+43 {p} {n}"),
                    1 => format!("0{p} {n}"),
                    _ => format!("+43 {p} {} {} {}", &n[..3], &n[3..5], &n[5..]),
                }
            } else {
                let n = format!("{}{}", r.range(2, 9), d(r, 6));
                if r.chance(0.5) {
                    format!("+43 1 {n}")
                } else {
                    format!("01 {n}")
                }
            }
        }
        _ => {
            // CH
            let p = if mobile {
                r.pick_of(&["76", "77", "78", "79"]).to_string()
            } else {
                r.pick_of(&["44", "43", "31", "61", "21", "22"]).to_string()
            };
            let n = format!("{}{} {} {}", r.range(2, 9), d(r, 2), d(r, 2), d(r, 2));
            match r.below(3) {
                0 => format!("+41 {p} {n}"),
                1 => format!("0{p} {n}"),
                _ => format!("+41{p}{}", n.replace(' ', "")),
            }
        }
    }
}

pub fn phone_country(r: &mut Rng, loc: usize) -> &'static str {
    if r.chance(0.1) {
        return *r.pick_of(&["US", "UK", "DE", "FR", "ES", "IT", "NL", "BE", "AT", "CH"]);
    }
    match loc {
        0 => *r.pick_of(&["US", "US", "UK"]),
        1 => *r.pick_of(&["DE", "DE", "DE", "AT", "CH"]),
        2 => *r.pick_of(&["FR", "FR", "FR", "BE", "CH"]),
        3 => "ES",
        4 => *r.pick_of(&["IT", "IT", "IT", "CH"]),
        _ => *r.pick_of(&["NL", "NL", "BE"]),
    }
}

// ---------------------------------------------------------------- finance, government

pub fn card(r: &mut Rng) -> String {
    let (prefix, len): (String, usize) = match r.below(8) {
        0..=2 => ("4".into(), 16),
        3 => (format!("5{}", r.range(1, 5)), 16),
        4 => (format!("{}", r.range(2221, 2720)), 16),
        5 => (if r.chance(0.5) { "34" } else { "37" }.into(), 15),
        6 => (
            if r.chance(0.5) {
                "6011".into()
            } else {
                format!("65{}", r.below(10))
            },
            16,
        ),
        _ => ("4".into(), 16),
    };
    let body = format!("{prefix}{}", r.digits(len - 1 - prefix.len()));
    let full = format!("{body}{}", luhn_digit(&body));
    let sep = *r.pick_of(&[" ", " ", "-", "", ""]);
    if len == 15 {
        [&full[..4], &full[4..10], &full[10..]].join(sep)
    } else {
        [&full[..4], &full[4..8], &full[8..12], &full[12..]].join(sep)
    }
}

/// 16 digits that look like a card but fail the Luhn check.
pub fn bad_luhn(r: &mut Rng) -> String {
    loop {
        let s = format!("{}{}", r.pick_of(&["4", "5", "6", "3"]), r.digits(15));
        if !luhn_ok(&s) {
            return s;
        }
    }
}

pub fn iban(r: &mut Rng, cc: &str) -> String {
    let bban = match cc {
        "DE" => r.digits(18),
        "FR" => format!("{}{}{}", r.digits(10), r.charset(UPNUM, 11), r.digits(2)),
        "ES" => r.digits(20),
        "IT" => format!(
            "{}{}{}",
            r.charset(UPPER, 1),
            r.digits(10),
            r.charset(UPNUM, 12)
        ),
        "NL" => format!(
            "{}{}",
            r.pick_of(&["ABNA", "INGB", "RABO", "SNSB", "TRIO", "KNAB"]),
            r.digits(10)
        ),
        "BE" => {
            let acct = r.digits(10);
            let mut chk = (acct.parse::<u64>().unwrap() % 97) as u32;
            if chk == 0 {
                chk = 97;
            }
            format!("{acct}{chk:02}")
        }
        "AT" => r.digits(16),
        "CH" => format!("{}{}", r.digits(5), r.charset(UPNUM, 12)),
        "GB" => format!(
            "{}{}",
            r.pick_of(&["NWBK", "BARC", "HBUK", "LOYD", "MIDL"]),
            r.digits(14)
        ),
        "LU" => format!("{}{}", r.digits(3), r.charset(UPNUM, 13)),
        "PL" => r.digits(24),
        "PT" => r.digits(21),
        _ => format!("{}{}", r.pick_of(&["AIBK", "BOFI"]), r.digits(14)), // IE
    };
    let m = mod97(&format!("{bban}{cc}00"));
    let compact = format!("{cc}{:02}{bban}", 98 - m);
    debug_assert!(iban_ok(&compact));
    if r.chance(0.6) {
        let chars: Vec<char> = compact.chars().collect();
        chars
            .chunks(4)
            .map(|c| c.iter().collect::<String>())
            .collect::<Vec<_>>()
            .join(" ")
    } else {
        compact
    }
}

pub fn iban_country(r: &mut Rng, loc: usize) -> &'static str {
    if r.chance(0.2) {
        return *r.pick_of(&[
            "DE", "FR", "ES", "IT", "NL", "BE", "AT", "CH", "GB", "LU", "PL", "PT", "IE",
        ]);
    }
    match loc {
        0 => *r.pick_of(&["GB", "IE"]),
        1 => *r.pick_of(&["DE", "DE", "AT", "CH"]),
        2 => *r.pick_of(&["FR", "FR", "BE", "LU"]),
        3 => "ES",
        4 => "IT",
        _ => *r.pick_of(&["NL", "NL", "BE"]),
    }
}

pub fn ssn(r: &mut Rng) -> String {
    let mut area = r.range(1, 899);
    if area == 666 {
        area = 667;
    }
    let group = r.range(1, 99);
    let serial = r.range(1, 9999);
    match r.below(10) {
        0 => format!("{area:03} {group:02} {serial:04}"),
        _ => format!("{area:03}-{group:02}-{serial:04}"),
    }
}

// ---------------------------------------------------------------- network

pub fn ipv4_public(r: &mut Rng) -> String {
    loop {
        let o = [r.range(1, 223), r.below(256), r.below(256), r.range(1, 254)];
        let private = o[0] == 10
            || o[0] == 127
            || (o[0] == 100 && (64..128).contains(&o[1]))
            || (o[0] == 169 && o[1] == 254)
            || (o[0] == 172 && (16..32).contains(&o[1]))
            || (o[0] == 192 && o[1] == 168)
            || (o[0] == 192 && o[1] == 0)
            || (o[0] == 198 && (18..20).contains(&o[1]))
            || (o[0] == 198 && o[1] == 51 && o[2] == 100)
            || (o[0] == 203 && o[1] == 0 && o[2] == 113);
        if !private {
            return format!("{}.{}.{}.{}", o[0], o[1], o[2], o[3]);
        }
    }
}

pub fn ipv6(r: &mut Rng) -> String {
    let prefix = *r.pick_of(&[
        "2a02", "2a01", "2600", "2001", "2406", "2a00", "2804", "2c0f",
    ]);
    let mut groups: Vec<String> = vec![prefix.to_string()];
    for _ in 0..7 {
        groups.push(format!("{:x}", r.below(0x10000)));
    }
    if prefix == "2001" && groups[1] == "db8" {
        groups[1] = "4860".into();
    }
    if r.chance(0.5) {
        // compressed: keep 3-4 leading groups, "::", one or two trailing groups
        let head = r.range(3, 4);
        let tail = r.range(1, 2);
        format!(
            "{}::{}",
            groups[..head].join(":"),
            groups[8 - tail..].join(":")
        )
    } else {
        groups.join(":")
    }
}

pub fn mac(r: &mut Rng) -> String {
    let b = r.bytes(6);
    let h: Vec<String> = b.iter().map(|x| format!("{x:02x}")).collect();
    match r.below(4) {
        0 => h.join(":"),
        1 => h.join(":").to_uppercase(),
        2 => h.join("-").to_uppercase(),
        _ => format!("{}{}.{}{}.{}{}", h[0], h[1], h[2], h[3], h[4], h[5]),
    }
}

// ---------------------------------------------------------------- secrets

pub const KEY_KINDS: &[&str] = &[
    "openai",
    "openai_svc",
    "openai_legacy",
    "anthropic",
    "github",
    "github_pat",
    "stripe",
    "slack",
    "google",
    "hf",
    "groq",
    "openrouter",
    "xai",
    "aws",
];

pub fn api_key(r: &mut Rng, kind: &str) -> String {
    match kind {
        "openai" => format!(
            "sk-proj-{}T3BlbkFJ{}",
            {
                let k = r.range(60, 74);
                r.charset(B64URL, k)
            },
            {
                let k = r.range(60, 74);
                r.charset(B64URL, k)
            }
        ),
        "openai_svc" => format!(
            "sk-svcacct-{}T3BlbkFJ{}",
            r.charset(B64URL, 74),
            r.charset(B64URL, 74)
        ),
        "openai_legacy" => format!(
            "sk-{}T3BlbkFJ{}",
            r.charset(ALNUM, 20),
            r.charset(ALNUM, 20)
        ),
        "anthropic" => format!("sk-ant-api03-{}AA", r.charset(B64URL, 93)),
        "github" => format!("ghp_{}", r.charset(ALNUM, 36)),
        "github_pat" => format!(
            "github_pat_11{}_{}",
            r.charset(UPNUM, 20),
            r.charset(ALNUM, 59)
        ),
        "stripe" => format!("sk_live_{}", {
            let k = if r.chance(0.5) { 24 } else { 99 };
            r.charset(ALNUM, k)
        }),
        "slack" => format!(
            "xoxb-{}-{}-{}",
            {
                let k = r.range(10, 12);
                r.digits_nz(k)
            },
            r.digits_nz(13),
            r.charset(ALNUM, 24)
        ),
        "google" => format!("AIza{}", r.charset(B64URL, 35)),
        "hf" => format!("hf_{}", r.charset(&ALNUM[..52], 34)),
        "groq" => format!("gsk_{}", r.charset(ALNUM, 52)),
        "openrouter" => format!("sk-or-v1-{}", r.charset(HEX, 64)),
        "xai" => format!("xai-{}", r.charset(ALNUM, 80)),
        _ => format!("AKIA{}", r.charset(B32, 16).replace('1', "7")),
    }
}

pub fn aws_secret(r: &mut Rng) -> String {
    r.charset(B64, 40)
}

pub fn jwt(r: &mut Rng) -> String {
    let header = b64(br#"{"alg":"HS256","typ":"JWT"}"#, true, false);
    let iat = 1_700_000_000 + r.below(60_000_000);
    let payload = format!(
        r#"{{"sub":"{}","iat":{iat},"exp":{},"scope":"{}","iss":"https://auth.{}"}}"#,
        {
            let k = r.range(6, 10);
            r.digits_nz(k)
        },
        iat + 3600,
        r.pick_of(&["read write", "admin", "chat:write", "openid profile email"]),
        r.pick_of(COMPANY_DOMAINS)
    );
    let sig = r.bytes(32);
    format!(
        "{header}.{}.{}",
        b64(payload.as_bytes(), true, false),
        b64(&sig, true, false)
    )
}

/// Returns (PEM block, first body line).
pub fn pem(r: &mut Rng) -> (String, String) {
    let (label, prefix, len) = match r.below(4) {
        0 => ("RSA PRIVATE KEY", "MIIEpAIBAAKCAQEA", 1588),
        1 => (
            "PRIVATE KEY",
            "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQ",
            1620,
        ),
        2 => ("EC PRIVATE KEY", "MHcCAQEEI", 220),
        _ => (
            "OPENSSH PRIVATE KEY",
            "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW",
            336,
        ),
    };
    let body = format!("{prefix}{}", r.charset(B64, len - prefix.len()));
    let lines: Vec<String> = body
        .as_bytes()
        .chunks(if label.starts_with("OPENSSH") { 70 } else { 64 })
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect();
    let first = lines[0].clone();
    (
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----",
            lines.join("\n")
        ),
        first,
    )
}

pub fn password(r: &mut Rng, url_safe: bool) -> String {
    if r.chance(0.3) {
        let w = *r.pick_of(&[
            "Sunshine", "Dragon", "Football", "Sommer", "Bonjour", "Verano", "Estate", "Zomer",
            "Welkom", "Kaffee", "Passwort", "Azerty", "Qwerty", "Hockey",
        ]);
        let sym = if url_safe {
            ""
        } else {
            *r.pick_of(&["!", "#", "$", "*", "?", ""])
        };
        format!("{w}{}{sym}", r.range(1970, 2025))
    } else {
        let cs: &[u8] = if url_safe {
            b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789-_."
        } else {
            b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789!#$%&*+-=?^_~"
        };
        let n = r.range(12, 22);
        let mut p = r.charset(cs, n);
        // make sure it mixes classes
        p.replace_range(0..1, &r.charset(UPPER, 1));
        p.replace_range(n - 1..n, &r.charset(DIGITS, 1));
        p
    }
}

pub fn bearer(r: &mut Rng) -> String {
    match r.below(4) {
        0 => format!("ya29.a0{}", {
            let k = r.range(120, 180);
            r.charset(B64URL, k)
        }),
        1 => {
            let k = r.range(32, 48);
            r.charset(ALNUM, k)
        }
        2 => format!("EAAG{}", {
            let k = r.range(150, 190);
            r.charset(ALNUM, k)
        }),
        _ => format!("at_{}", r.charset(B64URL, 40)),
    }
}

// ---------------------------------------------------------------- addresses, dates

pub fn street(r: &mut Rng, loc: usize) -> String {
    match loc {
        0 => {
            if r.chance(0.6) {
                let s = format!("{} {}", r.range(10, 9899), r.pick_of(US_STREETS));
                if r.chance(0.3) {
                    format!(
                        "{s}, Apt {}{}",
                        r.range(1, 30),
                        r.pick_of(&["", "A", "B", "C"])
                    )
                } else {
                    s
                }
            } else if r.chance(0.25) {
                format!(
                    "Flat {}, {} {}",
                    r.range(1, 20),
                    r.range(1, 200),
                    r.pick_of(UK_STREETS)
                )
            } else {
                format!(
                    "{}{} {}",
                    r.range(1, 240),
                    r.pick_of(&["", "", "", "A", "B"]),
                    r.pick_of(UK_STREETS)
                )
            }
        }
        1 => format!(
            "{} {}{}",
            r.pick_of(DE_STREETS),
            r.range(1, 180),
            r.pick_of(&["", "", "", "a", "b"])
        ),
        2 => {
            let n = r.range(1, 150);
            let bis = *r.pick_of(&["", "", "", " bis", " ter"]);
            if r.chance(0.3) {
                format!("{n}{bis}, {}", r.pick_of(FR_STREETS))
            } else {
                format!("{n}{bis} {}", r.pick_of(FR_STREETS))
            }
        }
        3 => {
            let s = r.pick_of(ES_STREETS).to_string();
            match r.below(3) {
                0 => format!(
                    "{s} {}, {}º {}",
                    r.range(1, 200),
                    r.range(1, 9),
                    r.pick_of(&["A", "B", "C", "D", "izda.", "dcha."])
                ),
                1 => format!("{s}, {}", r.range(1, 200)),
                _ => format!("{s} {}", r.range(1, 200)),
            }
        }
        4 => {
            let s = r.pick_of(IT_STREETS).to_string();
            if r.chance(0.4) {
                format!("{s}, {}", r.range(1, 200))
            } else {
                format!(
                    "{s} {}{}",
                    r.range(1, 200),
                    r.pick_of(&["", "", "/A", "/B"])
                )
            }
        }
        _ => format!(
            "{} {}{}",
            r.pick_of(NL_STREETS),
            r.range(1, 400),
            r.pick_of(&["", "", "A", "-2", " bis", "-III"])
        ),
    }
}

pub fn addr_town(r: &mut Rng, loc: usize) -> String {
    r.pick_of(ADDR_TOWNS[loc]).to_string()
}

/// A birth date in the locale's usual written form.
pub fn dob(r: &mut Rng, loc: usize) -> String {
    let y = r.range(1942, 2006);
    let m = r.range(1, 12);
    let d = r.range(1, 28);
    let month = MONTHS[loc][m - 1];
    match (loc, r.below(3)) {
        (0, 0) => format!("{m:02}/{d:02}/{y}"),
        (0, 1) => format!("{month} {d}, {y}"),
        (0, _) => format!("{d} {month} {y}"),
        (1, 0) | (1, 1) => format!("{d:02}.{m:02}.{y}"),
        (1, _) => format!("{d}. {month} {y}"),
        (2, 2) => format!("{d} {month} {y}"),
        (3, 2) => format!("{d} de {month} de {y}"),
        (4, 2) => format!("{d} {month} {y}"),
        (5, 0) => format!("{d:02}-{m:02}-{y}"),
        (5, 1) => format!("{d} {month} {y}"),
        (5, _) => format!("{d:02}-{m:02}-{y}"),
        _ => format!("{d:02}/{m:02}/{y}"),
    }
}

pub fn dob_iso(r: &mut Rng) -> String {
    format!(
        "{}-{:02}-{:02}",
        r.range(1942, 2006),
        r.range(1, 12),
        r.range(1, 28)
    )
}

// ---------------------------------------------------------------- look-alikes

pub fn uuid(r: &mut Rng) -> String {
    let h = r.charset(HEX, 32);
    format!(
        "{}-{}-4{}-{}{}-{}",
        &h[..8],
        &h[8..12],
        &h[13..16],
        r.pick_of(&["8", "9", "a", "b"]),
        &h[17..20],
        &h[20..]
    )
}

pub fn isbn13(r: &mut Rng) -> String {
    let body = format!("978{}{}", r.range(0, 3), r.digits(8));
    let sum: u32 = body
        .chars()
        .enumerate()
        .map(|(i, c)| (c as u32 - 48) * if i % 2 == 0 { 1 } else { 3 })
        .sum();
    let check = (10 - sum % 10) % 10;
    format!(
        "{}-{}-{}-{}-{check}",
        &body[..3],
        &body[3..4],
        &body[4..8],
        &body[8..]
    )
}

pub fn version(r: &mut Rng) -> String {
    format!("v{}.{}.{}", r.range(0, 12), r.range(0, 40), r.range(0, 20))
}

pub fn timestamp_iso(r: &mut Rng) -> String {
    format!(
        "2024-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        r.range(1, 12),
        r.range(1, 28),
        r.below(24),
        r.below(60),
        r.below(60)
    )
}

pub fn timestamp_log(r: &mut Rng) -> String {
    format!(
        "2024-{:02}-{:02} {:02}:{:02}:{:02},{:03}",
        r.range(1, 12),
        r.range(1, 28),
        r.below(24),
        r.below(60),
        r.below(60),
        r.below(1000)
    )
}

pub fn timestamp_dmy(r: &mut Rng) -> String {
    format!(
        "{:02}/{:02}/2024 {:02}:{:02}",
        r.range(1, 28),
        r.range(1, 12),
        r.below(24),
        r.below(60)
    )
}

pub fn release_date(r: &mut Rng, loc: usize) -> String {
    let m = r.range(1, 12);
    let d = r.range(1, 28);
    let y = r.range(2019, 2025);
    let month = MONTHS[loc][m - 1];
    match loc {
        0 => format!("{month} {d}, {y}"),
        1 => format!("{d:02}.{m:02}.{y}"),
        3 => format!("{d} de {month} de {y}"),
        5 => format!("{d} {month} {y}"),
        _ => format!("{d} {month} {y}"),
    }
}

pub fn data_url(r: &mut Rng) -> String {
    let len = r.range(200, 600) * 4;
    format!(
        "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAA{}",
        r.charset(B64, len)
    )
}
