//! The detection engine. No HTTP or Tower types live here.
//!
//! # Design
//!
//! Pattern filters compile into multi-pattern regexes (`regex_automata::meta::Regex`,
//! leftmost-first, patterns ordered by priority) — never one pass per filter. Filters
//! whose every match holds a digit or `@` (cards, phones, e-mails, IBANs, IPs, dates,
//! addresses: proved from each pattern's syntax tree at load) form one group that is
//! searched only around such bytes, which clean prose rarely has; the others (keys,
//! passwords, obfuscated e-mails) form a second group, searched only around the positions
//! that each of its matches is proved to touch (see `gate`: bytes rare in prose, long
//! tokens, anchor words), or in one pass when a pattern has no such proof. Validators and
//! context checks run only on candidates. When a
//! candidate is rejected, the other filters that could start at the same byte are tried
//! anchored there, and the scan goes on one character later, so a rejected run never hides a
//! valid value inside it. The PERSON filter is a name model (dictionaries plus structural
//! cues) rather than a regex; its spans are merged with the regex's.
//!
//! Overlaps are resolved deterministically: validated over unvalidated, longer over shorter,
//! then higher priority, then earlier filter.
//!
//! Every filter has a maximum match length ([`Engine::max_match_len`]); the streaming
//! holdback uses it.

mod action;
mod allow;
mod fields;
pub mod filter;
mod gate;
pub mod json;
pub mod person;
pub mod restore;
pub mod sse;
pub mod stream;
pub mod validators;

use std::collections::HashSet;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use regex_automata::meta::Regex;
use regex_automata::{Anchored, Input, PatternID};

pub use action::{Action, Key, Redactor, ResponsePolicy, Session, SpanRecord, normalize};
pub use allow::{AllowDef, AllowList};
use filter::Kind;
pub use filter::{Filter, FilterDef, FilterFile};
use person::NameModel;

/// The built-in filter files, embedded in the binary.
pub const BUILTIN_FILTERS: &[(&str, &str)] = &[
    ("contact.toml", include_str!("../../filters/contact.toml")),
    ("finance.toml", include_str!("../../filters/finance.toml")),
    (
        "government.toml",
        include_str!("../../filters/government.toml"),
    ),
    ("network.toml", include_str!("../../filters/network.toml")),
    ("personal.toml", include_str!("../../filters/personal.toml")),
    ("names.toml", include_str!("../../filters/names.toml")),
    ("fields.toml", include_str!("../../filters/fields.toml")),
    ("secrets.toml", include_str!("../../filters/secrets.toml")),
    ("allow.toml", include_str!("../../filters/allow.toml")),
];

/// Everything that can go wrong in the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A filter file or definition is invalid.
    Filter {
        source: String,
        id: Option<String>,
        message: String,
    },
    /// An I/O problem reading filter files.
    Io(String),
    /// The input is not valid JSON.
    InvalidJson { offset: usize, reason: &'static str },
    /// The input is not valid UTF-8.
    InvalidUtf8 { offset: usize },
    /// A detected entity's action is `block`.
    Blocked { entity: Arc<str>, filter: Arc<str> },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Filter {
                source,
                id: Some(id),
                message,
            } => write!(f, "{source}: filter {id:?}: {message}"),
            Error::Filter {
                source,
                id: None,
                message,
            } => write!(f, "{source}: {message}"),
            Error::Io(m) => write!(f, "{m}"),
            Error::InvalidJson { offset, reason } => {
                write!(f, "invalid JSON at byte {offset}: {reason}")
            }
            Error::InvalidUtf8 { offset } => write!(f, "invalid UTF-8 at byte {offset}"),
            Error::Blocked { entity, filter } => {
                write!(
                    f,
                    "blocked: the content contains {entity} (filter {filter}) and policy blocks it"
                )
            }
        }
    }
}

impl std::error::Error for Error {}

/// One detected value: a byte range of the scanned text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detection {
    pub start: usize,
    pub end: usize,
    pub entity: Arc<str>,
    /// The filter id.
    pub filter: Arc<str>,
    /// Index of the filter in [`Engine::filters`].
    pub filter_index: usize,
    /// Whether a validator confirmed the value.
    pub validated: bool,
}

