//! Engine throughput, each case next to a plain memchr scan of the same bytes measured in
//! the same run (see benches/README.md).
//!
//! ```text
//! cargo bench --bench engine               # everything, then a ratio summary
//! cargo bench --bench engine -- prose_json # one case
//! ```
//!
//! Cases (all with the built-in filters and `Action::Redact`):
//! - `prose_json`: ~1 MB of clean English prose as the user message of an OpenAI
//!   chat-completions body, through `redact_bytes(.., Format::Json)`;
//! - `pii_json`: the same shape, one PII value (email, phone, card, IBAN, IP, API key, name)
//!   per ~200 bytes;
//! - `prose_text`: the ~1 MB message as plain text through `Redactor::redact_str`;
//! - `sse_stream`: a 50-event OpenAI chat-completions stream through
//!   `redact_bytes(.., Format::Sse)`;
//! - `chat_2k`: the proxy bench's ~2 KB chat-completions request (a name, an e-mail, a
//!   phone number and an IBAN in ~1.8 KB of prose) through `redact_bytes(.., Format::Json)`
//!   with `Action::Pseudonymize`: the per-request cost of the sidecar, also printed as µs
//!   per body.
//!
//! Every input is generated deterministically (no files); the generators check that the
//! prose really is clean and report how many planted values were found.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use veilgate::engine::{
    Action, Engine, Format, Key, Redactor, Session, redact_bytes, redact_bytes_with,
};

// ---------------------------------------------------------------------------------------
// Deterministic input generation
// ---------------------------------------------------------------------------------------

/// SplitMix64: tiny, dependency-free, the same stream everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
    fn digits(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b'0' + self.below(10) as u8))
            .collect()
    }
}

// Common English words only: no proper nouns, no capitalised words that are also given
// names, no digits. Sentences start with a fixed set of openers.
const OPENERS: &[&str] = &[
    "The",
    "This",
    "Our",
    "Each",
    "Every",
    "Some",
    "Most",
    "In general the",
    "After that the",
    "Sometimes the",
    "Usually the",
    "For this reason the",
    "On the other hand the",
    "Overall the",
];
const ADJECTIVES: &[&str] = &[
    "small",
    "large",
    "simple",
    "careful",
    "quiet",
    "useful",
    "modern",
    "common",
    "clear",
    "short",
    "long",
    "quick",
    "steady",
    "final",
    "early",
    "recent",
    "public",
    "local",
    "general",
    "important",
    "difficult",
    "possible",
    "different",
    "similar",
    "strong",
    "gentle",
    "bright",
];
const NOUNS: &[&str] = &[
    "team", "report", "system", "method", "question", "answer", "problem", "result", "process",
    "document", "meeting", "project", "garden", "kitchen", "window", "library", "village", "river",
    "morning", "evening", "student", "teacher", "service", "market", "request", "letter",
    "journey", "picture", "message", "decision", "example", "section", "feature", "change",
    "support", "record", "table", "window", "machine", "recipe", "schedule", "story",
];
const VERBS: &[&str] = &[
    "explains",
    "describes",
    "improves",
    "changes",
    "follows",
    "supports",
    "includes",
    "requires",
    "suggests",
    "reviews",
    "prepares",
    "shows",
    "needs",
    "covers",
    "builds",
    "checks",
    "finds",
    "keeps",
    "opens",
    "reaches",
    "shares",
    "solves",
    "starts",
    "turns",
];
const ADVERBS: &[&str] = &[
    "quickly",
    "carefully",
    "slowly",
    "clearly",
    "often",
    "rarely",
    "again",
    "together",
    "quietly",
    "easily",
    "directly",
    "finally",
    "usually",
    "gently",
    "mostly",
];
const TAILS: &[&str] = &[
    "before the end of the day",
    "without any further delay",
    "in a way that everyone can follow",
    "when the weather is good",
    "as long as nothing else changes",
    "so that the next step is easier",
    "and nobody seems to mind",
    "while the rest of the group waits",
    "because it makes the work lighter",
    "after a short break",
];

fn sentence(rng: &mut Rng, out: &mut String) {
    out.push_str(rng.pick(OPENERS));
    out.push(' ');
    out.push_str(rng.pick(ADJECTIVES));
    out.push(' ');
    out.push_str(rng.pick(NOUNS));
    out.push(' ');
    if rng.below(3) == 0 {
        out.push_str(rng.pick(ADVERBS));
        out.push(' ');
    }
    out.push_str(rng.pick(VERBS));
    out.push_str(" the ");
    out.push_str(rng.pick(ADJECTIVES));
    out.push(' ');
    out.push_str(rng.pick(NOUNS));
    if rng.below(2) == 0 {
        out.push(' ');
        out.push_str(rng.pick(TAILS));
    }
    out.push_str(match rng.below(8) {
        0 => "? ",
        1 => "; ",
        2 => ", ",
        _ => ". ",
    });
}

