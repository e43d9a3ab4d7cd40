//! Seeded, realistic detection-quality corpus for veilgate (std only).
//!
//! `generate(seed, n)` produces items of the kinds an AI gateway sees (tickets, e-mails,
//! CSV, logs, configs, code, git logs, meeting notes, forms, chat prose, OpenAI/Anthropic
//! JSON bodies, tool calls, SSE streams), each with its ground truth: the personal values
//! and secrets that must be removed (`pii`, exactly as they appear in the decoded text)
//! and look-alikes that must survive (`keep`).
#![allow(dead_code)]

pub mod ctx;
pub mod data;
pub mod rng;
pub mod templates;
pub mod values;
pub mod wire;

use ctx::{Ctx, name_words};
use rng::*;
use wire::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fmt {
    Text,
    Json,
    Sse,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    /// Template family.
    pub kind: &'static str,
    pub format: Fmt,
    pub input: String,
    /// (entity, value as it appears in the decoded text)
    pub pii: Vec<(&'static str, String)>,
    /// Look-alikes that must survive unchanged.
    pub keep: Vec<String>,
}

pub const ENTITIES: &[&str] = &[
    "EMAIL",
    "PHONE",
    "CREDIT_CARD",
    "IBAN",
    "US_SSN",
    "IP_ADDRESS",
    "MAC_ADDRESS",
    "API_KEY",
    "AWS_SECRET",
    "JWT",
    "PRIVATE_KEY",
    "PASSWORD",
    "BEARER_TOKEN",
    "PERSON",
    "STREET_ADDRESS",
    "DATE_OF_BIRTH",
];

/// Entities judged as "structured" (everything except names, addresses, birth dates).
pub fn is_structured(e: &str) -> bool {
    !matches!(e, "PERSON" | "STREET_ADDRESS" | "DATE_OF_BIRTH")
}

fn is_secret(e: &str) -> bool {
    matches!(
        e,
        "API_KEY" | "AWS_SECRET" | "JWT" | "PRIVATE_KEY" | "BEARER_TOKEN"
    )
}

pub const FAMILIES: &[(&str, u32)] = &[
    ("support_ticket", 12),
    ("email", 12),
    ("csv", 8),
    ("logs", 9),
    ("env_config", 8),
    ("code", 9),
    ("git_log", 5),
    ("attendees", 6),
    ("form", 7),
    ("chat", 8),
    ("json_records", 7),
    ("tool_call", 7),
    ("lookalike_only", 10),
];

pub fn generate(seed: u64, n: usize) -> Vec<Item> {
    let mut master = Rng::new(seed);
    let weights: Vec<u32> = FAMILIES.iter().map(|f| f.1).collect();
    (0..n)
        .map(|_| {
            let item_seed = master.next_u64();
            let loc = master.weighted(&[30, 14, 14, 14, 14, 14]);
            let fam = FAMILIES[master.weighted(&weights)].0;
            let mut c = Ctx::new(item_seed, loc);
            build(&mut c, fam)
        })
        .collect()
}

fn build(c: &mut Ctx, kind: &'static str) -> Item {
    // (text, json, sse) weights per family
    let (doc, w): (String, [u32; 3]) = match kind {
        "support_ticket" => {
            let t = *c.r.pick(templates::TICKETS[c.loc]);
            (c.fill(t), [40, 45, 15])
        }
        "email" => (templates::email(c), [40, 45, 15]),
        "csv" => (templates::csv(c), [50, 40, 10]),
        "logs" => (templates::logs(c), [50, 45, 5]),
        "env_config" => (templates::config_or_code(c, false), [50, 40, 10]),
        "code" => (templates::config_or_code(c, true), [50, 40, 10]),
        "git_log" => (templates::git_log(c), [60, 40, 0]),
        "attendees" => (templates::attendees(c), [40, 40, 20]),
        "form" => {
            let t = *c.r.pick(templates::FORMS[c.loc]);
            (c.fill(t), [50, 35, 15])
        }
        "chat" => {
            let t = *c.r.pick(templates::CHATS[c.loc]);
            (c.fill(t), [20, 60, 20])
        }
        "lookalike_only" => (templates::lookalike(c), [50, 35, 15]),
        "json_records" => {
            let r = json_records(c);
            return finish(c, kind, r);
        }
        "tool_call" => {
            let r = tool_call(c);
            return finish(c, kind, r);
        }
        other => panic!("unknown family {other}"),
    };
    let fmt = [Fmt::Text, Fmt::Json, Fmt::Sse][c.r.weighted(&w)];
    let input = match fmt {
        Fmt::Text => doc,
        Fmt::Json => match c.r.weighted(&[50, 40, 10]) {
            0 => openai_body(c, &doc),
            1 => anthropic_body(c, &doc),
            _ => embeddings_body(c, &doc),
        },
        Fmt::Sse => {
            let pre = *c.r.pick(&[
                "",
                "Here is the cleaned-up version:\n\n",
                "Sure! ",
                "Voici le texte :\n",
                "Hier ist der Entwurf:\n\n",
                "Claro, aquí está:\n",
            ]);
            let text = format!("{pre}{doc}");
            if c.r.chance(0.5) {
                sse_openai_text(c, &text)
            } else {
                sse_anthropic_text(c, &text)
            }
        }
    };
    finish(c, kind, (fmt, input))
}

fn finish(c: &mut Ctx, kind: &'static str, (format, input): (Fmt, String)) -> Item {
    let mut keep = std::mem::take(&mut c.keep);
    let pii = std::mem::take(&mut c.pii);
    // a look-alike inside (or containing) a personal value is not a pure look-alike
    keep.retain(|k| !pii.iter().any(|(_, v)| overlaps(k, v)));
    Item {
        kind,
        format,
        input,
        pii,
        keep,
    }
}

/// One string contains the other as a whole token.
fn overlaps(a: &str, b: &str) -> bool {
    count_word(a, b) > 0 || count_word(b, a) > 0
}

/// What a perfect redactor would output (used to test the judge itself): every personal
/// value replaced in the decoded text, wrapped back into the item's format.
pub fn oracle_output(item: &Item) -> Vec<u8> {
    let mut text = decoded(item.format, item.input.as_bytes()).expect("corpus input decodes");
    let mut vals: Vec<&(&str, String)> = item.pii.iter().collect();
    vals.sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
    for (e, v) in vals {
        let tag = format!("[{e}]");
        if *e == "PERSON" {
            text = replace_word(&text, v, &tag);
        } else {
            text = text.replace(v.as_str(), &tag);
        }
    }
    match item.format {
        Fmt::Text => text.into_bytes(),
        Fmt::Json => enc(&obj(vec![("t", s(text))]), Esc::Minimal, None).into_bytes(),
        Fmt::Sse => format!(
            "data: {}\n\ndata: [DONE]\n\n",
            enc(
                &obj(vec![(
                    "choices",
                    J::Arr(vec![obj(vec![
                        ("index", n(0)),
                        ("delta", obj(vec![("content", s(text))]))
                    ])])
                )]),
                Esc::Minimal,
                None
            )
        )
        .into_bytes(),
    }
}

fn replace_word(hay: &str, needle: &str, with: &str) -> String {
    let first = needle.chars().next().unwrap();
    let last = needle.chars().last().unwrap();
    let mut out = String::new();
    let mut pos = 0;
    for (i, _) in hay.match_indices(needle) {
        if i < pos {
            continue;
        }
        let before_ok = !is_word_char(first)
            || hay[..i]
                .chars()
                .next_back()
                .is_none_or(|c| !is_word_char(c));
        let after_ok = !is_word_char(last)
            || hay[i + needle.len()..]
                .chars()
                .next()
                .is_none_or(|c| !is_word_char(c));
        if before_ok && after_ok {
            out.push_str(&hay[pos..i]);
            out.push_str(with);
            pos = i + needle.len();
        }
    }
    out.push_str(&hay[pos..]);
    out
}

// ------------------------------------------------------------------ JSON wrappers

fn esc_mode(c: &mut Ctx) -> Esc {
    [Esc::Minimal, Esc::Ascii, Esc::Php, Esc::Go, Esc::At][c.r.weighted(&[45, 25, 8, 12, 10])]
}

fn pretty_mode(c: &mut Ctx) -> Option<usize> {
    [None, Some(0), Some(2)][c.r.weighted(&[50, 25, 25])]
}

fn encode(c: &mut Ctx, v: &J) -> String {
    let m = esc_mode(c);
    let p = pretty_mode(c);
    enc(v, m, p)
}

const INSTR: [&[&str]; 6] = [
    &[
        "Summarize the following:",
        "Extract the action items from this:",
        "Classify this ticket (billing / shipping / account):",
        "Fix the grammar, keep the facts:",
        "Translate into English:",
    ],
    &[
        "Fasse Folgendes zusammen:",
        "Antworte dem Kunden höflich:",
        "Extrahiere die Daten als JSON:",
    ],
    &[
        "Résume ce qui suit :",
        "Réponds au client poliment :",
        "Extrais les informations en JSON :",
    ],
    &[
        "Resume lo siguiente:",
        "Responde al cliente con amabilidad:",
        "Extrae los datos en JSON:",
    ],
    &[
        "Riassumi quanto segue:",
        "Rispondi al cliente in modo cortese:",
        "Estrai i dati in JSON:",
    ],
    &[
        "Vat het volgende samen:",
        "Beantwoord de klant vriendelijk:",
        "Haal de gegevens eruit als JSON:",
    ],
];

fn openai_body(c: &mut Ctx, doc: &str) -> String {
    let model =
        c.r.pick(&[
            "gpt-4o-mini",
            "gpt-4o",
            "gpt-4.1",
            "o3-mini",
            "gpt-4o-2024-08-06",
        ])
        .to_string();
    c.k(model.clone());
    let instr = c.r.pick(INSTR[c.loc]).to_string();
    let sys_t = *c.r.pick(&[
        "You are a helpful assistant.",
        "You are a support agent for ⟦company⟧. Answer briefly.",
        "You are a data-cleaning assistant. Never invent values.",
    ]);
    let sys = c.fill(sys_t);
    let msg = |role: &str, content: J| obj(vec![("role", s(role)), ("content", content)]);
    let messages = match c.r.below(4) {
        0 => vec![
            msg("system", s(sys)),
            msg("user", s(format!("{instr}\n\n{doc}"))),
        ],
        1 => vec![msg(
            "user",
            J::Arr(vec![
                obj(vec![("type", s("text")), ("text", s(instr))]),
                obj(vec![("type", s("text")), ("text", s(doc))]),
            ]),
        )],
        2 => {
            let url = c.slot("dataurl");
            vec![msg(
                "user",
                J::Arr(vec![
                    obj(vec![
                        ("type", s("text")),
                        ("text", s(format!("{instr}\n{doc}"))),
                    ]),
                    obj(vec![
                        ("type", s("image_url")),
                        (
                            "image_url",
                            obj(vec![("url", s(url)), ("detail", s("low"))]),
                        ),
                    ]),
                ]),
            )]
        }
        _ => vec![
            msg("system", s(sys)),
            msg("user", s(doc)),
            msg(
                "assistant",
                s("Sure — what would you like me to do with it?"),
            ),
            msg("user", s(instr)),
        ],
    };
    let mut kv = vec![
        ("model", s(model)),
        ("messages", J::Arr(messages)),
        ("temperature", n("0.2")),
    ];
    if c.r.chance(0.3) {
        kv.push(("stream", J::Bool(false)));
    }
    if c.r.chance(0.1) {
        let e = c.slot("xemail9");
        kv.push(("user", s(e)));
    }
    if c.r.chance(0.2) {
        let u = c.slot("uuid9");
        kv.push(("metadata", obj(vec![("request_id", s(u))])));
    }
    let body = obj(kv);
    encode(c, &body)
}

fn anthropic_body(c: &mut Ctx, doc: &str) -> String {
    let model =
        c.r.pick(&[
            "claude-sonnet-4-5-20250929",
            "claude-3-5-sonnet-20241022",
            "claude-3-5-haiku-20241022",
            "claude-opus-4-1",
        ])
        .to_string();
    c.k(model.clone());
    let instr = c.r.pick(INSTR[c.loc]).to_string();
    let mut kv = vec![("model", s(model)), ("max_tokens", n(1024))];
    match c.r.below(3) {
        0 => {
            kv.push((
                "system",
                s("You are a careful assistant for a customer-support team."),
            ));
            let content = if c.r.chance(0.3) {
                let url = c.slot("dataurl");
                let data = url.split_once(',').unwrap().1.to_string();
                c.keep.retain(|k| *k != url);
                c.k(data.clone());
                J::Arr(vec![
                    obj(vec![
                        ("type", s("image")),
                        (
                            "source",
                            obj(vec![
                                ("type", s("base64")),
                                ("media_type", s("image/png")),
                                ("data", s(data)),
                            ]),
                        ),
                    ]),
                    obj(vec![
                        ("type", s("text")),
                        ("text", s(format!("{instr}\n\n{doc}"))),
                    ]),
                ])
            } else {
                s(format!("{instr}\n\n{doc}"))
            };
            kv.push((
                "messages",
                J::Arr(vec![obj(vec![("role", s("user")), ("content", content)])]),
            ));
        }
        1 => {
            kv.push((
                "system",
                J::Arr(vec![obj(vec![
                    ("type", s("text")),
                    ("text", s(format!("Context about the customer:\n{doc}"))),
                    ("cache_control", obj(vec![("type", s("ephemeral"))])),
                ])]),
            ));
            kv.push((
                "messages",
                J::Arr(vec![obj(vec![("role", s("user")), ("content", s(instr))])]),
            ));
        }
        _ => {
            let order = c.slot("order9");
            let id = format!("toolu_01{}", c.r.charset(ALNUM, 22));
            let result = if c.r.chance(0.5) {
                s(doc)
            } else {
                J::Arr(vec![obj(vec![("type", s("text")), ("text", s(doc))])])
            };
            kv.push(("system", s("Use the tools to look up customers.")));
            kv.push((
                "messages",
                J::Arr(vec![
                    obj(vec![
                        ("role", s("user")),
                        (
                            "content",
                            s(format!("Look up the customer for order {order}")),
                        ),
                    ]),
                    obj(vec![
                        ("role", s("assistant")),
                        (
                            "content",
                            J::Arr(vec![
                                obj(vec![
                                    ("type", s("text")),
                                    ("text", s("Let me look that up.")),
                                ]),
                                obj(vec![
                                    ("type", s("tool_use")),
                                    ("id", s(id.clone())),
                                    ("name", s("lookup_customer")),
                                    ("input", obj(vec![("order_id", s(order))])),
                                ]),
                            ]),
                        ),
                    ]),
                    obj(vec![
                        ("role", s("user")),
                        (
                            "content",
                            J::Arr(vec![obj(vec![
                                ("type", s("tool_result")),
                                ("tool_use_id", s(id)),
                                ("content", result),
                            ])]),
                        ),
                    ]),
                ]),
            ));
        }
    }
    if c.r.chance(0.1) {
        let e = c.slot("xemail9");
        kv.push(("metadata", obj(vec![("user_id", s(e))])));
    }
    let body = obj(kv);
    encode(c, &body)
}

fn embeddings_body(c: &mut Ctx, doc: &str) -> String {
    let lines: Vec<&str> = doc.lines().filter(|l| !l.trim().is_empty()).collect();
    let all_inside = c
        .pii
        .iter()
        .all(|(_, v)| lines.iter().any(|l| l.contains(v.as_str())))
        && c.keep
            .iter()
            .all(|k| lines.iter().any(|l| l.contains(k.as_str())));
    let input = if all_inside && lines.len() > 1 {
        J::Arr(lines.iter().map(|l| s(*l)).collect())
    } else {
        s(doc)
    };
    let body = obj(vec![
        ("model", s("text-embedding-3-small")),
        ("input", input),
        ("encoding_format", s("float")),
    ]);
    encode(c, &body)
}

// ------------------------------------------------------------------ SSE wrappers

/// Chunk boundaries (byte offsets) for `text`: token-sized pieces, with a cut strictly
/// inside every occurrence of every personal value.
fn chunks(c: &mut Ctx, text: &str) -> Vec<String> {
    let idx: Vec<usize> = text
        .char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(text.len()))
        .collect();
    let nchars = idx.len() - 1;
    let mut cuts = std::collections::BTreeSet::new();
    let mut p = 0;
    while p < nchars {
        p += c.r.range(1, 9);
        if p < nchars {
            cuts.insert(p);
        }
    }
    // every occurrence of every personal value gets at least one interior cut
    let vals: Vec<String> = c.pii.iter().map(|(_, v)| v.clone()).collect();
    for v in &vals {
        let vlen = v.chars().count();
        if vlen < 2 {
            continue;
        }
        for (b, _) in text.match_indices(v.as_str()) {
            let start = idx.binary_search(&b).unwrap();
            if !(start + 1..start + vlen).any(|q| cuts.contains(&q)) {
                cuts.insert(start + c.r.range(1, vlen - 1));
            }
        }
    }
    let mut out = Vec::new();
    let mut last = 0;
    for q in cuts {
        out.push(text[idx[last]..idx[q]].to_string());
        last = q;
    }
    out.push(text[idx[last]..].to_string());
    out
}