/// Collects filter files, then compiles them into an [`Engine`].
#[derive(Debug, Default)]
pub struct EngineBuilder {
    files: Vec<(String, String)>,
    extra_allow: Vec<String>,
    names_extra: Option<(String, String, String)>,
}

impl EngineBuilder {
    /// Adds the built-in filters.
    pub fn builtin(mut self) -> Self {
        self.files.extend(
            BUILTIN_FILTERS
                .iter()
                .map(|(n, t)| (format!("builtin:{n}"), t.to_string())),
        );
        self
    }

    /// Adds one filter file's text; `name` appears in error messages.
    pub fn source(mut self, name: impl Into<String>, text: impl Into<String>) -> Self {
        self.files.push((name.into(), text.into()));
        self
    }

    /// Adds a `.toml` file, or every `*.toml` file of a directory (sorted by name).
    /// `first.txt`, `last.txt` and `stop.txt` in a directory extend the name model.
    pub fn path(mut self, path: &Path) -> Result<Self, Error> {
        let io = |e: std::io::Error| Error::Io(format!("{}: {e}", path.display()));
        if path.is_dir() {
            let mut entries: Vec<_> = std::fs::read_dir(path)
                .map_err(io)?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .collect();
            entries.sort();
            for p in entries {
                if p.extension().is_some_and(|e| e == "toml") {
                    let text = std::fs::read_to_string(&p)
                        .map_err(|e| Error::Io(format!("{}: {e}", p.display())))?;
                    self.files.push((p.display().to_string(), text));
                }
            }
            let read = |n: &str| std::fs::read_to_string(path.join(n)).unwrap_or_default();
            let (f, l, s) = (read("first.txt"), read("last.txt"), read("stop.txt"));
            if !(f.is_empty() && l.is_empty() && s.is_empty()) {
                self.names_extra = Some((f, l, s));
            }
        } else {
            let text = std::fs::read_to_string(path).map_err(io)?;
            self.files.push((path.display().to_string(), text));
        }
        Ok(self)
    }

    /// Adds exact values to the allow-list.
    pub fn allow_values<I: IntoIterator<Item = S>, S: Into<String>>(mut self, values: I) -> Self {
        self.extra_allow.extend(values.into_iter().map(Into::into));
        self
    }

    /// Compiles everything.
    pub fn build(self) -> Result<Engine, Error> {
        let mut seen = HashSet::new();
        let mut filters = Vec::new();
        let mut allow = AllowList::default();
        for (name, text) in &self.files {
            let source: Arc<str> = name.as_str().into();
            let file = filter::parse_file(name, text)?;
            if let Some(a) = &file.allow {
                allow.extend(a).map_err(|message| Error::Filter {
                    source: name.clone(),
                    id: None,
                    message,
                })?;
            }
            for def in file.filter {
                filters.push(filter::prepare(&source, def, &mut seen)?);
            }
        }
        allow.add_values(&self.extra_allow);
        // Priority order: the combined regex is leftmost-first, so at one position the
        // earlier pattern wins. Stable sort keeps file order among equals.
        filters.sort_by_key(|f| std::cmp::Reverse(f.priority));

        let mut patterns = Vec::new();
        let mut max_by_byte = [0usize; 256];
        // Patterns whose every match holds a digit or '@' (cards, phones, e-mails, IBANs,
        // IPs, dates, addresses) are searched only around such bytes; the rest (keys,
        // passwords, obfuscated e-mails) in a full pass of their own.
        let mut grouped: [Vec<usize>; 2] = [Vec::new(), Vec::new()];
        let mut names_filter = None;
        let mut fields = fields::FieldMatcher::default();
        for (i, f) in filters.iter().enumerate() {
            match f.kind {
                Kind::Field => {
                    for name in &f.fields {
                        fields.add(name, i).map_err(|message| Error::Filter {
                            source: f.source.to_string(),
                            id: Some(f.id.to_string()),
                            message,
                        })?;
                    }
                }
                Kind::Pattern { .. } => {
                    let pattern = f.pattern.as_deref().unwrap_or_default();
                    for (b, can) in filter::first_bytes(pattern).iter().enumerate() {
                        if *can {
                            max_by_byte[b] = max_by_byte[b].max(f.max_len);
                        }
                    }
                    patterns.push(pattern);
                    let triggered = filter::requires_bytes(pattern, &TRIGGER_BYTES);
                    grouped[usize::from(!triggered)].push(i);
                }
                Kind::Names => {
                    if names_filter.replace(i).is_some() {
                        return Err(Error::Filter {
                            source: f.source.to_string(),
                            id: Some(f.id.to_string()),
                            message: "only one filter may use the names detector".into(),
                        });
                    }
                }
            }
        }
        let groups = grouped
            .iter()
            .enumerate()
            .filter(|(_, members)| !members.is_empty())
            .map(|(g, members)| Group::build(&filters, members, g == 0))
            .collect::<Result<Vec<_>, _>>()?;
        let live =
            stream::Liveness::new(&patterns, max_by_byte).map_err(|message| Error::Filter {
                source: "filters".into(),
                id: None,
                message: format!("streaming automaton: {message}"),
            })?;
        let names = names_filter.map(|_| match &self.names_extra {
            Some((f, l, s)) => NameModel::builtin().with_extra(f, l, s),
            None => NameModel::builtin(),
        });
        let max_match_len = filters.iter().map(|f| f.max_len).max().unwrap_or(0);
        Ok(Engine {
            filters,
            groups,
            live,
            fields,
            names: names.map(|m| (names_filter.unwrap_or(0), m)),
            allow,
            max_match_len,
        })
    }
}