/// About `len` bytes of clean prose in paragraphs (`\n\n` every few sentences, so the
/// JSON string carries escapes like a real chat message).
fn prose(seed: u64, len: usize) -> String {
    let mut rng = Rng(seed);
    let mut s = String::with_capacity(len + 256);
    while s.len() < len {
        sentence(&mut rng, &mut s);
        if rng.below(6) == 0 {
            s.pop();
            s.push_str("\n\n");
        }
    }
    s
}

fn luhn_complete(partial: &str) -> String {
    // Compute the check digit that makes partial + d pass the Luhn test.
    let mut sum = 0;
    for (i, c) in partial.bytes().rev().enumerate() {
        let mut d = u32::from(c - b'0');
        if i % 2 == 0 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    format!("{partial}{}", (10 - sum % 10) % 10)
}

fn iban(rng: &mut Rng) -> String {
    // German IBAN: DEkk + 8-digit bank code + 10-digit account; check digits per ISO 13616.
    let bban = rng.digits(18);
    let rearranged = format!("{bban}131400"); // "DE" = 13 14, check digits "00"
    let rem = rearranged
        .bytes()
        .fold(0u32, |r, c| (r * 10 + u32::from(c - b'0')) % 97);
    let check = 98 - rem;
    let raw = format!("DE{check:02}{bban}");
    // Print in groups of four, as people write it.
    raw.as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join(" ")
}

const PERSONS: &[&str] = &[
    "Maria Garcia",
    "John Smith",
    "Emily Johnson",
    "Ahmed Hassan",
    "Sophie Martin",
    "Lukas Weber",
    "Priya Sharma",
    "Olivia Brown",
    "Daniel Fischer",
    "Chloe Dubois",
];
const MAIL_USERS: &[&str] = &[
    "jane.doe",
    "m.garcia",
    "john.smith",
    "olivia",
    "d.fischer",
    "priya.s",
];
const MAIL_HOSTS: &[&str] = &[
    "acme.io",
    "globex.com",
    "initech.net",
    "umbrella.org",
    "hooli.co",
];
const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// One PII value of kind `k % 7`.
fn pii(rng: &mut Rng, k: usize) -> String {
    match k % 7 {
        0 => format!(
            "{}{}@{}",
            rng.pick(MAIL_USERS),
            rng.below(100),
            rng.pick(MAIL_HOSTS)
        ),
        1 => {
            if rng.below(2) == 0 {
                format!("+1 617 {}-{}", 200 + rng.below(700), rng.digits(4))
            } else {
                format!("+49 30 {} {}", rng.digits(4), rng.digits(4))
            }
        }
        2 => {
            let n = luhn_complete(&format!("4{}", rng.digits(14)));
            format!("{} {} {} {}", &n[0..4], &n[4..8], &n[8..12], &n[12..16])
        }
        3 => iban(rng),
        4 => format!(
            "{}.{}.{}.{}",
            11 + rng.below(200),
            rng.below(256),
            rng.below(256),
            1 + rng.below(250)
        ),
        5 => {
            let body: String = (0..40)
                .map(|_| char::from(ALNUM[rng.below(ALNUM.len())]))
                .collect();
            if rng.below(2) == 0 {
                format!("sk-proj-{body}")
            } else {
                format!("ghp_{}", &body[..36])
            }
        }
        _ => rng.pick(PERSONS).to_string(),
    }
}

const LEADS: &[&str] = &[
    "please write to",
    "my number is",
    "charge the card",
    "send the money to",
    "the server at",
    "the key is",
    "I spoke with",
];

/// About `len` bytes of prose with one PII value about every 200 bytes.
fn pii_text(seed: u64, len: usize) -> (String, usize) {
    let mut rng = Rng(seed);
    let mut s = String::with_capacity(len + 256);
    let mut planted = 0;
    while s.len() < len {
        let target = s.len() + 160;
        while s.len() < target {
            sentence(&mut rng, &mut s);
        }
        let k = planted % 7;
        s.push_str(LEADS[k]);
        s.push(' ');
        s.push_str(&pii(&mut rng, k));
        s.push_str(". ");
        planted += 1;
    }
    (s, planted)
}

fn chat_body(content: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": content},
        ],
        "temperature": 0.2,
        "stream": false,
    }))
    .expect("serializable")
}