fn sse_esc(c: &mut Ctx) -> Esc {
    // Python servers (LiteLLM, vLLM) emit ensure_ascii JSON; others minimal.
    if c.r.chance(0.3) {
        Esc::Ascii
    } else {
        Esc::Minimal
    }
}

fn sse_openai_text(c: &mut Ctx, text: &str) -> String {
    let pieces = chunks(c, text);
    sse_openai(c, pieces, None)
}

fn sse_openai(c: &mut Ctx, pieces: Vec<String>, tool: Option<&str>) -> String {
    let m = sse_esc(c);
    let id = format!("chatcmpl-{}", c.r.charset(ALNUM, 29));
    let created = 1_710_000_000 + c.r.below(40_000_000);
    let model = *c.r.pick(&[
        "gpt-4o-mini-2024-07-18",
        "gpt-4o-2024-08-06",
        "meta-llama/llama-3.1-70b-instruct",
        "grok-2-1212",
    ]);
    let fp = format!("fp_{}", c.r.charset(HEX, 10));
    let crlf = c.r.chance(0.1);
    let comments = c.r.chance(0.15);
    let chunk = |delta: J, finish: J| {
        obj(vec![
            ("id", s(id.clone())),
            ("object", s("chat.completion.chunk")),
            ("created", n(created)),
            ("model", s(model)),
            ("system_fingerprint", s(fp.clone())),
            (
                "choices",
                J::Arr(vec![obj(vec![
                    ("index", n(0)),
                    ("delta", delta),
                    ("logprobs", J::Null),
                    ("finish_reason", finish),
                ])]),
            ),
        ])
    };
    let mut evs: Vec<String> = Vec::new();
    let call_id = format!("call_{}", c.r.charset(ALNUM, 24));
    match tool {
        None => evs.push(enc(
            &chunk(
                obj(vec![("role", s("assistant")), ("content", s(""))]),
                J::Null,
            ),
            m,
            None,
        )),
        Some(name) => evs.push(enc(
            &chunk(
                obj(vec![
                    ("role", s("assistant")),
                    ("content", J::Null),
                    (
                        "tool_calls",
                        J::Arr(vec![obj(vec![
                            ("index", n(0)),
                            ("id", s(call_id.clone())),
                            ("type", s("function")),
                            (
                                "function",
                                obj(vec![("name", s(name)), ("arguments", s(""))]),
                            ),
                        ])]),
                    ),
                ]),
                J::Null,
            ),
            m,
            None,
        )),
    }
    for p in pieces {
        let delta = match tool {
            None => obj(vec![("content", s(p))]),
            Some(_) => obj(vec![(
                "tool_calls",
                J::Arr(vec![obj(vec![
                    ("index", n(0)),
                    ("function", obj(vec![("arguments", s(p))])),
                ])]),
            )]),
        };
        evs.push(enc(&chunk(delta, J::Null), m, None));
    }
    evs.push(enc(
        &chunk(
            obj(vec![]),
            s(if tool.is_some() { "tool_calls" } else { "stop" }),
        ),
        m,
        None,
    ));
    let nl = if crlf { "\r\n" } else { "\n" };
    let mut out = String::new();
    for (i, e) in evs.iter().enumerate() {
        if comments && i == 1 {
            out.push_str(&format!(": OPENROUTER PROCESSING{nl}{nl}"));
        }
        out.push_str(&format!("data: {e}{nl}{nl}"));
    }
    out.push_str(&format!("data: [DONE]{nl}{nl}"));
    out
}