/// The compiled detector: all filters, their regexes, the name model and the allow-list.
/// Immutable and `Send + Sync`: share it behind an `Arc`.
pub struct Engine {
    filters: Vec<Filter>,
    /// The pattern filters, compiled in (at most) two multi-pattern regexes.
    groups: Vec<Group>,
    live: stream::Liveness,
    fields: fields::FieldMatcher,
    names: Option<(usize, NameModel)>,
    allow: AllowList,
    max_match_len: usize,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("filters", &self.filters.len())
            .field("max_match_len", &self.max_match_len)
            .finish_non_exhaustive()
    }
}

/// Scratch space for one scan.
struct Scan<'t> {
    text: &'t str,
}

impl Engine {
    /// A builder with nothing in it.
    pub fn builder() -> EngineBuilder {
        EngineBuilder::default()
    }

    /// The built-in filters.
    pub fn builtin() -> Result<Engine, Error> {
        Engine::builder().builtin().build()
    }

    /// All filters, in priority order.
    pub fn filters(&self) -> &[Filter] {
        &self.filters
    }

    /// The allow-list in force.
    pub fn allow_list(&self) -> &AllowList {
        &self.allow
    }

    /// The longest match any filter can produce, in bytes.
    pub fn max_match_len(&self) -> usize {
        self.max_match_len
    }

    /// The earliest char boundary at or after `from` where a match may still be in
    /// progress at the end of `text` (`text.len()` if none): the streaming holdback point.
    pub fn live_start(&self, text: &str, from: usize) -> usize {
        self.live.live_start(text, from)
    }

    /// Streaming: where pending text must be held for field filters (`Label: value`
    /// lines); `text.len()` when nothing needs holding.
    pub fn field_hold(&self, text: &str, from: usize) -> usize {
        if self.fields.is_empty() {
            text.len()
        } else {
            self.fields.hold(text, from)
        }
    }

    /// Whether the PERSON name model is enabled.
    pub fn has_names(&self) -> bool {
        self.names.is_some()
    }

    /// Detects values in free text.
    pub fn detect(&self, text: &str) -> Vec<Detection> {
        self.detect_keyed(text, None)
    }

    /// Detects values in a JSON string value found under object key `key` (the key is a
    /// cue for names: `"full_name": "..."`).
    pub fn detect_keyed(&self, text: &str, key: Option<&str>) -> Vec<Detection> {
        self.detect_from(text, 0, key)
    }

    /// Detects values starting at or after byte `from` of `text`; the bytes before `from`
    /// are context only (look-behind, context words, name cues). A streamed channel keeps
    /// already-emitted text before `from`, so scanning resumes exactly where the scan of
    /// the whole text would be.
    pub fn detect_from(&self, text: &str, from: usize, key: Option<&str>) -> Vec<Detection> {
        let mut found = Vec::new();
        for g in &self.groups {
            self.scan_group(g, text, from, &mut found);
        }
        self.field_detections(text, from, key, None, &mut found);
        self.name_detections(text, from, key, &mut found);
        resolve_overlaps(&self.filters, found)
    }

