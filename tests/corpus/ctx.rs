//! Per-item generation context: fills `⟦slot⟧` placeholders with generated values and
//! records the ground truth (PII to remove, look-alikes to keep).

use super::data::*;
use super::rng::*;
use super::values::*;

pub struct Ctx {
    pub r: Rng,
    pub loc: usize,
    pub pii: Vec<(&'static str, String)>,
    pub keep: Vec<String>,
    cache: Vec<(String, String)>,
    people: Vec<(usize, Person)>,
}

impl Ctx {
    pub fn new(seed: u64, loc: usize) -> Ctx {
        Ctx {
            r: Rng::new(seed),
            loc,
            pii: Vec::new(),
            keep: Vec::new(),
            cache: Vec::new(),
            people: Vec::new(),
        }
    }

    pub fn p(&mut self, entity: &'static str, v: impl Into<String>) -> String {
        let v = v.into();
        if !self.pii.iter().any(|(e, x)| *e == entity && *x == v) {
            self.pii.push((entity, v.clone()));
        }
        v
    }

    pub fn k(&mut self, v: impl Into<String>) -> String {
        let v = v.into();
        if !self.keep.contains(&v) {
            self.keep.push(v.clone());
        }
        v
    }

    pub fn person(&mut self, i: usize) -> Person {
        if let Some((_, p)) = self.people.iter().find(|(j, _)| *j == i) {
            return p.clone();
        }
        // avoid two people sharing a name word within one item (keeps the leak check exact)
        let mut p = person(&mut self.r, self.loc);
        for _ in 0..20 {
            let clash = self
                .people
                .iter()
                .any(|(_, q)| words_overlap(&q.full(), &p.full()));
            if !clash {
                break;
            }
            p = person(&mut self.r, self.loc);
        }
        self.people.push((i, p.clone()));
        p
    }

    /// Replace every `⟦slot⟧` in `tpl`; the same slot gets the same value within an item.
    pub fn fill(&mut self, tpl: &str) -> String {
        let mut out = String::with_capacity(tpl.len() + 64);
        let mut rest = tpl;
        while let Some(a) = rest.find('⟦') {
            out.push_str(&rest[..a]);
            let after = &rest[a + '⟦'.len_utf8()..];
            let b = after.find('⟧').expect("unclosed slot");
            let key = &after[..b];
            out.push_str(&self.slot(key));
            rest = &after[b + '⟧'.len_utf8()..];
        }
        out.push_str(rest);
        out
    }

    pub fn slot(&mut self, key: &str) -> String {
        if let Some((_, v)) = self.cache.iter().find(|(k, _)| k == key) {
            return v.clone();
        }
        if let Some(lit) = key.strip_prefix('=') {
            // a literal look-alike written in the template
            return self.k(lit);
        }
        let base = key.trim_end_matches(|c: char| c.is_ascii_digit());
        let idx: usize = key[base.len()..].parse().unwrap_or(1);
        let v = self.make(base, idx);
        self.cache.push((key.to_string(), v.clone()));
        v
    }