fn sse_anthropic_text(c: &mut Ctx, text: &str) -> String {
    let pieces = chunks(c, text);
    sse_anthropic(c, pieces, None)
}

fn sse_anthropic(c: &mut Ctx, pieces: Vec<String>, tool: Option<&str>) -> String {
    let m = sse_esc(c);
    let msg_id = format!("msg_01{}", c.r.charset(ALNUM, 22));
    let model =
        *c.r.pick(&["claude-sonnet-4-5-20250929", "claude-3-5-haiku-20241022"]);
    let mut evs: Vec<(&str, J)> = Vec::new();
    evs.push((
        "message_start",
        obj(vec![
            ("type", s("message_start")),
            (
                "message",
                obj(vec![
                    ("id", s(msg_id)),
                    ("type", s("message")),
                    ("role", s("assistant")),
                    ("model", s(model)),
                    ("content", J::Arr(vec![])),
                    ("stop_reason", J::Null),
                    ("stop_sequence", J::Null),
                    (
                        "usage",
                        obj(vec![
                            ("input_tokens", n(c.r.range(20, 900))),
                            ("output_tokens", n(1)),
                        ]),
                    ),
                ]),
            ),
        ]),
    ));
    let mut index = 0;
    if tool.is_some() {
        evs.push((
            "content_block_start",
            obj(vec![
                ("type", s("content_block_start")),
                ("index", n(0)),
                (
                    "content_block",
                    obj(vec![("type", s("text")), ("text", s(""))]),
                ),
            ]),
        ));
        evs.push((
            "content_block_delta",
            obj(vec![
                ("type", s("content_block_delta")),
                ("index", n(0)),
                (
                    "delta",
                    obj(vec![
                        ("type", s("text_delta")),
                        ("text", s("I'll take care of that now.")),
                    ]),
                ),
            ]),
        ));
        evs.push((
            "content_block_stop",
            obj(vec![("type", s("content_block_stop")), ("index", n(0))]),
        ));
        index = 1;
    }
    let block = match tool {
        None => obj(vec![("type", s("text")), ("text", s(""))]),
        Some(name) => obj(vec![
            ("type", s("tool_use")),
            ("id", s(format!("toolu_01{}", c.r.charset(ALNUM, 22)))),
            ("name", s(name)),
            ("input", obj(vec![])),
        ]),
    };
    evs.push((
        "content_block_start",
        obj(vec![
            ("type", s("content_block_start")),
            ("index", n(index)),
            ("content_block", block),
        ]),
    ));
    evs.push(("ping", obj(vec![("type", s("ping"))])));
    for p in pieces {
        let delta = match tool {
            None => obj(vec![("type", s("text_delta")), ("text", s(p))]),
            Some(_) => obj(vec![
                ("type", s("input_json_delta")),
                ("partial_json", s(p)),
            ]),
        };
        evs.push((
            "content_block_delta",
            obj(vec![
                ("type", s("content_block_delta")),
                ("index", n(index)),
                ("delta", delta),
            ]),
        ));
    }
    evs.push((
        "content_block_stop",
        obj(vec![("type", s("content_block_stop")), ("index", n(index))]),
    ));
    evs.push((
        "message_delta",
        obj(vec![
            ("type", s("message_delta")),
            (
                "delta",
                obj(vec![
                    (
                        "stop_reason",
                        s(if tool.is_some() {
                            "tool_use"
                        } else {
                            "end_turn"
                        }),
                    ),
                    ("stop_sequence", J::Null),
                ]),
            ),
            ("usage", obj(vec![("output_tokens", n(c.r.range(20, 900)))])),
        ]),
    ));
    evs.push(("message_stop", obj(vec![("type", s("message_stop"))])));
    let mut out = String::new();
    for (name, v) in evs {
        out.push_str(&format!("event: {name}\ndata: {}\n\n", enc(&v, m, None)));
    }
    out
}