    /// Runs one pattern group over `text[from..]`, leftmost-first. A triggered group
    /// searches only from `back` bytes before each cluster of trigger bytes to `back`
    /// bytes after it: every match holds a trigger byte and is at most `back` long, so
    /// the matches found are exactly those of a search over the whole text.
    fn scan_group(&self, g: &Group, text: &str, from: usize, found: &mut Vec<Detection>) {
        let mut scan = Scan { text };
        let len = text.len();
        let mut pos = from;
        // The current cluster of trigger bytes: its last trigger and where a match that
        // holds one of them must end. Computed once per cluster, not once per match.
        let (mut last, mut hi) = (0, 0);
        while pos < len {
            let lo = if g.triggered {
                let Some(t) = next_trigger(text.as_bytes(), pos) else {
                    break;
                };
                if t >= hi {
                    last = t;
                    hi = (last + g.back + 1).min(len);
                    // Jump to the last trigger before `hi` rather than to the next one:
                    // the cluster ends at the same trigger, in one step per `back`
                    // bytes instead of one per trigger byte (digit runs).
                    while hi < len {
                        match last_trigger(&text.as_bytes()[..hi], last + 1) {
                            Some(t2) => {
                                last = t2;
                                hi = (t2 + g.back + 1).min(len);
                            }
                            None => break,
                        }
                    }
                    hi = ceil_char(text, hi);
                }
                floor_char(text, t.saturating_sub(g.back)).max(pos)
            } else if let Some(gate) = &g.gate {
                // As above, around gate positions. Inside a cluster the search goes on
                // from `pos`: every match that starts there and holds a gate position
                // of the cluster ends before `hi`.
                if pos >= hi {
                    let Some(t) = gate.first(text.as_bytes(), pos, len) else {
                        break;
                    };
                    last = t;
                    hi = (last + g.back + 1).min(len);
                    while hi < len {
                        match gate.last(text.as_bytes(), last + 1, hi) {
                            Some(t2) => {
                                last = t2;
                                hi = (t2 + g.back + 1).min(len);
                            }
                            None => break,
                        }
                    }
                    hi = ceil_char(text, hi);
                    floor_char(text, t.saturating_sub(g.back)).max(pos)
                } else {
                    pos
                }
            } else {
                (last, hi) = (len, len);
                pos
            };
            let Some(m) = g.regex.search(&Input::new(text).range(lo..hi)) else {
                if hi >= len {
                    break;
                }
                pos = last + 1;
                // The cluster holds no more matches: find the next one.
                hi = pos;
                continue;
            };
            let start = m.start();
            match self.candidate(g, &mut scan, m.pattern(), start, m.end()) {
                Verdict::Accept(d) => {
                    found.push(d);
                    pos = m.end();
                }
                Verdict::Allowed => pos = m.end(),
                Verdict::Reject => match self.retry_at(g, &mut scan, m.pattern(), start) {
                    Some((d, end)) => {
                        found.push(d);
                        pos = end;
                    }
                    None => pos = next_char(text, start),
                },
            }
        }
    }

    /// Values under field names (only filter `only`, if given).
    fn field_detections(
        &self,
        text: &str,
        from: usize,
        key: Option<&str>,
        only: Option<usize>,
        found: &mut Vec<Detection>,
    ) {
        if self.fields.is_empty() {
            return;
        }
        let mut cands = Vec::new();
        self.fields.find(text, from, key, &mut cands);
        for (fi, r) in cands {
            let f = &self.filters[fi];
            let value = &text[r.clone()];
            if only.is_some_and(|o| o != fi)
                || !fields::plausible(&f.entity, value)
                || f.validator.as_ref().is_some_and(|v| !v.check(value))
                || self.allow.allows(&f.entity, value)
            {
                continue;
            }
            found.push(Detection {
                start: r.start,
                end: r.end,
                entity: f.entity.clone(),
                filter: f.id.clone(),
                filter_index: fi,
                validated: true,
            });
        }
    }

    /// Whether `line` is the header row of a delimited table with a column of a known
    /// field or of names (`name,date_of_birth,city`).
    pub(crate) fn is_table_header(&self, line: &str) -> bool {
        self.fields.is_header(line)
            || self
                .names
                .as_ref()
                .is_some_and(|(_, m)| m.is_csv_header(line))
    }

