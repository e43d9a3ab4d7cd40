//! Incremental redaction of one streamed text channel, with a holdback that keeps only
//! what could still become part of a match.
//!
//! The rule: after each piece, the lazy DFA of all filters (match kind *all*, so no
//! pattern is pruned by a higher-priority one) is run anchored at each candidate start;
//! the earliest start whose DFA is still alive at the end of the text is the *live
//! start*. Everything before it is final: no match can begin there and reach text that
//! has not arrived yet, so scanning it now gives exactly what scanning the whole text at
//! once gives. A detection that begins before the live start is final too (a longer match
//! would keep its start alive), so the cut moves past its end. The buffer therefore holds
//! a partial value however long the stream runs, never a timer's worth of text, and a
//! value with spaces inside (cards, phones, IBANs) is held whole, not cut at a space.
//!
//! Names are the exception: the name model looks ahead for family names, so text within
//! [`NameModel::MAX_LEN`] bytes of the end is held while it may still extend a name.

use std::sync::Mutex;

use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::util::start;
use regex_automata::{Anchored, MatchKind};

use super::person::NameModel;
use super::{Error, Redactor, Session};

/// Bytes of already-emitted text kept before the pending text, for look-behind,
/// context words and name cues.
pub const CONTEXT_KEEP: usize = 256;

/// The all-patterns anchored lazy DFA that answers "can a match still be in progress?".
pub(crate) struct Liveness {
    dfa: DFA,
    caches: Mutex<Vec<Cache>>,
    /// For each first byte, the longest match of the patterns that can start with it.
    max_by_byte: [usize; 256],
}

impl std::fmt::Debug for Liveness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Liveness").finish_non_exhaustive()
    }
}

impl Liveness {
    pub(crate) fn new(patterns: &[&str], max_by_byte: [usize; 256]) -> Result<Liveness, String> {
        let dfa = DFA::builder()
            .configure(
                DFA::config()
                    .match_kind(MatchKind::All)
                    .unicode_word_boundary(true)
                    .cache_capacity(4 << 20),
            )
            .thompson(regex_automata::nfa::thompson::Config::new().nfa_size_limit(Some(64 << 20)))
            .build_many(patterns)
            .map_err(|e| e.to_string())?;
        Ok(Liveness {
            dfa,
            caches: Mutex::new(Vec::new()),
            max_by_byte,
        })
    }

    /// The earliest char boundary `s >= from` where a match may be in progress at the end
    /// of `text`; `text.len()` if there is none.
    pub(crate) fn live_start(&self, text: &str, from: usize) -> usize {
        let b = text.as_bytes();
        let len = b.len();
        let mut cache = self
            .caches
            .lock()
            .ok()
            .and_then(|mut v| v.pop())
            .unwrap_or_else(|| self.dfa.create_cache());
        let mut found = len;
        for s in from..len {
            if !text.is_char_boundary(s) || len - s >= self.max_by_byte[usize::from(b[s])] {
                continue;
            }
            if self.alive(&mut cache, b, s) {
                found = s;
                break;
            }
        }
        if let Ok(mut v) = self.caches.lock() {
            v.push(cache);
        }
        found
    }

    fn alive(&self, cache: &mut Cache, b: &[u8], s: usize) -> bool {
        let cfg = start::Config::new()
            .anchored(Anchored::Yes)
            .look_behind(s.checked_sub(1).map(|i| b[i]));
        let Ok(mut st) = self.dfa.start_state(cache, &cfg) else {
            return true;
        };
        for &byte in &b[s..] {
            match self.dfa.next_state(cache, st, byte) {
                Ok(next) if next.is_dead() => return false,
                Ok(next) if next.is_quit() => return true,
                Ok(next) => st = next,
                Err(_) => return true,
            }
        }
        !st.is_dead()
    }
}

/// Which way a channel flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Towards the provider: detect and transform with the redactor's policy.
    #[default]
    Request,
    /// Towards the client: restore pseudonyms, treat PII the model produced per the
    /// redactor's [`ResponsePolicy`](super::action::ResponsePolicy).
    Response,
}