// ------------------------------------------------------------------ JSON records

fn json_records(c: &mut Ctx) -> (Fmt, String) {
    let n_rec = c.r.range(2, 5);
    let name_key = *c.r.pick(&[
        "full_name",
        "name",
        "customerName",
        "fullName",
        "contact",
        "split",
    ]);
    let with = |c: &mut Ctx, p: f64| c.r.chance(p);
    let (f_phone, f_dob, f_addr, f_iban, f_ip) = (
        with(c, 0.7),
        with(c, 0.5),
        with(c, 0.5),
        with(c, 0.35),
        with(c, 0.2),
    );
    let f_ssn = c.loc == 0 && c.r.chance(0.4);
    let dob_key = *c.r.pick(&[
        "date_of_birth",
        "dob",
        "birthdate",
        "birthDate",
        "geburtsdatum",
    ]);
    let mut recs = Vec::new();
    for i in 1..=n_rec {
        let mut kv: Vec<(&str, J)> = vec![("id", n(c.r.range(1000, 99999)))];
        if name_key == "split" {
            kv.push(("first_name", s(c.slot(&format!("given{i}")))));
            kv.push(("last_name", s(c.slot(&format!("family{i}")))));
        } else {
            kv.push((name_key, s(c.slot(&format!("nameany{i}")))));
        }
        kv.push(("email", s(c.slot(&format!("email{i}")))));
        if f_phone {
            kv.push(("phone", s(c.slot(&format!("phone{i}")))));
        }
        if f_dob {
            kv.push((dob_key, s(c.slot(&format!("dobiso{i}")))));
        }
        if f_addr {
            kv.push((
                "address",
                obj(vec![
                    ("street", s(c.slot(&format!("addr{i}")))),
                    ("city", s(c.slot(&format!("acity{i}")))),
                ]),
            ));
        }
        if f_iban {
            kv.push(("iban", s(c.slot(&format!("iban{i}")))));
        }
        if f_ssn {
            kv.push(("ssn", s(c.slot(&format!("ssn{i}")))));
        }
        if f_ip {
            kv.push(("last_login_ip", s(c.slot(&format!("ip{i}")))));
        }
        kv.push(("customer_since", s(c.slot(&format!("ts{i}")))));
        kv.push(("last_order", s(c.slot(&format!("order{i}")))));
        recs.push(obj(kv));
    }
    let records = J::Arr(recs);
    let inner = enc(
        &records,
        Esc::Minimal,
        [None, Some(0), Some(2)][c.r.below(3)],
    );
    match c.r.below(3) {
        0 => {
            let call = format!("call_{}", c.r.charset(ALNUM, 24));
            let args = enc(
                &obj(vec![(
                    "sql",
                    s("SELECT * FROM customers ORDER BY created_at DESC LIMIT 5"),
                )]),
                Esc::Minimal,
                None,
            );
            let body = obj(vec![
                ("model", s("gpt-4o")),
                (
                    "messages",
                    J::Arr(vec![
                        obj(vec![
                            ("role", s("user")),
                            ("content", s("Who are our newest customers?")),
                        ]),
                        obj(vec![
                            ("role", s("assistant")),
                            ("content", J::Null),
                            (
                                "tool_calls",
                                J::Arr(vec![obj(vec![
                                    ("id", s(call.clone())),
                                    ("type", s("function")),
                                    (
                                        "function",
                                        obj(vec![("name", s("query_db")), ("arguments", s(args))]),
                                    ),
                                ])]),
                            ),
                        ]),
                        obj(vec![
                            ("role", s("tool")),
                            ("tool_call_id", s(call)),
                            ("content", s(inner)),
                        ]),
                    ]),
                ),
            ]);
            c.k("gpt-4o");
            (Fmt::Json, encode(c, &body))
        }
        1 => {
            let id = format!("toolu_01{}", c.r.charset(ALNUM, 22));
            let body = obj(vec![
                ("model", s("claude-sonnet-4-5-20250929")),
                ("max_tokens", n(2048)),
                (
                    "messages",
                    J::Arr(vec![
                        obj(vec![
                            ("role", s("user")),
                            ("content", s("List the newest customers.")),
                        ]),
                        obj(vec![
                            ("role", s("assistant")),
                            (
                                "content",
                                J::Arr(vec![obj(vec![
                                    ("type", s("tool_use")),
                                    ("id", s(id.clone())),
                                    ("name", s("query_db")),
                                    ("input", obj(vec![("limit", n(5))])),
                                ])]),
                            ),
                        ]),
                        obj(vec![
                            ("role", s("user")),
                            (
                                "content",
                                J::Arr(vec![obj(vec![
                                    ("type", s("tool_result")),
                                    ("tool_use_id", s(id)),
                                    ("content", s(inner)),
                                ])]),
                            ),
                        ]),
                    ]),
                ),
            ]);
            c.k("claude-sonnet-4-5-20250929");
            (Fmt::Json, encode(c, &body))
        }
        _ => (
            Fmt::Text,
            format!(
                "{}\n{inner}",
                c.r.pick(&[
                    "Here's the JSON export:",
                    "Convert this to CSV:",
                    "Validate these records:",
                    "Dedupliziere diese Datensätze:"
                ])
            ),
        ),
    }
}