    fn make(&mut self, base: &str, idx: usize) -> String {
        let loc = self.loc;
        match base {
            // ---- people
            "name" => {
                let p = self.person(idx);
                self.p("PERSON", p.full())
            }
            "nameup" => {
                let p = self.person(idx);
                self.p("PERSON", p.upper())
            }
            "namerev" => {
                let p = self.person(idx);
                self.p("PERSON", p.rev())
            }
            "nameinit" => {
                let p = self.person(idx);
                self.p("PERSON", p.initial())
            }
            "nameany" => {
                let p = self.person(idx);
                let v = match self.r.weighted(&[60, 15, 15, 5]) {
                    0 => p.full(),
                    1 => p.upper(),
                    2 => p.rev(),
                    _ => p.initial(),
                };
                self.p("PERSON", v)
            }
            "given" => {
                let p = self.person(idx);
                self.p("PERSON", p.given)
            }
            "family" => {
                let p = self.person(idx);
                self.p("PERSON", p.family)
            }
            "email" => {
                let p = self.person(idx);
                let e = email_for(&mut self.r, &p, loc);
                self.p("EMAIL", e)
            }
            "xemail" => {
                let e = random_email(&mut self.r, loc);
                self.p("EMAIL", e)
            }
            // ---- contact, finance, government
            "phone" | "mobile" => {
                let c = phone_country(&mut self.r, loc);
                let mobile = base == "mobile" || self.r.chance(0.5);
                let v = phone(&mut self.r, c, mobile);
                self.p("PHONE", v)
            }
            "usphone" => {
                let v = phone(&mut self.r, "US", false);
                self.p("PHONE", v)
            }
            "iban" => {
                let c = iban_country(&mut self.r, loc);
                let v = iban(&mut self.r, c);
                self.p("IBAN", v)
            }
            "card" => {
                let v = card(&mut self.r);
                self.p("CREDIT_CARD", v)
            }
            "ssn" => {
                let v = ssn(&mut self.r);
                self.p("US_SSN", v)
            }
            "ip" => {
                let v = ipv4_public(&mut self.r);
                self.p("IP_ADDRESS", v)
            }
            "ipsix" => {
                let v = ipv6(&mut self.r);
                self.p("IP_ADDRESS", v)
            }
            "mac" => {
                let v = mac(&mut self.r);
                self.p("MAC_ADDRESS", v)
            }
            "addr" => {
                let v = street(&mut self.r, loc);
                self.p("STREET_ADDRESS", v)
            }
            "acity" => addr_town(&mut self.r, loc),
            "dob" => {
                let v = dob(&mut self.r, loc);
                self.p("DATE_OF_BIRTH", v)
            }
            "dobiso" => {
                let v = dob_iso(&mut self.r);
                self.p("DATE_OF_BIRTH", v)
            }
            // ---- secrets
            "pw" => {
                let v = password(&mut self.r, false);
                self.p("PASSWORD", v)
            }
            "pwurl" => {
                let v = password(&mut self.r, true);
                self.p("PASSWORD", v)
            }
            "bearer" => {
                let v = bearer(&mut self.r);
                self.p("BEARER_TOKEN", v)
            }
            "jwt" => {
                let v = jwt(&mut self.r);
                self.p("JWT", v)
            }
            "key" => {
                let kind = *self.r.pick_of(KEY_KINDS);
                let v = api_key(&mut self.r, kind);
                self.p("API_KEY", v)
            }
            "akia" => {
                let v = api_key(&mut self.r, "aws");
                self.p("API_KEY", v)
            }
            "awssecret" => {
                let v = aws_secret(&mut self.r);
                self.p("AWS_SECRET", v)
            }
            "pem" | "pemesc" => {
                let (block, first) = pem(&mut self.r);
                self.p("PRIVATE_KEY", first);
                if base == "pemesc" {
                    block.replace('\n', "\\n")
                } else {
                    block
                }
            }
            b if b.starts_with("key_") => {
                let v = api_key(&mut self.r, &b[4..]);
                self.p("API_KEY", v)
            }
            // ---- look-alikes (must survive)
            "uuid" => {
                let v = uuid(&mut self.r);
                self.k(v)
            }
            "sha" => {
                let v = self.r.charset(HEX, 40);
                self.k(v)
            }
            "shortsha" => {
                let v = self.r.charset(HEX, 7);
                self.k(v)
            }
            "digest" => {
                let v = self.r.charset(HEX, 64);
                self.k(v)
            }
            "traceid" => {
                let v = self.r.charset(HEX, 32);
                self.k(v)
            }
            "order" => {
                let v = match self.r.below(3) {
                    0 => format!("ORD-{}-{}", self.r.range(2019, 2025), self.r.digits(6)),
                    1 => format!("A{}", self.r.digits_nz(9)),
                    _ => format!(
                        "{}-{}-{}",
                        self.r.digits_nz(3),
                        self.r.digits(7),
                        self.r.digits(7)
                    ),
                };
                self.k(v)
            }
            "inv" => {
                let v = match self.r.below(3) {
                    0 => format!("INV-{}", self.r.digits_nz(5)),
                    1 => format!("RE-{}-{}", self.r.range(2020, 2025), self.r.digits(5)),
                    _ => format!("FA{}{}", self.r.range(2020, 2025), self.r.digits(6)),
                };
                self.k(v)
            }
            "hashorder" => {
                let v = format!("#{}", self.r.digits_nz(9));
                self.k(v)
            }
            "ticket" => {
                let v = format!(
                    "{}-{}",
                    self.r.pick_of(&["TCK", "SUP", "CS", "HD"]),
                    self.r.digits_nz(6)
                );
                self.k(v)
            }
            "badluhn" => {
                let v = bad_luhn(&mut self.r);
                self.k(v)
            }
            "ver" => {
                let v = version(&mut self.r);
                self.k(v)
            }
            "verquad" => {
                let v = format!(
                    "{}.{}.{}.{}",
                    self.r.range(1, 9),
                    self.r.range(0, 20),
                    self.r.range(0, 30),
                    self.r.range(0, 9999)
                );
                self.k(v)
            }
            "ts" => {
                let v = timestamp_iso(&mut self.r);
                self.k(v)
            }
            "tsdmy" => {
                let v = timestamp_dmy(&mut self.r);
                self.k(v)
            }
            "logts" => {
                let v = timestamp_log(&mut self.r);
                self.k(v)
            }
            "maildate" => {
                let v = format!(
                    "{}, {} {} 2024 {:02}:{:02}:{:02} {}",
                    self.r.pick_of(&["Mon", "Tue", "Wed", "Thu", "Fri"]),
                    self.r.range(1, 28),
                    self.r.pick_of(&[
                        "Jan", "Feb", "Mar", "Apr", "Jun", "Jul", "Sep", "Oct", "Nov"
                    ]),
                    self.r.below(24),
                    self.r.below(60),
                    self.r.below(60),
                    self.r.pick_of(&["+0100", "+0200", "-0500", "+0000"])
                );
                self.k(v)
            }
            "reldate" => {
                let v = release_date(&mut self.r, loc);
                self.k(v)
            }
            "epoch" => {
                let v = format!("{}", 1_700_000_000 + self.r.below(60_000_000));
                self.k(v)
            }
            "loopback" => {
                let v = match self.r.below(4) {
                    0 => format!(
                        "127.0.0.1:{}",
                        self.r.pick_of(&["8080", "8000", "5000", "9090"])
                    ),
                    1 => format!(
                        "localhost:{}",
                        self.r.pick_of(&["3000", "5173", "8080", "11434"])
                    ),
                    2 => format!("0.0.0.0:{}", self.r.pick_of(&["443", "8443", "8080"])),
                    _ => format!("[::1]:{}", self.r.pick_of(&["8080", "3000"])),
                };
                self.k(v)
            }
            "port" => {
                let v = format!(
                    "port {}",
                    self.r
                        .pick_of(&["8080", "5432", "6379", "3306", "27017", "9200"])
                );
                self.k(v)
            }
            "color" => {
                let cs: &[u8] = if self.r.chance(0.5) {
                    b"0123456789abcdef"
                } else {
                    b"0123456789ABCDEF"
                };
                let v = format!("#{}", self.r.charset(cs, 6));
                self.k(v)
            }
            "isbn" => {
                let v = isbn13(&mut self.r);
                self.k(v)
            }
            "city" => {
                let v = self.r.pick_of(KEEP_CITIES).to_string();
                self.k(v)
            }
            "product" => {
                let v = self.r.pick_of(PRODUCTS).to_string();
                self.k(v)
            }
            "month" => {
                let v = self.r.pick_of(MONTHS[loc]).to_string();
                self.k(v)
            }
            "dataurl" => {
                let v = data_url(&mut self.r);
                self.k(v)
            }
            "skword" => {
                let v = self
                    .r
                    .pick_of(&[
                        "sk-learn",
                        "risk-adjusted",
                        "task-runner",
                        "disk-usage",
                        "ask-me-anything",
                        "desk-booking",
                        "mask-rcnn",
                        "sk-datasets",
                    ])
                    .to_string();
                self.k(v)
            }
            "placeholder_key" => {
                let v = self
                    .r
                    .pick_of(&[
                        "sk-your-api-key-here",
                        "sk-...",
                        "YOUR_API_KEY",
                        "<your-api-key>",
                        "sk-ant-xxxxxxxx",
                        "ghp_xxxxxxxxxxxxxxxxxxxx",
                        "sk_test_your_key",
                    ])
                    .to_string();
                self.k(v)
            }
            "placeholder_email" => {
                let v = self
                    .r
                    .pick_of(&[
                        "user@example.com",
                        "you@example.com",
                        "jane.doe@example.org",
                        "admin@example.net",
                        "noreply@example.com",
                    ])
                    .to_string();
                self.k(v)
            }
            "docip" => {
                let v = format!(
                    "{}.{}",
                    self.r.pick_of(&["192.0.2", "198.51.100", "203.0.113"]),
                    self.r.range(1, 254)
                );
                self.k(v)
            }
            // ---- fillers (neither PII nor tracked look-alikes)
            "company" => self.r.pick_of(COMPANIES).to_string(),
            "domain" => self.r.pick_of(COMPANY_DOMAINS).to_string(),
            "title" => self.r.pick_of(JOB_TITLES).to_string(),
            "amount" => format!("{}.{:02}", self.r.range(5, 2500), self.r.below(100)),
            "app" => self
                .r
                .pick_of(&[
                    "billing-api",
                    "checkout",
                    "crm-sync",
                    "notifier",
                    "gateway",
                    "ledger",
                ])
                .to_string(),
            "dbuser" => self
                .r
                .pick_of(&[
                    "app",
                    "admin",
                    "postgres",
                    "svc_billing",
                    "root",
                    "readonly",
                ])
                .to_string(),
            "dbhost" => self
                .r
                .pick_of(&[
                    "db.internal",
                    "prod-db-1.cluster-cxyz.eu-west-1.rds.amazonaws.com",
                    "10.0.3.17",
                    "postgres",
                    "mysql.prod.svc",
                ])
                .to_string(),
            "db" => self
                .r
                .pick_of(&["app", "billing", "crm", "shop_prod"])
                .to_string(),
            "uid" => format!("{}", self.r.range(1000, 999999)),
            "prnum" => format!("{}", self.r.range(100, 9999)),
            "ms" => format!("{}", self.r.range(3, 4000)),
            "privip" => format!(
                "10.{}.{}.{}",
                self.r.below(256),
                self.r.below(256),
                self.r.range(2, 254)
            ),
            other => panic!("unknown slot {other}"),
        }
    }
}

/// Words of a name that the leak check looks at (>= 3 chars, not a particle).
pub fn name_words(name: &str) -> Vec<String> {
    name.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 3 && !PARTICLES.contains(&w.to_lowercase().as_str()))
        .map(|w| w.to_string())
        .collect()
}

fn words_overlap(a: &str, b: &str) -> bool {
    let wa = name_words(a);
    name_words(b)
        .iter()
        .any(|w| wa.iter().any(|x| x.to_lowercase() == w.to_lowercase()))
}