    /// Names from the name model.
    fn name_detections(
        &self,
        text: &str,
        from: usize,
        key: Option<&str>,
        found: &mut Vec<Detection>,
    ) {
        let Some((fi, model)) = &self.names else {
            return;
        };
        let f = &self.filters[*fi];
        for r in model.find(text, key) {
            // A name that starts in text already passed on (a stream's earlier bytes) is
            // still cut from what follows: "Bartholomew" may be out, "Simpson-Ng" is not.
            let r = r.start.max(from)..r.end;
            if r.is_empty() || self.allow.allows(&f.entity, &text[r.clone()]) {
                continue;
            }
            found.push(Detection {
                start: r.start,
                end: r.end,
                entity: f.entity.clone(),
                filter: f.id.clone(),
                filter_index: *fi,
                validated: false,
            });
        }
    }

    /// What filter `fi` finds in `text` on its own, without the others competing for
    /// the same bytes (for `filters check`).
    pub fn detect_filter(&self, text: &str, fi: usize) -> Vec<Detection> {
        let mut found = Vec::new();
        match self.filters[fi].kind {
            Kind::Names => self.name_detections(text, 0, None, &mut found),
            Kind::Field => self.field_detections(text, 0, None, Some(fi), &mut found),
            Kind::Pattern { .. } => {
                let Some((g, pid)) = self.groups.iter().find_map(|g| {
                    let p = g.pattern_filter.iter().position(|&f| f == fi)?;
                    Some((g, PatternID::new_unchecked(p)))
                }) else {
                    return found;
                };
                let mut scan = Scan { text };
                let mut pos = 0;
                while pos < text.len() {
                    let input = Input::new(text)
                        .range(pos..)
                        .anchored(Anchored::Pattern(pid));
                    match g.regex.search(&input) {
                        Some(m) => match self.candidate(g, &mut scan, pid, pos, m.end()) {
                            Verdict::Accept(d) => {
                                found.push(d);
                                pos = m.end();
                            }
                            Verdict::Allowed => pos = m.end(),
                            Verdict::Reject => pos = next_char(text, pos),
                        },
                        None => pos = next_char(text, pos),
                    }
                }
            }
        }
        found
    }

    /// Tries every other pattern anchored at `start`; returns the best accepted one.
    fn retry_at(
        &self,
        g: &Group,
        scan: &mut Scan<'_>,
        rejected: PatternID,
        start: usize,
    ) -> Option<(Detection, usize)> {
        let mut best: Option<(Detection, usize)> = None;
        for &pid in &g.starts[usize::from(scan.text.as_bytes()[start])] {
            if pid == rejected {
                continue;
            }
            let input = Input::new(scan.text)
                .range(start..)
                .anchored(Anchored::Pattern(pid));
            let Some(m) = g.regex.search(&input) else {
                continue;
            };
            if let Verdict::Accept(d) = self.candidate(g, scan, pid, start, m.end()) {
                if best
                    .as_ref()
                    .is_none_or(|(b, _)| rank(&self.filters, &d) > rank(&self.filters, b))
                {
                    best = Some((d, m.end()));
                }
            }
        }
        best
    }

    /// Runs the value group, validator, context and allow-list on one regex match.
    fn candidate(
        &self,
        g: &Group,
        scan: &mut Scan<'_>,
        pid: PatternID,
        start: usize,
        end: usize,
    ) -> Verdict {
        let fi = g.pattern_filter[pid.as_usize()];
        let f = &self.filters[fi];
        let text = scan.text;
        let (mut vs, mut ve) = (start, end);
        if let Kind::Pattern {
            has_value_group: true,
        } = f.kind
        {
            let Some(re) = &g.captures[pid.as_usize()] else {
                return Verdict::Reject;
            };
            let mut caps = re.create_captures();
            let input = Input::new(text).range(start..end).anchored(Anchored::Yes);
            re.search_captures(&input, &mut caps);
            match caps.get_group_by_name("value") {
                Some(s) if s.start < s.end => (vs, ve) = (s.start, s.end),
                // The value group did not take part in this match: nothing to replace.
                _ => return Verdict::Reject,
            }
        }
        let value = &text[vs..ve];
        if let Some(v) = &f.validator {
            if !v.check(value) {
                return Verdict::Reject;
            }
        }
        if !f.context.is_empty() && f.context_required && !has_context(text, vs, f) {
            return Verdict::Reject;
        }
        if self.allow.allows(&f.entity, value) {
            return Verdict::Allowed;
        }
        Verdict::Accept(Detection {
            start: vs,
            end: ve,
            entity: f.entity.clone(),
            filter: f.id.clone(),
            filter_index: fi,
            validated: f.validator.is_some(),
        })
    }
}