/// The streaming state of one text channel.
#[derive(Debug, Default)]
pub struct Channel {
    mode: Mode,
    /// Emitted context (at most [`CONTEXT_KEEP`] bytes) followed by pending text.
    text: String,
    /// Start of the pending text in `text`.
    from: usize,
    /// No match can be in progress before this offset (it only moves forward).
    live_floor: usize,
    /// The header row of the table the emitted text is in, once it has left the
    /// context: rows that follow are still read under it.
    header: Option<String>,
    /// `text` starts at a line start (nothing, or a whole line, was dropped before it).
    whole_lines: bool,
}

impl Channel {
    /// A request-direction channel with nothing pending.
    pub fn new() -> Channel {
        Channel::with_mode(Mode::default())
    }

    /// A channel flowing in `mode`.
    pub fn with_mode(mode: Mode) -> Channel {
        Channel {
            mode,
            whole_lines: true,
            ..Channel::default()
        }
    }

    /// Bytes held back (received but not yet emitted).
    pub fn pending(&self) -> usize {
        self.text.len() - self.from
    }

    /// Bytes of state kept (context plus pending).
    pub fn state_bytes(&self) -> usize {
        self.text.capacity()
    }

    /// Takes a piece of the channel's text; returns the text that is final now.
    pub fn push(
        &mut self,
        redactor: &Redactor,
        session: &mut Session,
        piece: &str,
    ) -> Result<String, Error> {
        self.text.push_str(piece);
        self.emit(redactor, session, false)
    }

    /// The channel ended (or the client went away): everything left is final.
    pub fn finish(&mut self, redactor: &Redactor, session: &mut Session) -> Result<String, Error> {
        self.emit(redactor, session, true)
    }

    fn emit(
        &mut self,
        redactor: &Redactor,
        session: &mut Session,
        end: bool,
    ) -> Result<String, Error> {
        let cut = if end {
            None
        } else {
            let engine = redactor.engine();
            let policy = redactor.response_policy();
            let mut cut = self.text.len();
            if self.mode == Mode::Request || policy.action.is_some() {
                let live = engine.live_start(&self.text, self.live_floor.max(self.from));
                self.live_floor = live;
                cut = cut.min(live);
                if engine.has_names() && (self.mode == Mode::Request || policy.scans("PERSON")) {
                    cut = cut.min(hold_for_names(&self.text, self.from));
                }
                cut = cut.min(engine.field_hold(&self.text, self.from));
            }
            if self.mode == Mode::Response && policy.restore {
                cut = cut.min(super::restore::token_hold(&self.text, self.from));
            }
            Some(cut)
        };
        let header = self
            .header
            .as_deref()
            .filter(|h| !self.text[..self.from].contains(*h));
        let (out, cut) = match header {
            None => render(redactor, session, &self.text, self.from, cut, self.mode)?,
            Some(h) => {
                // The context from its first whole line, under the table's header.
                let start = if self.whole_lines {
                    0
                } else {
                    self.text[..self.from]
                        .find('\n')
                        .map_or(self.from, |i| i + 1)
                };
                let mut joined = String::with_capacity(h.len() + 1 + self.text.len() - start);
                joined.push_str(h);
                joined.push('\n');
                joined.push_str(&self.text[start..]);
                let shift = h.len() + 1;
                let at = |i: usize| i - start + shift;
                let (out, c) = render(
                    redactor,
                    session,
                    &joined,
                    at(self.from),
                    cut.map(at),
                    self.mode,
                )?;
                (out, c + start - shift)
            }
        };
        self.note_tables(redactor, cut);
        self.from = cut;
        // Keep a bounded tail of emitted text as context.
        let keep_from = super::floor_char(&self.text, cut.saturating_sub(CONTEXT_KEEP));
        if keep_from > 0 {
            self.whole_lines = self.text.as_bytes()[keep_from - 1] == b'\n';
            self.text.drain(..keep_from);
            self.from -= keep_from;
            self.live_floor = self.live_floor.saturating_sub(keep_from);
        }
        Ok(out)
    }