// ------------------------------------------------------------------ tool calls

fn tool_call(c: &mut Ctx) -> (Fmt, String) {
    let (name, args, ask): (&str, J, &str) = match c.r.below(6) {
        0 => {
            let hi = *c.r.pick(&["Hi", "Hallo", "Bonjour", "Hola", "Ciao", "Hoi"]);
            let bye = *c.r.pick(&["Best", "Grüße", "Cordialement", "Saludos", "Saluti", "Groet"]);
            let body = c.fill(&format!("{hi} ⟦given2⟧,\n\nplease find invoice ⟦inv⟧ attached. Payment to ⟦iban⟧.\n\n{bye}\n⟦name⟧"));
            let mut kv = vec![("to", s(c.slot("email2"))), ("subject", s(c.fill("Invoice ⟦inv⟧"))), ("body", s(body))];
            if c.r.chance(0.3) {
                kv.insert(1, ("cc", J::Arr(vec![s(c.slot("xemail"))])));
            }
            ("send_email", obj(kv), "Email the invoice to the customer.")
        }
        1 => {
            let mut kv = vec![("name", s(c.slot("nameany"))), ("email", s(c.slot("email"))), ("phone", s(c.slot("phone")))];
            if c.r.chance(0.6) {
                kv.push(("address", s(c.fill("⟦addr⟧, ⟦acity⟧"))));
            }
            if c.r.chance(0.5) {
                kv.push(("birthday", s(c.slot("dobiso"))));
            }
            ("create_contact", obj(kv), "Add this person to the CRM.")
        }
        2 => {
            let card = c.slot("card");
            ("charge_card", obj(vec![("card_number", s(card)), ("amount", n(c.slot("amount"))), ("currency", s("EUR")), ("order_id", s(c.slot("order")))]), "Charge the customer for the order.")
        }
        3 => ("wire_transfer", obj(vec![("iban", s(c.slot("iban"))), ("beneficiary", s(c.slot("name"))), ("reference", s(c.slot("inv"))), ("amount", n(c.slot("amount")))]), "Pay the supplier invoice."),
        4 => ("run_sql", obj(vec![("query", s(c.fill("SELECT id, plan FROM users WHERE email = '⟦xemail⟧' OR last_ip = '⟦ip⟧' LIMIT 10")))]), "Find the account."),
        _ => ("book_meeting", obj(vec![("title", s(c.fill("⟦month⟧ review"))), ("attendees", J::Arr(vec![s(c.slot("email1")), s(c.slot("email2")), s(c.slot("email3"))])), ("location", s(c.slot("city"))), ("organizer_phone", s(c.slot("mobile")))]), "Set up the review meeting."),
    };
    let args_text = enc(
        &args,
        Esc::Minimal,
        if c.r.chance(0.5) { None } else { Some(0) },
    );
    if c.r.chance(0.3) {
        // streamed tool call (model output)
        let pieces = chunks(c, &args_text);
        let out = if c.r.chance(0.5) {
            sse_openai(c, pieces, Some(name))
        } else {
            sse_anthropic(c, pieces, Some(name))
        };
        return (Fmt::Sse, out);
    }
    let body = if c.r.chance(0.6) {
        let call = format!("call_{}", c.r.charset(ALNUM, 24));
        c.k("gpt-4o-mini");
        obj(vec![
            ("model", s("gpt-4o-mini")),
            (
                "messages",
                J::Arr(vec![
                    obj(vec![("role", s("user")), ("content", s(ask))]),
                    obj(vec![
                        ("role", s("assistant")),
                        ("content", J::Null),
                        (
                            "tool_calls",
                            J::Arr(vec![obj(vec![
                                ("id", s(call.clone())),
                                ("type", s("function")),
                                (
                                    "function",
                                    obj(vec![("name", s(name)), ("arguments", s(args_text))]),
                                ),
                            ])]),
                        ),
                    ]),
                    obj(vec![
                        ("role", s("tool")),
                        ("tool_call_id", s(call)),
                        (
                            "content",
                            s(format!(
                                "{{\"status\":\"ok\",\"id\":\"{}\"}}",
                                c.slot("uuid8")
                            )),
                        ),
                    ]),
                ]),
            ),
            (
                "tools",
                J::Arr(vec![obj(vec![
                    ("type", s("function")),
                    (
                        "function",
                        obj(vec![
                            ("name", s(name)),
                            ("description", s("Performs the action.")),
                            ("parameters", obj(vec![("type", s("object"))])),
                        ]),
                    ),
                ])]),
            ),
        ])
    } else {
        let id = format!("toolu_01{}", c.r.charset(ALNUM, 22));
        c.k("claude-3-5-sonnet-20241022");
        obj(vec![
            ("model", s("claude-3-5-sonnet-20241022")),
            ("max_tokens", n(1024)),
            (
                "messages",
                J::Arr(vec![
                    obj(vec![("role", s("user")), ("content", s(ask))]),
                    obj(vec![
                        ("role", s("assistant")),
                        (
                            "content",
                            J::Arr(vec![obj(vec![
                                ("type", s("tool_use")),
                                ("id", s(id.clone())),
                                ("name", s(name)),
                                ("input", args),
                            ])]),
                        ),
                    ]),
                    obj(vec![
                        ("role", s("user")),
                        (
                            "content",
                            J::Arr(vec![obj(vec![
                                ("type", s("tool_result")),
                                ("tool_use_id", s(id)),
                                ("content", s("done")),
                            ])]),
                        ),
                    ]),
                ]),
            ),
        ])
    };
    (Fmt::Json, encode(c, &body))
}