/// A 50-event chat-completions stream: role event, 47 content deltas (one e-mail address
/// split across two of them), a finish event, then `[DONE]`.
fn sse_stream() -> Vec<u8> {
    let mut rng = Rng(7);
    let mut out = String::new();
    let event = |out: &mut String, delta: serde_json::Value, finish: Option<&str>| {
        let chunk = serde_json::json!({
            "id": "chatcmpl-9xYzAbCdEfGhIjKlMnOpQrStUv",
            "object": "chat.completion.chunk",
            "created": 1_717_000_000,
            "model": "gpt-4o-mini-2024-07-18",
            "system_fingerprint": "fp_0123456789",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        });
        out.push_str("data: ");
        out.push_str(&chunk.to_string());
        out.push_str("\n\n");
    };
    event(
        &mut out,
        serde_json::json!({"role": "assistant", "content": ""}),
        None,
    );
    for i in 0..47 {
        let text = match i {
            20 => "you can write to jane.d".to_string(),
            21 => "oe@acme.io for details ".to_string(),
            _ => {
                let mut s = String::new();
                while s.len() < 40 {
                    s.push_str(rng.pick(NOUNS));
                    s.push(' ');
                }
                s
            }
        };
        event(&mut out, serde_json::json!({"content": text}), None);
    }
    event(&mut out, serde_json::json!({}), Some("stop"));
    out.push_str("data: [DONE]\n\n");
    out.into_bytes()
}

/// The proxy bench's request body (`benches/proxy.rs`, `chat_body(false)`): ~2 KB, one
/// name, e-mail, phone number and IBAN, then business prose.
fn chat_2k() -> Vec<u8> {
    const PROSE: &str = "The quarterly report shows steady growth in the northern region, driven by \
        renewed demand for the mid-range product line and a shorter delivery time. Costs rose \
        slightly because of freight, but margins held. The team suggests keeping the current \
        pricing until the next review and investing the surplus in support staff. ";
    let mut user = "Hello, I am Anna Kowalski (anna.kowalski@posteo.de, phone +49 30 12345678, \
                    IBAN DE89 3704 0044 0532 0130 00). Please summarise the following for my \
                    manager: "
        .to_string();
    while user.len() < 1800 {
        user.push_str(PROSE);
    }
    user.truncate(1800);
    serde_json::json!({
        "model": "gpt-4o",
        "temperature": 0.2,
        "messages": [
            {"role": "system", "content": "You are a concise business analyst. Answer in plain English."},
            {"role": "user", "content": user},
        ],
    })
    .to_string()
    .into_bytes()
}

// ---------------------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------------------

struct Case {
    name: &'static str,
    input: Vec<u8>,
    run: fn(&Redactor, &[u8]) -> usize,
    /// Runs with the pseudonymizing redactor instead of the redacting one.
    pseudonymize: bool,
}

fn memchr_scan(b: &[u8]) -> usize {
    memchr::memchr_iter(b'"', b).count()
}

fn run_json(r: &Redactor, b: &[u8]) -> usize {
    redact_bytes(r, b, Format::Json).expect("valid JSON").len()
}

fn run_text(r: &Redactor, b: &[u8]) -> usize {
    let text = std::str::from_utf8(b).expect("UTF-8");
    r.redact_str(text, &mut Session::default())
        .expect("no block action")
        .len()
}

fn run_sse(r: &Redactor, b: &[u8]) -> usize {
    redact_bytes(r, b, Format::Sse).expect("valid stream").len()
}

/// One proxied request: a fresh session per body, as the redact layer does.
fn run_request(r: &Redactor, b: &[u8]) -> usize {
    let mut session = Session::default();
    redact_bytes_with(r, b, Format::Json, &mut session)
        .expect("valid JSON")
        .len()
}

/// The redacting redactor of most cases and the pseudonymizing one of `chat_2k`.
struct Redactors {
    redact: Redactor,
    pseudonymize: Redactor,
}

impl Redactors {
    fn new() -> Redactors {
        let engine = Arc::new(Engine::builtin().expect("built-in filters compile"));
        let with = |action| {
            Redactor::new(engine.clone())
                .with_action(action)
                .with_key(Key::new(b"veilgate-bench-key-0123456789abc"))
        };
        Redactors {
            redact: with(Action::Redact),
            pseudonymize: with(Action::Pseudonymize),
        }
    }

    fn for_case(&self, case: &Case) -> &Redactor {
        if case.pseudonymize {
            &self.pseudonymize
        } else {
            &self.redact
        }
    }
}