/// Bytes that every match of a triggered pattern contains.
const TRIGGER_BYTES: [u8; 11] = *b"0123456789@";

fn is_trigger(b: u8) -> bool {
    b.is_ascii_digit() || b == b'@'
}

/// The first trigger byte at or after `from`. Checks 32-byte chunks branch-free (so the
/// compiler vectorizes it) and locates the byte only in a chunk that has one.
fn next_trigger(b: &[u8], from: usize) -> Option<usize> {
    let rest = b.get(from..)?;
    let mut off = 0;
    for chunk in rest.chunks(32) {
        if chunk.iter().fold(false, |a, &c| a | is_trigger(c)) {
            return chunk
                .iter()
                .position(|&c| is_trigger(c))
                .map(|i| from + off + i);
        }
        off += chunk.len();
    }
    None
}

/// The last trigger byte at or after `from` (searched from the end, 32-byte chunks
/// branch-free as in [`next_trigger`]).
fn last_trigger(b: &[u8], from: usize) -> Option<usize> {
    let rest = b.get(from..)?;
    let mut end = rest.len();
    for chunk in rest.rchunks(32) {
        end -= chunk.len();
        if chunk.iter().fold(false, |a, &c| a | is_trigger(c)) {
            return chunk
                .iter()
                .rposition(|&c| is_trigger(c))
                .map(|i| from + end + i);
        }
    }
    None
}

/// One multi-pattern regex over a set of pattern filters.
struct Group {
    regex: Regex,
    /// Pattern id -> filter index.
    pattern_filter: Vec<usize>,
    /// First byte -> the patterns whose matches can start with it (for retries).
    starts: Vec<Vec<PatternID>>,
    /// Every match contains a trigger byte.
    triggered: bool,
    /// For the other group: the positions every match touches, when proved.
    gate: Option<gate::Gate>,
    /// Longest match of the group's patterns.
    back: usize,
    /// Per pattern with a `value` group: a regex of that pattern alone, for captures
    /// (cheaper than captures on the combined regex).
    captures: Vec<Option<Regex>>,
}

impl Group {
    fn build(filters: &[Filter], members: &[usize], triggered: bool) -> Result<Group, Error> {
        let patterns: Vec<&str> = members
            .iter()
            .map(|&i| filters[i].pattern.as_deref().unwrap_or_default())
            .collect();
        let mut starts: Vec<Vec<PatternID>> = vec![Vec::new(); 256];
        for (p, pattern) in patterns.iter().enumerate() {
            for (b, can) in filter::first_bytes(pattern).iter().enumerate() {
                if *can {
                    starts[b].push(PatternID::new_unchecked(p));
                }
            }
        }
        let regex = Regex::builder()
            .configure(
                Regex::config()
                    .match_kind(regex_automata::MatchKind::LeftmostFirst)
                    .utf8_empty(true)
                    .nfa_size_limit(Some(64 << 20))
                    .hybrid_cache_capacity(8 << 20),
            )
            .build_many(&patterns)
            .map_err(|e| Error::Filter {
                source: "filters".into(),
                id: e
                    .pattern()
                    .map(|p| filters[members[p.as_usize()]].id.to_string()),
                message: format!("pattern does not compile: {e}"),
            })?;
        let captures = members
            .iter()
            .map(|&i| match filters[i].kind {
                Kind::Pattern {
                    has_value_group: true,
                } => Regex::builder()
                    .configure(Regex::config().nfa_size_limit(Some(64 << 20)))
                    .build(filters[i].pattern.as_deref().unwrap_or_default())
                    .map(Some)
                    .map_err(|e| Error::Filter {
                        source: filters[i].source.to_string(),
                        id: Some(filters[i].id.to_string()),
                        message: format!("pattern does not compile: {e}"),
                    }),
                _ => Ok(None),
            })
            .collect::<Result<Vec<_>, _>>()?;
        // The group searched in a full pass is gated when every pattern has a proof.
        let gate = if triggered {
            None
        } else {
            patterns
                .iter()
                .map(|p| gate::proof(p))
                .collect::<Option<Vec<_>>>()
                .map(|proofs| gate::Gate::new(&proofs))
        };
        Ok(Group {
            captures,
            gate,
            regex,
            pattern_filter: members.to_vec(),
            starts,
            triggered,
            back: members
                .iter()
                .map(|&i| filters[i].max_len)
                .max()
                .unwrap_or(0),
        })
    }
}