// ------------------------------------------------------------------ decoding & judging

/// The decoded text the ground truth refers to.
pub fn decoded(fmt: Fmt, bytes: &[u8]) -> Result<String, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("invalid UTF-8: {e}"))?;
    match fmt {
        Fmt::Text => Ok(text.to_string()),
        Fmt::Json => parse(text).map(|v| json_text(&v)),
        Fmt::Sse => sse_text(text),
    }
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric()
}

/// Occurrences of `needle` not glued to a letter/digit on a side where the needle itself
/// starts/ends with a letter/digit.
pub fn count_word(hay: &str, needle: &str) -> usize {
    if needle.is_empty() {
        return 0;
    }
    let first = needle.chars().next().unwrap();
    let last = needle.chars().last().unwrap();
    hay.match_indices(needle)
        .filter(|(i, _)| {
            let before_ok = !is_word_char(first)
                || hay[..*i]
                    .chars()
                    .next_back()
                    .is_none_or(|c| !is_word_char(c));
            let after_ok = !is_word_char(last)
                || hay[i + needle.len()..]
                    .chars()
                    .next()
                    .is_none_or(|c| !is_word_char(c));
            before_ok && after_ok
        })
        .count()
}

#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Removed,
    /// The whole value survived.
    Leaked,
    /// Part of the value survived (for names: which words; else the surviving fragment).
    Partial(String),
}