    /// Follows tables through the lines completed by emitting up to `cut`: a header row
    /// starts one, a blank line ends it.
    fn note_tables(&mut self, redactor: &Redactor, cut: usize) {
        let engine = redactor.engine();
        let mut ls = self.text[..self.from].rfind('\n').map_or(0, |i| i + 1);
        for p in memchr::memchr_iter(b'\n', &self.text.as_bytes()[self.from..cut]) {
            let le = self.from + p;
            let line = self.text[ls..le].trim_end_matches('\r');
            if line.trim().is_empty() {
                self.header = None;
            } else if (ls > 0 || self.whole_lines) && engine.is_table_header(line) {
                self.header = Some(line.to_string());
            }
            ls = le + 1;
        }
    }
}

enum Item {
    Detection(super::Detection),
    Restore(std::ops::Range<usize>, String),
}

impl Item {
    fn range(&self) -> std::ops::Range<usize> {
        match self {
            Item::Detection(d) => d.start..d.end,
            Item::Restore(r, _) => r.clone(),
        }
    }
}

/// Renders `text[from..]` up to `cut` (the whole text when `None`): detections are
/// transformed and, in answers, known pseudonyms restored. An item that starts before
/// the cut is final, so the cut moves past its end. Returns the output and the cut.
pub(crate) fn render(
    redactor: &Redactor,
    session: &mut Session,
    text: &str,
    from: usize,
    cut: Option<usize>,
    mode: Mode,
) -> Result<(String, usize), Error> {
    let policy = redactor.response_policy();
    let mut cut = cut.unwrap_or(text.len());
    let mut items = Vec::new();
    if mode == Mode::Response && policy.restore {
        for t in super::restore::find_tokens(&text[from..]) {
            if let Some(orig) = session.original(&t.canonical) {
                items.push(Item::Restore(
                    t.range.start + from..t.range.end + from,
                    orig.to_string(),
                ));
            }
        }
    }
    if mode == Mode::Request || policy.action.is_some() {
        let tokens = items.len();
        for d in redactor.engine().detect_from(text, from, None) {
            let clash = items[..tokens].iter().any(|t| {
                let r = t.range();
                d.start < r.end && r.start < d.end
            });
            if !clash && (mode == Mode::Request || policy.scans(&d.entity)) {
                items.push(Item::Detection(d));
            }
        }
        items.sort_by_key(|i| i.range().start);
    }
    let mut out = String::with_capacity(cut.saturating_sub(from) + 16);
    let mut last = from;
    for item in &items {
        let r = item.range();
        if r.start >= cut {
            break;
        }
        out.push_str(&text[last..r.start]);
        match item {
            Item::Restore(_, orig) => out.push_str(orig),
            Item::Detection(d) => {
                let action = match mode {
                    Mode::Request => redactor.action_for(d),
                    Mode::Response => redactor.response_action(),
                };
                redactor.apply_action(action, d, &text[r.clone()], session, &mut out)?;
            }
        }
        last = r.end;
        cut = cut.max(last);
    }
    if last < cut {
        out.push_str(&text[last..cut]);
    }
    Ok((out, cut))
}

/// Where pending text must be held for the name model: the start of the last
/// whitespace-delimited token within [`NameModel::MAX_LEN`] bytes of the end that is not
/// followed by a line break.
fn hold_for_names(text: &str, from: usize) -> usize {
    let len = text.len();
    let window = super::floor_char(text, len.saturating_sub(NameModel::MAX_LEN)).max(from);
    // Text up to the last line break is complete for the name model (names don't span
    // lines); after it, hold back to the start of the window.
    match text[window..].rfind('\n') {
        Some(i) => window + i + 1,
        None => window,
    }
}