enum Verdict {
    Accept(Detection),
    /// A genuine match of an allow-listed value: skip it whole.
    Allowed,
    Reject,
}

/// True if one of the filter's context words occurs in the window before `start`.
/// The window ends where the value starts, so a context word the pattern itself matched
/// before the value (`Call 4155552671`) counts.
/// A context word counts only at the start of a word: not inside another word and not
/// inside a replacement marker (`[PHONE]`, `<US_SSN_7QK2M4>`), so that redacting a text
/// twice gives the same result as redacting it once.
fn has_context(text: &str, start: usize, f: &Filter) -> bool {
    let from = floor_char(text, start.saturating_sub(f.context_window));
    let w = &text.as_bytes()[from..start];
    f.context.iter().any(|word| {
        matches_ignore_ascii_case(w, word.as_bytes()).any(|i| {
            i == 0 || !(w[i - 1].is_ascii_alphanumeric() || matches!(w[i - 1], b'[' | b'<' | b'_'))
        })
    })
}

/// The starts of the non-overlapping occurrences of `needle` (ASCII lower case) in
/// `hay`, ignoring ASCII case, left to right: what `match_indices` gives on
/// `hay.to_ascii_lowercase()`, without building that copy for every candidate.
fn matches_ignore_ascii_case<'h>(
    hay: &'h [u8],
    needle: &'h [u8],
) -> impl Iterator<Item = usize> + 'h {
    let mut from = 0;
    std::iter::from_fn(move || {
        if needle.is_empty() {
            // `match_indices("")` would give every char boundary; no context word is empty.
            return None;
        }
        let i = (from..=hay.len().checked_sub(needle.len())?)
            .find(|&i| hay[i..i + needle.len()].eq_ignore_ascii_case(needle))?;
        from = i + needle.len();
        Some(i)
    })
}

fn rank(filters: &[Filter], d: &Detection) -> (bool, usize, i32, std::cmp::Reverse<usize>) {
    (
        d.validated,
        d.end - d.start,
        filters[d.filter_index].priority,
        std::cmp::Reverse(d.filter_index),
    )
}

/// Sorts detections and merges overlapping ones: the best by [`rank`] gives the entity
/// and filter, and the span covers both, so no part of the losing value leaks.
fn resolve_overlaps(filters: &[Filter], mut found: Vec<Detection>) -> Vec<Detection> {
    if found.len() < 2 {
        return found;
    }
    found.sort_by_key(|d| (d.start, std::cmp::Reverse(d.end)));
    // Merged in place: `found[..kept]` is the output so far (no second vector).
    let mut kept = 0;
    for i in 0..found.len() {
        let (out, rest) = found.split_at_mut(i);
        let d = &mut rest[0];
        match out[..kept].last_mut() {
            Some(last) if d.start < last.end => {
                let (start, end) = (last.start.min(d.start), last.end.max(d.end));
                // Two patterns matching at the same byte: the earlier filter wins, as in
                // one leftmost-first regex (a key before `@github.com` is a key, not an
                // e-mail). Otherwise validated, then longer, then priority.
                let both_patterns = matches!(filters[d.filter_index].kind, Kind::Pattern { .. })
                    && matches!(filters[last.filter_index].kind, Kind::Pattern { .. });
                let wins = if both_patterns && d.start == last.start {
                    d.filter_index < last.filter_index
                } else {
                    rank(filters, d) > rank(filters, last)
                };
                if wins {
                    std::mem::swap(last, d);
                }
                (last.start, last.end) = (start, end);
            }
            _ => {
                found.swap(kept, i);
                kept += 1;
            }
        }
    }
    found.truncate(kept);
    found
}