pub struct Eval {
    pub pii: Vec<(&'static str, String, Outcome)>,
    pub keep: Vec<(String, bool)>,
    pub error: Option<String>,
}

/// Judge one redacted output against the item's ground truth.
pub fn evaluate(item: &Item, output: &[u8]) -> Eval {
    let din = decoded(item.format, item.input.as_bytes()).expect("corpus input decodes");
    let dout = match decoded(item.format, output) {
        Ok(t) => t,
        Err(e) => {
            return Eval {
                pii: item
                    .pii
                    .iter()
                    .map(|(e, v)| (*e, v.clone(), Outcome::Leaked))
                    .collect(),
                keep: item.keep.iter().map(|k| (k.clone(), false)).collect(),
                error: Some(format!("output does not decode: {e}")),
            };
        }
    };
    // input with every personal value blanked: what may legitimately remain
    let mut vals: Vec<&str> = item.pii.iter().map(|(_, v)| v.as_str()).collect();
    vals.sort_by_key(|v| std::cmp::Reverse(v.len()));
    let mut masked = din.clone();
    for v in &vals {
        masked = masked.replace(v, "\u{1}");
    }
    let mut pii = Vec::new();
    for (e, v) in &item.pii {
        let outcome = if *e == "PERSON" {
            let words = name_words(v);
            if words.is_empty() {
                // a standalone short name ("Li", "Vũ"): judged as a whole word
                if count_word(&dout, v) > count_word(&masked, v) {
                    Outcome::Leaked
                } else {
                    Outcome::Removed
                }
            } else {
                let left: Vec<String> = words
                    .iter()
                    .filter(|w| count_word(&dout, w) > count_word(&masked, w))
                    .cloned()
                    .collect();
                if left.is_empty() {
                    Outcome::Removed
                } else if left.len() == words.len() && count_word(&dout, v) > count_word(&masked, v)
                {
                    Outcome::Leaked
                } else {
                    Outcome::Partial(left.join(" "))
                }
            }
        } else if dout.contains(v.as_str()) {
            Outcome::Leaked
        } else if is_structured(e) {
            residue(e, v, &dout, &masked)
                .map(Outcome::Partial)
                .unwrap_or(Outcome::Removed)
        } else {
            Outcome::Removed
        };
        pii.push((*e, v.clone(), outcome));
    }
    let keep = item
        .keep
        .iter()
        .map(|k| (k.clone(), count_word(&dout, k) == count_word(&din, k)))
        .collect();
    Eval {
        pii,
        keep,
        error: None,
    }
}

/// A long enough fragment of a structured value that survived (partial redaction).
fn residue(entity: &str, v: &str, dout: &str, masked: &str) -> Option<String> {
    let chars: Vec<char> = v.chars().collect();
    let w = if is_secret(entity) {
        12
    } else {
        8.max((chars.len() * 6).div_ceil(10))
    };
    if chars.len() <= w {
        return None;
    }
    for st in 0..=chars.len() - w {
        let frag: String = chars[st..st + w].iter().collect();
        if dout.matches(frag.as_str()).count() > masked.matches(frag.as_str()).count() {
            return Some(frag);
        }
    }
    None
}

/// Corpus self-check: the ground truth is consistent and every checksum-bearing value
/// is valid (so a miss is the detector's, not the corpus's).
pub fn check_item(item: &Item) -> Result<(), String> {
    let din = decoded(item.format, item.input.as_bytes())
        .map_err(|e| format!("input does not decode: {e}"))?;
    if item.pii.is_empty() && item.keep.is_empty() {
        return Err("item has no ground truth".into());
    }
    for (e, v) in &item.pii {
        if !din.contains(v.as_str()) {
            return Err(format!("{e} value {v:?} not in decoded input"));
        }
        let ok = match *e {
            "CREDIT_CARD" => values::luhn_ok(v),
            "IBAN" => values::iban_ok(v),
            "US_SSN" => values::ssn_ok(v),
            "JWT" => {
                v.split('.').count() == 3
                    && values::b64_decode(v.split('.').next().unwrap())
                        .is_some_and(|h| h == br#"{"alg":"HS256","typ":"JWT"}"#)
            }
            "PERSON" => !name_words(v).is_empty() || v.chars().count() >= 2,
            _ => true,
        };
        if !ok {
            return Err(format!("{e} value {v:?} fails its own check"));
        }
    }
    for k in &item.keep {
        if count_word(&din, k) == 0 {
            return Err(format!("look-alike {k:?} not in decoded input"));
        }
        if item.pii.iter().any(|(_, v)| overlaps(k, v)) {
            return Err(format!("look-alike {k:?} overlaps a personal value"));
        }
        if k.len() == 16 && k.chars().all(|c| c.is_ascii_digit()) && values::luhn_ok(k) {
            return Err(format!("look-alike {k:?} passes Luhn"));
        }
    }
    if item.format == Fmt::Sse {
        // at least one personal value must be cut across two events
        let evs = sse_events(&item.input);
        let pieces: Vec<String> = evs
            .iter()
            .filter_map(|(_, d)| parse(d).ok())
            .map(|v| json_text(&v))
            .collect();
        for (_, v) in &item.pii {
            if v.chars().count() >= 2 && pieces.iter().any(|p| p.contains(v.as_str())) {
                return Err(format!("SSE value {v:?} is not split across events"));
            }
        }
    }
    Ok(())
}

pub fn to_json_line(item: &Item) -> String {
    let v = obj(vec![
        ("kind", s(item.kind)),
        ("format", s(format!("{:?}", item.format))),
        ("input", s(item.input.clone())),
        (
            "pii",
            J::Arr(
                item.pii
                    .iter()
                    .map(|(e, v)| J::Arr(vec![s(*e), s(v.clone())]))
                    .collect(),
            ),
        ),
        (
            "keep",
            J::Arr(item.keep.iter().map(|k| s(k.clone())).collect()),
        ),
    ]);
    enc(&v, Esc::Minimal, None)
}