fn cases(r: &Redactor) -> Vec<Case> {
    const MB: usize = 1 << 20;
    let clean = prose(1, MB);
    let dets = r.engine().detect(&clean);
    if !dets.is_empty() {
        let shown: Vec<_> = dets
            .iter()
            .take(10)
            .map(|d| (&*d.filter, &clean[d.start..d.end]))
            .collect();
        eprintln!(
            "warning: the clean prose has {} detections, e.g. {shown:?}",
            dets.len()
        );
    }
    let (dense, planted) = pii_text(2, MB);
    let found = r.engine().detect(&dense);
    let mut by_entity = std::collections::BTreeMap::<&str, usize>::new();
    for d in &found {
        *by_entity.entry(&d.entity).or_default() += 1;
    }
    eprintln!(
        "pii_json: {planted} values planted ({} bytes/value), {} detected: {by_entity:?}",
        dense.len() / planted.max(1),
        found.len()
    );
    vec![
        Case {
            name: "prose_json",
            input: chat_body(&clean),
            run: run_json,
            pseudonymize: false,
        },
        Case {
            name: "pii_json",
            input: chat_body(&dense),
            run: run_json,
            pseudonymize: false,
        },
        Case {
            name: "prose_text",
            input: clean.into_bytes(),
            run: run_text,
            pseudonymize: false,
        },
        Case {
            name: "sse_stream",
            input: sse_stream(),
            run: run_sse,
            pseudonymize: false,
        },
        Case {
            name: "chat_2k",
            input: chat_2k(),
            run: run_request,
            pseudonymize: true,
        },
    ]
}

fn bench(c: &mut Criterion, rs: &Redactors, cases: &[Case]) {
    for case in cases {
        let r = rs.for_case(case);
        let mut g = c.benchmark_group(case.name);
        g.throughput(Throughput::Bytes(case.input.len() as u64));
        g.bench_function("memchr", |b| b.iter(|| memchr_scan(black_box(&case.input))));
        g.bench_function("veilgate", |b| {
            b.iter(|| (case.run)(r, black_box(&case.input)))
        });
        g.finish();
    }
}

/// MB/s (10^6 bytes per second) of `f` over `bytes`, looping for about `budget`.
fn mbps(bytes: usize, budget: Duration, mut f: impl FnMut() -> usize) -> f64 {
    black_box(f()); // warm-up (and lazy caches)
    let start = Instant::now();
    let mut iters = 0u64;
    while start.elapsed() < budget || iters < 3 {
        black_box(f());
        iters += 1;
    }
    (bytes as f64 * iters as f64) / start.elapsed().as_secs_f64() / 1e6
}

/// One line per case: `name: veilgate X MB/s, memchr Y MB/s, ratio X/Y`.
fn ratio_summary(rs: &Redactors, cases: &[Case], filters: &[String]) {
    println!("\nratio summary (std::time::Instant loops, 1 s each, single thread):");
    for case in cases {
        // Criterion filters are substrings of `group/function`: `prose`, `pii_json/veilgate`.
        if !filters.is_empty()
            && !filters
                .iter()
                .any(|f| case.name.contains(f.as_str()) || f.starts_with(case.name))
        {
            continue;
        }
        let r = rs.for_case(case);
        let bytes = case.input.len();
        let base = mbps(bytes, Duration::from_secs(1), || {
            memchr_scan(black_box(&case.input))
        });
        let ours = mbps(bytes, Duration::from_secs(1), || {
            (case.run)(r, black_box(&case.input))
        });
        let extra = if case.name == "sse_stream" {
            let per_event_us = bytes as f64 / (ours * 1e6) * 1e6 / 50.0;
            format!(" ({per_event_us:.1} us/event, {bytes} bytes)")
        } else if case.name == "chat_2k" {
            let per_body_us = bytes as f64 / (ours * 1e6) * 1e6;
            format!(" ({per_body_us:.2} us/body, {bytes} bytes)")
        } else {
            format!(" ({bytes} bytes)")
        };
        println!(
            "{}: veilgate {ours:.1} MB/s, memchr {base:.1} MB/s, ratio {:.4}{extra}",
            case.name,
            ours / base
        );
    }
}

fn main() {
    let rs = Redactors::new();
    let cases = cases(&rs.redact);
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20)
        .configure_from_args();
    bench(&mut c, &rs, &cases);
    c.final_summary();
    // Criterion runs every benchmark once without timing unless `--bench` is given
    // (`cargo test --benches`); the summary is for real runs only.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--list") {
        let filters: Vec<String> = args.into_iter().filter(|a| !a.starts_with('-')).collect();
        ratio_summary(&rs, &cases, &filters);
    }
}