pub(crate) fn next_char(text: &str, i: usize) -> usize {
    let mut j = i + 1;
    while j < text.len() && !text.is_char_boundary(j) {
        j += 1;
    }
    j
}

pub(crate) fn ceil_char(text: &str, mut i: usize) -> usize {
    while i < text.len() && !text.is_char_boundary(i) {
        i += 1;
    }
    i
}

pub(crate) fn floor_char(text: &str, mut i: usize) -> usize {
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The kind of a whole input for [`redact_bytes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JSON if it starts with `{` or `[`, SSE if it starts with an SSE field, else text.
    Auto,
    Json,
    Sse,
    Text,
}

impl Format {
    /// Resolves [`Format::Auto`] by looking at the first bytes.
    pub fn detect(input: &[u8]) -> Format {
        let trimmed = input.trim_ascii_start();
        match trimmed.first() {
            Some(b'{' | b'[') => Format::Json,
            _ if sse::looks_like_sse(trimmed) => Format::Sse,
            _ => Format::Text,
        }
    }
}

/// Redacts a whole input. Nothing is returned unless the whole input was processed.
pub fn redact_bytes(redactor: &Redactor, input: &[u8], format: Format) -> Result<Vec<u8>, Error> {
    redact_bytes_with(redactor, input, format, &mut Session::default())
}

/// [`redact_bytes`] with a caller-owned session (reverse map, counts, spans).
pub fn redact_bytes_with(
    redactor: &Redactor,
    input: &[u8],
    format: Format,
    session: &mut Session,
) -> Result<Vec<u8>, Error> {
    let format = if format == Format::Auto {
        Format::detect(input)
    } else {
        format
    };
    match format {
        Format::Json => json::redact_json(redactor, input, session),
        Format::Sse => sse::redact_sse(redactor, input, session),
        Format::Text | Format::Auto => {
            let text = std::str::from_utf8(input).map_err(|e| Error::InvalidUtf8 {
                offset: e.valid_up_to(),
            })?;
            Ok(redactor
                .redact_str(text, session)?
                .into_owned()
                .into_bytes())
        }
    }
}

#[cfg(test)]
mod tests;

/// Runs a filter's examples and negative examples through the whole engine; returns the
/// problems found (empty when the filter is sound). Used by `veilgate filters check` and
/// the test suite.
pub fn check_filter(engine: &Engine, f: &Filter) -> Vec<String> {
    let Some(fi) = engine.filters().iter().position(|g| g.id == f.id) else {
        return vec![format!("filter {} is not in this engine", f.id)];
    };
    let mut problems = Vec::new();
    let show = |dets: &[Detection], text: &str| {
        dets.iter()
            .map(|d| format!("{}={:?}", d.filter, &text[d.start..d.end]))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for ex in &f.examples {
        let (text, span) = filter::parse_example(ex);
        let alone = engine.detect_filter(&text, fi);
        let hit = |d: &Detection| span.is_none_or(|(s, e)| (d.start, d.end) == (s, e));
        let want = || {
            span.map_or_else(
                || "a detection".to_string(),
                |(s, e)| format!("{:?}", &text[s..e]),
            )
        };
        if !alone.iter().any(hit) {
            problems.push(format!(
                "example {ex:?}: the filter alone should find {}, found [{}]",
                want(),
                show(&alone, &text)
            ));
            continue;
        }
        // With every filter competing, the value must still be taken as this entity.
        // (Overlapping detections merge, so the engine's span may be wider.)
        let all = engine.detect(&text);
        let covers = |d: &Detection| span.is_none_or(|(s, e)| d.start <= s && e <= d.end);
        if !all.iter().any(|d| d.entity == f.entity && covers(d)) {
            problems.push(format!(
                "example {ex:?}: the engine should find {} as {}, found [{}]",
                want(),
                f.entity,
                show(&all, &text)
            ));
        }
    }
    for ex in &f.negative_examples {
        let alone = engine.detect_filter(ex, fi);
        if !alone.is_empty() {
            problems.push(format!(
                "negative example {ex:?} matched: [{}]",
                show(&alone, ex)
            ));
        }
    }
    problems
}
