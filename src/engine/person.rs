//! PERSON detection: people's names in prompts, JSON values and streamed answers.
//!
//! No NER model: the detector combines
//! - **dictionaries** (`filters/names/first.txt`, `last.txt`: given and family
//!   names from every region, matched case- and accent-insensitively) used as
//!   *evidence*;
//! - a **stop list** (`stop.txt`) of capitalized words that are not names
//!   (sentence starters, months, products, places). A word in both a name list
//!   and the stop list ("Will", "May", "Grace", "Park") is *ambiguous* and counts
//!   only with corroboration;
//! - **structure**: cues (`Hi Anna,`, `Dear Mr. Smith`, `my name is ...`,
//!   `je m'appelle ...`), sign-offs (`Best regards,\nJohn Carter`), header and
//!   trailer fields (`From:`, `Author:`, `Signed-off-by:`, `Attendees:`), CSV
//!   columns under a header naming them, JSON keys (`"full_name"`), lists and
//!   "Family, Given" forms. In a strong position an unknown name is still found.
//!
//! A capitalized *run* (capitalized words, initials and name particles such as
//! `van der`, `de la`, `bin`, separated by single spaces) is the unit: when a run
//! is accepted, the whole run is the span, so an unknown family name next to a
//! known given name is included ("Kwabena Osei-Tutu", "DUPONT Jean").
//!
//! Cost: one pass over the bytes per line; only capitalized words are folded and
//! hashed (into a reusable buffer); lower-case words are hashed only when they
//! sit right before a capitalized run or look like the end of a cue.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};

const FIRST_TXT: &str = include_str!("../../filters/names/first.txt");
const LAST_TXT: &str = include_str!("../../filters/names/last.txt");
const STOP_TXT: &str = include_str!("../../filters/names/stop.txt");
const CUES_TXT: &str = include_str!("../../filters/names/cues.txt");

// Word flags.
const F_FIRST: u32 = 1;
const F_LAST: u32 = 1 << 1;
const F_STOP: u32 = 1 << 2;
const F_TITLE: u32 = 1 << 3;
const F_PARTICLE: u32 = 1 << 4;
const F_PLACE: u32 = 1 << 5;
const F_ORG: u32 = 1 << 6;
const F_DET: u32 = 1 << 7;
const F_SUFFIX: u32 = 1 << 8;
const F_NOSOLO: u32 = 1 << 9;
const F_CUE_LOWER: u32 = 1 << 10;
/// Computed: camel-case word (GitHub, PayPal): never part of a name.
const F_CAMEL: u32 = 1 << 16;
/// Computed: surname shape (O'Xxx, McXxx) although not in the dictionary.
const F_SHAPE: u32 = 1 << 17;
const F_NAME: u32 = F_FIRST | F_LAST | F_SHAPE;
const UNSET: u32 = u32::MAX;

/// Entries of `NameModel::cls`: 17 lengths (16 and up share one) x 32 x 32. A fixed-size
/// array, so that the tokenizer's masked index needs no bounds check.
const CLS_LEN: usize = 17 * 1024;
/// Class bits of a plain lower-case word (`NameModel::cls`).
const C_KEEP: u8 = 1;
const C_DET: u8 = 1 << 1;
const C_LOWER: u8 = 1 << 2;

/// After a plain word in a stretch: 1 for a space, 2 for punctuation that needs a space
/// after it, 0 for anything else (the stretch ends).
const WORD_END: [u8; 256] = {
    let mut t = [0u8; 256];
    t[b' ' as usize] = 1;
    t[b',' as usize] = 2;
    t[b';' as usize] = 2;
    t[b'.' as usize] = 2;
    t[b'!' as usize] = 2;
    t[b'?' as usize] = 2;
    t
};

#[inline]
fn is_strong(f: u32) -> bool {
    f & F_NAME != 0 && f & F_STOP == 0
}
#[inline]
fn is_pure_stop(f: u32) -> bool {
    f & F_STOP != 0 && f & F_NAME == 0
}

// ---------------------------------------------------------------------------
// A small fast hasher (FxHash). Only fixed dictionaries are inserted, so there
// is no flooding concern; lookups come from untrusted text but never insert.
#[derive(Default, Clone, Copy)]
struct Fx(u64);
const FX_K: u64 = 0x517c_c1b7_2722_0a95;
impl Hasher for Fx {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut h = self.0;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            h = (h.rotate_left(5) ^ w).wrapping_mul(FX_K);
        }
        let r = chunks.remainder();
        if !r.is_empty() {
            let mut b = [0u8; 8];
            b[..r.len()].copy_from_slice(r);
            h = (h.rotate_left(5) ^ u64::from_le_bytes(b) ^ ((r.len() as u64) << 59))
                .wrapping_mul(FX_K);
        }
        self.0 = h;
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.0 = (self.0.rotate_left(5) ^ u64::from(i)).wrapping_mul(FX_K);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}
type FxBuild = BuildHasherDefault<Fx>;
type FxMap<V> = HashMap<Box<str>, V, FxBuild>;
type FxSet = HashSet<Box<str>, FxBuild>;

// ---------------------------------------------------------------------------
// Folding: lower case, accents removed, curly apostrophe to ASCII.

fn fold_char(c: char, out: &mut String) {
    let m: &str = match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => "a",
        'æ' => "ae",
        'ç' | 'ć' | 'č' | 'ĉ' | 'ċ' => "c",
        'ď' | 'đ' | 'ð' => "d",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ė' | 'ę' | 'ě' | 'ĕ' => "e",
        'ğ' | 'ĝ' | 'ġ' | 'ģ' => "g",
        'ĥ' | 'ħ' => "h",
        'ì' | 'í' | 'î' | 'ï' | 'ī' | 'į' | 'ı' | 'ĩ' => "i",
        'ĵ' => "j",
        'ķ' => "k",
        'ł' | 'ľ' | 'ĺ' | 'ļ' => "l",
        'ñ' | 'ń' | 'ň' | 'ņ' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' | 'ơ' => "o",
        'œ' => "oe",
        'ŕ' | 'ř' => "r",
        'ś' | 'š' | 'ş' | 'ș' | 'ŝ' => "s",
        'ß' => "ss",
        'ť' | 'ţ' | 'ț' => "t",
        'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' | 'ư' | 'ũ' | 'ų' => "u",
        'ý' | 'ÿ' => "y",
        'ź' | 'ż' | 'ž' => "z",
        'þ' => "th",
        '\u{2019}' | '\u{2018}' | '`' => "'",
        '\u{2010}' | '\u{2011}' => "-",
        '\u{1EA0}'..='\u{1EB7}' => "a",
        '\u{1EB8}'..='\u{1EC7}' => "e",
        '\u{1EC8}'..='\u{1ECB}' => "i",
        '\u{1ECC}'..='\u{1EE3}' => "o",
        '\u{1EE4}'..='\u{1EF1}' => "u",
        '\u{1EF2}'..='\u{1EF9}' => "y",
        // combining marks (decomposed input): drop
        '\u{0300}'..='\u{036F}' => "",
        _ => {
            out.push(c);
            return;
        }
    };
    out.push_str(m);
}

/// Lower-case and fold `s` into `out` (cleared first).
fn fold_into(s: &str, out: &mut String) {
    out.clear();
    if s.is_ascii() {
        out.push_str(s);
        out.make_ascii_lowercase();
        return;
    }
    for c in s.chars() {
        if c.is_ascii() {
            out.push(c.to_ascii_lowercase());
        } else {
            for l in c.to_lowercase() {
                fold_char(l, out);
            }
        }
    }
}

fn fold(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    fold_into(s, &mut o);
    o
}

/// Keep only letters and digits of the folded key: "First_Name" -> "firstname".
fn norm_key(s: &str, out: &mut String) {
    out.clear();
    if s.is_ascii() {
        // Folding ASCII is lower-casing: no intermediate string.
        out.extend(
            s.bytes()
                .filter(u8::is_ascii_alphanumeric)
                .map(|c| char::from(c.to_ascii_lowercase())),
        );
        return;
    }
    let mut tmp = String::new();
    fold_into(s, &mut tmp);
    out.extend(tmp.chars().filter(|c| c.is_alphanumeric()));
}

#[inline]
fn is_letter(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphabetic()
    } else {
        c.is_alphabetic()
    }
}

#[inline]
fn char_at(s: &str, i: usize) -> Option<char> {
    s.get(i..).and_then(|t| t.chars().next())
}

// ---------------------------------------------------------------------------
// The model.

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Cue {
    Weak = 1,
    Strong = 2,
}

struct CuePhrase {
    /// Preceding words, nearest first.
    prev: Box<[Box<str>]>,
    kind: Cue,
    comma: bool,
    lower: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum FieldKind {
    Single,
    List,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// The position says "person": unknown words are accepted.
    Strong,
    /// The position may hold a person or a thing ("name"): need capitalized
    /// words and, for a single word, dictionary evidence.
    Ambiguous,
}

/// Compiled once; shared read-only across threads (Send + Sync).
pub struct NameModel {
    words: FxMap<u32>,
    phrases: FxSet,
    cues: FxMap<Vec<CuePhrase>>,
    /// (len, first byte & 31) -> bitmask of (last byte & 31) of lower-case cue words.
    lower_sig: [[u32; 32]; 16],
    /// The same signature over every plain lower-case word that the run logic may look
    /// at as context (titles, particles, cue words and the words of cue phrases, lower-case
    /// cues). Any other plain lower-case word is left out of the token list (see `tokenize`).
    keep_sig: [[u32; 32]; 16],
    /// The same signature over determiners: kept only when no plain lower-case word follows.
    det_sig: [[u32; 32]; 16],
    /// The three signatures as class bits (`C_KEEP`, `C_DET`, `C_LOWER`) of one byte per
    /// (len, first byte & 31, last byte & 31), `len` capped at 16 (always `C_KEEP`): a
    /// plain word outside all three is dropped.
    cls: Box<[u8; CLS_LEN]>,
    signoffs: FxSet,
    fields: FxMap<FieldKind>,
    csv_name: FxSet,
    csv_evidence: FxSet,
    key_name: FxSet,
    key_ambiguous: FxSet,
    key_skip: FxSet,
    /// Lower-case (unfolded) stop, title, place, org and determiner entries written with
    /// diacritics. A word with diacritics that folds onto a stop entry but is not one of
    /// these ("Tuấn" vs the title "Tuan", "Åsa" vs the org suffix "ASA") is not that word.
    accented_stop: FxSet,
    /// Identifies this model's word lists (a new id whenever they change): the per-thread
    /// cache of classified words ([`Scratch::cap_cache`]) is only valid for one model.
    id: u64,
}

/// Ids for [`NameModel::id`].
static NEXT_MODEL_ID: AtomicU64 = AtomicU64::new(1);

impl std::fmt::Debug for NameModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NameModel")
            .field("words", &self.words.len())
            .field("phrases", &self.phrases.len())
            .field("cues", &self.cues.len())
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum KeyMode {
    Skip,
    Name(Mode),
    Other,
}

fn list_lines(src: &str) -> impl Iterator<Item = &str> {
    src.lines()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

impl NameModel {
    /// Upper bound in bytes of one detected name, for streaming holdback.
    pub const MAX_LEN: usize = 96;

    /// The built-in model from `filters/names/*.txt`.
    pub fn builtin() -> NameModel {
        let mut m = NameModel {
            words: FxMap::default(),
            phrases: FxSet::default(),
            cues: FxMap::default(),
            lower_sig: [[0; 32]; 16],
            keep_sig: [[0; 32]; 16],
            det_sig: [[0; 32]; 16],
            cls: Box::new([C_KEEP; CLS_LEN]),
            signoffs: FxSet::default(),
            fields: FxMap::default(),
            csv_name: FxSet::default(),
            csv_evidence: FxSet::default(),
            key_name: FxSet::default(),
            key_ambiguous: FxSet::default(),
            key_skip: FxSet::default(),
            accented_stop: FxSet::default(),
            id: 0,
        };
        m.add_names(FIRST_TXT, F_FIRST);
        m.add_names(LAST_TXT, F_LAST);
        m.add_stop(STOP_TXT);
        m.add_cues(CUES_TXT);
        m.finish();
        m
    }

    /// Extra user lists (one name per line) merged into the builtin ones.
    pub fn with_extra(mut self, first: &str, last: &str, stop: &str) -> NameModel {
        self.add_names(first, F_FIRST);
        self.add_names(last, F_LAST);
        self.add_stop(stop);
        self.finish();
        self
    }

    /// Computes the context signatures once every list is loaded.
    fn finish(&mut self) {
        fn set(sig: &mut [[u32; 32]; 16], w: &str) {
            let b = w.as_bytes();
            if !b.is_empty() && b.len() < 16 && b.iter().all(u8::is_ascii_lowercase) {
                sig[b.len()][(b[0] & 31) as usize] |= 1 << (b[b.len() - 1] & 31);
            }
        }
        let mut keep = [[0u32; 32]; 16];
        let mut det = [[0u32; 32]; 16];
        for (w, &f) in &self.words {
            if f & (F_TITLE | F_PARTICLE | F_CUE_LOWER) != 0 {
                set(&mut keep, w);
            } else if f & F_DET != 0 {
                set(&mut det, w);
            }
        }
        for (w, cs) in &self.cues {
            set(&mut keep, w);
            for c in cs {
                for p in c.prev.iter() {
                    set(&mut keep, p);
                }
            }
        }
        *self.cls = [C_KEEP; CLS_LEN];
        for l in 0..16 {
            for c in 0..32 {
                for d in 0..32 {
                    let bit =
                        |sig: &[[u32; 32]; 16], v: u8| u8::from(sig[l][c] & (1 << d) != 0) * v;
                    self.cls[l * 1024 + c * 32 + d] =
                        bit(&keep, C_KEEP) | bit(&det, C_DET) | bit(&self.lower_sig, C_LOWER);
                }
            }
        }
        self.keep_sig = keep;
        self.det_sig = det;
        self.id = NEXT_MODEL_ID.fetch_add(1, Ordering::Relaxed);
    }

    fn add_word(&mut self, w: &str, flag: u32) {
        if w.is_empty() {
            return;
        }
        *self.words.entry(w.into()).or_insert(0) |= flag;
    }

    fn add_names(&mut self, src: &str, flag: u32) {
        for line in list_lines(src) {
            for w in line.split_whitespace() {
                let f = fold(w);
                if f.contains('-') {
                    let joined: String = f.chars().filter(|&c| c != '-').collect();
                    self.add_word(&joined, flag);
                }
                self.add_word(&f, flag);
            }
        }
    }

    fn add_stop(&mut self, src: &str) {
        for line in list_lines(src) {
            self.note_accented(line);
            let f = fold(line);
            if f.contains(' ') {
                let p: Vec<&str> = f.split_whitespace().collect();
                self.phrases.insert(p.join(" ").into());
            } else {
                self.add_word(&f, F_STOP);
            }
        }
    }

    fn add_cues(&mut self, src: &str) {
        let mut section = String::new();
        for line in list_lines(src) {
            if line.starts_with('[') && line.ends_with(']') {
                section = line[1..line.len() - 1].to_string();
                continue;
            }
            let word_flag = match section.as_str() {
                "title" => F_TITLE | F_STOP,
                "particle" => F_PARTICLE,
                "place_prefix" => F_PLACE | F_STOP,
                "org_suffix" => F_ORG | F_STOP,
                "determiner" => F_DET,
                "suffix" => F_SUFFIX,
                "nosolo" => F_NOSOLO,
                _ => 0,
            };
            if word_flag != 0 {
                for w in line.split_whitespace() {
                    if word_flag & F_STOP != 0 || word_flag & F_DET != 0 {
                        self.note_accented(w);
                    }
                    let f = fold(w);
                    self.add_word(&f, word_flag);
                    if let Some(s) = f.strip_suffix('.') {
                        self.add_word(s, word_flag);
                    }
                }
                continue;
            }
            let mut key = String::new();
            match section.as_str() {
                "cue_lower" | "cue_strong" | "cue_weak" => {
                    let f = fold(line);
                    let comma = f.ends_with(',');
                    let f = f.trim_end_matches(',');
                    let mut ws: Vec<&str> = f.split_whitespace().collect();
                    let Some(last) = ws.pop() else { continue };
                    let lower = section == "cue_lower";
                    let kind = if section == "cue_weak" {
                        Cue::Weak
                    } else {
                        Cue::Strong
                    };
                    let prev: Box<[Box<str>]> =
                        ws.iter().rev().map(|w| Box::<str>::from(*w)).collect();
                    if lower {
                        let b = last.as_bytes();
                        if b.len() < 16 {
                            self.lower_sig[b.len()][(b[0] & 31) as usize] |=
                                1 << (b[b.len() - 1] & 31);
                        }
                        self.add_word(last, F_CUE_LOWER);
                    }
                    self.cues.entry(last.into()).or_default().push(CuePhrase {
                        prev,
                        kind,
                        comma,
                        lower,
                    });
                }
                "signoff" => {
                    let f = fold(line);
                    let p: Vec<&str> = f.split_whitespace().collect();
                    self.signoffs.insert(p.join(" ").into());
                }
                "field_single" | "field_list" => {
                    let kind = if section == "field_list" {
                        FieldKind::List
                    } else {
                        FieldKind::Single
                    };
                    for w in line.split_whitespace() {
                        norm_key(w, &mut key);
                        self.fields.insert(key.as_str().into(), kind);
                    }
                }
                "csv_name" | "csv_evidence" | "key_name" | "key_ambiguous" | "key_skip" => {
                    for w in line.split_whitespace() {
                        norm_key(w, &mut key);
                        let set = match section.as_str() {
                            "csv_name" => &mut self.csv_name,
                            "csv_evidence" => &mut self.csv_evidence,
                            "key_name" => &mut self.key_name,
                            "key_ambiguous" => &mut self.key_ambiguous,
                            _ => &mut self.key_skip,
                        };
                        set.insert(key.as_str().into());
                    }
                }
                _ => {}
            }
        }
    }

    fn note_accented(&mut self, w: &str) {
        if !w.is_ascii() {
            let l = w.to_lowercase();
            self.accented_stop.insert(l.trim_end_matches('.').into());
        }
    }

    /// Drops the stop-like flags that `w` only has because folding removed its
    /// diacritics.
    fn accent_override(&self, w: &str, f: u32) -> u32 {
        const STOPPY: u32 = F_STOP | F_TITLE | F_ORG | F_PLACE | F_DET;
        if f & STOPPY == 0 || w.is_ascii() {
            return f;
        }
        let l = w.to_lowercase();
        if self.accented_stop.contains(l.as_str()) {
            return f;
        }
        f & !STOPPY
    }

    #[inline]
    fn lookup(&self, folded: &str) -> u32 {
        self.words.get(folded).copied().unwrap_or(0)
    }

    /// Flags of a capitalized word (folded into `buf`), with fallbacks for
    /// hyphenated and apostrophe compounds and surname shapes.
    fn classify(&self, w: &str, buf: &mut String) -> u32 {
        if is_camel(w) {
            return F_CAMEL;
        }
        fold_into(w, buf);
        let f = self.lookup(buf);
        if f != 0 {
            return self.accent_override(w, f);
        }
        if buf.contains(['-', '\'']) {
            let joined: String = buf.chars().filter(|&c| c != '-').collect();
            let f = self.lookup(&joined);
            if f != 0 {
                return f;
            }
            let mut acc = 0;
            let mut any = false;
            let mut all_stop = true;
            let mut lower_part = false;
            for (pi, part) in buf.split(['-', '\'']).enumerate() {
                // Empty, or the elided particle of "Lacroix-d'Aubigné", "Dell-l'Orto".
                if part.is_empty() || part == "d" || part == "l" {
                    continue;
                }
                let pf = self.lookup(part);
                // "AI-provider", "E-mail": a lower-case part that is not a name makes a compound word.
                if pi > 0 && pf & F_NAME == 0 && pf & F_PARTICLE == 0 {
                    let orig = w.split(['-', '\'', '\u{2019}']).nth(pi).unwrap_or("");
                    if orig.chars().next().is_some_and(|c| c.is_lowercase()) {
                        lower_part = true;
                    }
                }
                if pf & F_PARTICLE != 0 && pf & F_NAME == 0 {
                    continue;
                }
                any = true;
                if is_strong(pf) {
                    acc |= pf & F_NAME;
                }
                if !is_pure_stop(pf) {
                    all_stop = false;
                }
            }
            if lower_part {
                return F_STOP;
            }
            if acc != 0 {
                return acc;
            }
            if any && all_stop {
                return F_STOP;
            }
            if (buf.starts_with("o'") || buf.starts_with("d'")) && buf.len() >= 5 {
                return F_SHAPE;
            }
        }
        let b = w.as_bytes();
        if b.len() >= 5 && b[0] == b'M' && b[1] == b'c' && b[2].is_ascii_uppercase() {
            return F_SHAPE;
        }
        0
    }

    fn key_mode(&self, key: &str) -> KeyMode {
        // For ASCII keys, `norm_key` and the field matcher's normalization agree.
        let mut buf = [0; super::fields::KEY_BUF];
        let mut owned = String::new();
        let k = match super::fields::normalize_ascii(key, &mut buf) {
            Some(k) => k,
            None => {
                norm_key(key, &mut owned);
                owned.as_str()
            }
        };
        if self.key_skip.contains(k) {
            KeyMode::Skip
        } else if self.key_name.contains(k) {
            KeyMode::Name(Mode::Strong)
        } else if self.key_ambiguous.contains(k) {
            KeyMode::Name(Mode::Ambiguous)
        } else {
            KeyMode::Other
        }
    }

    /// Find person names in `text`. `key` is the JSON object key when the text
    /// is a JSON string value (e.g. `Some("full_name")`), `None` for free text.
    /// Returns non-overlapping byte ranges sorted by start; each covers the
    /// whole name (given + family, particles included).
    pub fn find(&self, text: &str, key: Option<&str>) -> Vec<Range<usize>> {
        let mode = key.map(|k| self.key_mode(k));
        if mode == Some(KeyMode::Skip) {
            return Vec::new();
        }
        // The scan's buffers come from this thread's previous scans, so a call on a short
        // text allocates nothing unless it finds a name (see `Scratch`).
        let scratch = SCRATCH.with(|c| c.take());
        let mut sc = Scanner::new(self, text, scratch);
        let mut out = None;
        if let Some(KeyMode::Name(mode)) = mode {
            out = sc.value_name(0, text.len(), mode, true).map(|r| vec![r]);
        }
        let out = out.unwrap_or_else(|| {
            sc.run();
            let mut out = std::mem::take(&mut sc.out);
            normalize(&mut out);
            if self.display_names(text, &mut out) {
                normalize(&mut out);
            }
            if !out.is_empty()
                && (self.nicknames(text, &mut out) | self.comma_pairs(text, &mut out))
            {
                normalize(&mut out);
            }
            out
        });
        let scratch = sc.into_scratch();
        SCRATCH.with(|c| c.replace(scratch));
        out
    }
}

impl NameModel {
    /// `Robert "Bob" Smith`, `Li (Lily) Wang`: a given name, a quoted or bracketed
    /// nickname, then a name that was found. The run stops at the quote, so the given
    /// name would stay; the span is extended over both. Returns whether it changed any.
    fn nicknames(&self, text: &str, out: &mut Vec<Range<usize>>) -> bool {
        let b = text.as_bytes();
        let mut buf = String::new();
        let mut grown = Vec::new();
        for r in out.iter() {
            let Some(close) = r.start.checked_sub(1).filter(|&c| b[c] == b' ') else {
                continue;
            };
            let (open, quote_end) = match text[..close].chars().next_back() {
                Some('"') => ("\"", close - 1),
                Some('\'') => ("'", close - 1),
                Some(')') => ("(", close - 1),
                Some('\u{201D}') => ("\u{201C}", close - 3),
                _ => continue,
            };
            // The nickname: one capitalized word.
            let nick = text[..quote_end]
                .char_indices()
                .rev()
                .take_while(|(_, c)| c.is_alphabetic())
                .last()
                .map_or(quote_end, |(i, _)| i);
            if quote_end - nick > 24
                || !text[nick..].starts_with(char::is_uppercase)
                || !text[..nick].ends_with(open)
            {
                continue;
            }
            let Some(gap) = (nick - open.len()).checked_sub(1).filter(|&g| b[g] == b' ') else {
                continue;
            };
            // The given name: a capitalized word that is not a common word.
            let given = word_start(text, gap, false);
            let word = &text[given..gap];
            if word.chars().count() < 2
                || !word.starts_with(char::is_uppercase)
                || text[..given].ends_with(|c: char| c.is_alphanumeric() || c == '_')
            {
                continue;
            }
            fold_into(word, &mut buf);
            let f = self.lookup(&buf);
            if f & (F_STOP | F_TITLE | F_PLACE | F_ORG) != 0 && !is_strong(f) {
                continue;
            }
            grown.push(given..r.end);
        }
        let any = !grown.is_empty();
        out.extend(grown);
        any
    }

    /// `Gianmarco Colombo <gianmarco.colombo@gmail.com>`, `Floor de Wit <floor@x.nl>`: the
    /// display name before an address in angle brackets (mail headers, git logs and
    /// shortlogs, attendee lists). The capitalized words right before ` <local@domain>`
    /// are a name when the local part holds a known name of them or two of them, or
    /// when there are two or more, none a common word, and one a known name.
    fn display_names(&self, text: &str, out: &mut Vec<Range<usize>>) -> bool {
        let b = text.as_bytes();
        if memchr::memchr(b'@', b).is_none() {
            return false;
        }
        let mut buf = String::new();
        let mut local = String::new();
        let mut any = false;
        for lt in memchr::memchr_iter(b'<', b) {
            // `<local@domain>` with nothing odd inside, one space after the name.
            let Some(gt) = memchr::memchr(b'>', &b[lt..b.len().min(lt + 256)]).map(|i| lt + i)
            else {
                continue;
            };
            let inner = &text[lt + 1..gt];
            let Some((l, domain)) = inner.split_once('@') else {
                continue;
            };
            if l.is_empty() || !domain.contains('.') || inner.contains([' ', '<', '\n']) {
                continue;
            }
            if lt < 2 || b[lt - 1] != b' ' {
                continue;
            }
            // The words before it, right to left.
            let end = lt - 1;
            let mut start = end;
            let (mut words, mut caps) = (0, 0);
            let (mut plain, mut known) = (true, false);
            // Words found in the local part, and whether one of them is a known name.
            let (mut hits, mut known_hit, mut stop_hit) = (0, false, false);
            fold_into(l, &mut local);
            loop {
                let ws = word_start(text, start, true);
                let w = text[ws..start].trim_end_matches('.');
                if w.is_empty() || words == 5 {
                    break;
                }
                fold_into(w, &mut buf);
                let f = self.lookup(&buf);
                if w.starts_with(char::is_uppercase) {
                    caps += 1;
                    plain &= f == 0 || is_strong(f);
                    known |= is_strong(f);
                    if buf.chars().count() >= 3 && local.contains(buf.as_str()) {
                        hits += 1;
                        known_hit |= is_strong(f);
                        stop_hit |= is_pure_stop(f);
                    }
                } else if f & F_PARTICLE == 0 {
                    break;
                }
                words += 1;
                start = ws;
                if start == 0
                    || b[start - 1] != b' '
                    || !text[..start - 1].ends_with(|c: char| c.is_alphabetic())
                {
                    break;
                }
                start -= 1;
            }
            // The run starts with a capitalized word, at a line start or after a
            // separator (a tab, `:`, `,`, `;`, `(`, `"`, `|`, a bullet).
            let before = text[..start].trim_end_matches(' ');
            let sep_ok = before.is_empty()
                || before.ends_with(['\n', '\t', ':', ',', ';', '(', '"', '|', '>', '*', '-']);
            if caps == 0 || !text[start..end].starts_with(char::is_uppercase) || !sep_ok {
                continue;
            }
            // "first.last@": two words of the name; a known name alone also does. Role
            // mailboxes (`Acme Billing <billing@...>`) have neither.
            if known_hit || (hits >= 2 && !stop_hit) || (plain && caps >= 2 && known) {
                out.push(start..end);
                any = true;
            }
        }
        any
    }

    /// Whether `line` is the header row of a table with a name column
    /// (`last_name,first_name,city`): what the scan of a whole text would take as one.
    pub(crate) fn is_csv_header(&self, line: &str) -> bool {
        let b = line.as_bytes();
        if b.len() > 1024 {
            return false;
        }
        let Some((n, delim)) = [b',', b';', b'\t', b'|']
            .into_iter()
            .map(|d| (memchr::memchr_iter(d, b).count(), d))
            .max_by_key(|(n, _)| *n)
        else {
            return false;
        };
        if n == 0 || n > 63 {
            return false;
        }
        let mut key = String::new();
        let mut named = false;
        for (ci, cell) in line.split(delim as char).enumerate() {
            let f = header_cell(cell);
            let f = if ci == 0 { after_lead_in(f) } else { f };
            if f.len() > 40 || f.split_whitespace().count() > 4 || f.contains('@') {
                return false;
            }
            norm_key(f, &mut key);
            named |= self.csv_name.contains(key.as_str());
        }
        named
    }

    /// `Oberhuber, Gisela`, `Sánchez, Francisco`: a list item or field value that is
    /// "family, given" where only one side was found. The other side joins it when the
    /// item holds nothing else (it starts after a line start, bullet or separator and
    /// ends before one), and it is one to three capitalized words that are not common
    /// words, places or organisations. Items where both sides were found stay as two.
    fn comma_pairs(&self, text: &str, out: &mut Vec<Range<usize>>) -> bool {
        let mut buf = String::new();
        let mut grown = Vec::new();
        for (k, r) in out.iter().enumerate() {
            let next_start = out.get(k + 1).map_or(text.len(), |n| n.start);
            let prev_end = k.checked_sub(1).map_or(0, |p| out[p].end);
            // "Found, Other": the other words, then the end of the item.
            if item_start(text, r.start) {
                if let Some(rest) = text[r.end..].strip_prefix(", ") {
                    let from = r.end + 2;
                    if let Some(e) = self.plain_caps(text, from, true, &mut buf) {
                        if e <= next_start && item_end(text, e) && !rest.starts_with(' ') {
                            grown.push(r.start..e);
                            continue;
                        }
                    }
                }
            }
            // "Other, Found".
            if item_end(text, r.end) && r.start >= 2 && text[..r.start].ends_with(", ") {
                let to = r.start - 2;
                let mut s = to;
                for _ in 0..3 {
                    let w = word_start(text, s, false);
                    if w == s {
                        break;
                    }
                    s = w;
                    if !text[..s].ends_with(' ') || item_start(text, s) {
                        break;
                    }
                    s -= 1;
                }
                // The found side must start with a given name ("Oberhuber, Gisela").
                let first = text[r.clone()]
                    .split(|c: char| !(c.is_alphabetic() || c == '-' || c == '\''))
                    .next()
                    .unwrap_or("");
                fold_into(first, &mut buf);
                let f = self.lookup(&buf);
                if s < to
                    && s >= prev_end
                    && f & F_FIRST != 0
                    && is_strong(f)
                    && item_start(text, s)
                    && self.plain_caps(text, s, false, &mut buf) == Some(to)
                {
                    grown.push(s..r.end);
                }
            }
        }
        let any = !grown.is_empty();
        out.extend(grown);
        any
    }

    /// The end of one to three single-spaced capitalized words from `at`, if the words
    /// are all there is before a non-letter and each is a known given name (`given`) or
    /// else a family name or an unknown word (never a common word, place or company).
    fn plain_caps(&self, text: &str, at: usize, given: bool, buf: &mut String) -> Option<usize> {
        let mut i = at;
        for n in 0..3 {
            let e = text[i..]
                .char_indices()
                .find(|(_, c)| !(c.is_alphabetic() || *c == '-' || *c == '\''))
                .map_or(text.len(), |(j, _)| i + j);
            let w = &text[i..e];
            if w.chars().count() < 2 || !w.starts_with(char::is_uppercase) || is_camel(w) {
                return None;
            }
            fold_into(w, buf);
            let f = self.lookup(buf);
            let ok = if given {
                f & F_FIRST != 0 && is_strong(f)
            } else {
                f == 0 || is_strong(f)
            };
            if !ok {
                return None;
            }
            let more = text[e..].strip_prefix(' ');
            match more {
                Some(m) if n < 2 && m.starts_with(char::is_uppercase) => i = e + 1,
                _ => return Some(e),
            }
        }
        None
    }

    /// `tomasz.nowak`, `@lindiwe.dlamini`, `björn.ekström`: a user handle made of a
    /// known given name, a dot and a known family name, for the lower-case word
    /// `text[s..dot]` that the tokenizer found before a dot. Both words must be names of
    /// the lists (not common words), so that code (`user.name`, `os.path`) stays; a
    /// handle followed by `@` is an e-mail address, left to the e-mail filter. Returns
    /// the handle's end.
    fn handle_at(
        &self,
        text: &str,
        ls: usize,
        s: usize,
        dot: usize,
        le: usize,
        buf: &mut String,
    ) -> Option<usize> {
        let word = |c: char| c.is_alphabetic() && c.is_lowercase();
        let e = text[dot + 1..le]
            .char_indices()
            .find(|(_, c)| !word(*c))
            .map_or(le, |(i, _)| dot + 1 + i);
        if dot - s < 2 || e - dot < 3 {
            return None;
        }
        let before = text[ls..s].chars().next_back();
        if before.is_some_and(|c| {
            c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | '\\' | '\'' | '+')
        }) {
            return None;
        }
        let mut after = text[e..le].chars();
        match after.next() {
            Some(c)
                if c.is_alphanumeric() || matches!(c, '_' | '-' | '@' | '(' | '/' | '\'' | '+') =>
            {
                return None;
            }
            Some('.') if after.next().is_some_and(char::is_alphanumeric) => return None,
            _ => {}
        }
        fold_into(&text[s..dot], buf);
        let f = self.lookup(buf);
        if f & F_FIRST == 0 || !is_strong(f) {
            return None;
        }
        fold_into(&text[dot + 1..e], buf);
        let f = self.lookup(buf);
        (f & F_LAST != 0 && is_strong(f)).then_some(e)
    }
}

/// Where the word of a name that ends at `end` starts: letters, `-` and `'` (and `.`
/// for initials when `dots`); `end` when there is none.
fn word_start(text: &str, end: usize, dots: bool) -> usize {
    text[..end]
        .char_indices()
        .rev()
        .take_while(|(_, c)| c.is_alphabetic() || matches!(c, '-' | '\'') || (dots && *c == '.'))
        .last()
        .map_or(end, |(i, _)| i)
}

/// Whether a list item or field value starts at `at`: after the line start, a bullet,
/// or one of `:` `;` `|` `—` `"` `(` `>` and spaces or a tab.
fn item_start(text: &str, at: usize) -> bool {
    let before = text[..at].trim_end_matches([' ', '\t']);
    if at - before.len() == 0 && !before.is_empty() && !before.ends_with(['"', '(', '\n']) {
        return false;
    }
    before.is_empty()
        || before.ends_with([
            '\n', ':', ';', '|', '"', '(', '>', '*', '\u{2014}', '\u{2022}',
        ])
        || (before.ends_with('-')
            && text[before.len()..at].starts_with(' ')
            && before[..before.len() - 1]
                .trim_end_matches([' ', '\t'])
                .ends_with('\n'))
}

/// Whether a list item or field value ends at `at`: the line ends, or one of `;` `|` `<`
/// `(` `"` `,` `[` follows (after spaces).
fn item_end(text: &str, at: usize) -> bool {
    let after = text[at..].trim_start_matches([' ', '\t']);
    after.is_empty() || after.starts_with(['\n', '\r', ';', '|', '<', '(', '"', ',', '['])
}

fn normalize(v: &mut Vec<Range<usize>>) {
    v.retain(|r| r.start < r.end);
    v.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
    // Merged in place: `v[..kept]` is the output so far.
    let mut kept = 0;
    for i in 0..v.len() {
        let r = v[i].clone();
        if kept > 0 && r.start < v[kept - 1].end {
            let last = &mut v[kept - 1];
            if r.end > last.end {
                last.end = r.end;
            }
            continue;
        }
        v[kept] = r;
        kept += 1;
    }
    v.truncate(kept);
}

/// Camel-case words (GitHub, PayPal, JavaScript) are products, not names;
/// McDonald, MacKenzie, DeShawn, LeBron, DiCaprio, O'Brien are fine.
fn is_camel(w: &str) -> bool {
    // No capital after the first letter: not camel case.
    if w.bytes()
        .skip(1)
        .all(|c| c < 0x80 && !c.is_ascii_uppercase())
    {
        return false;
    }
    let mut prev_lower = false;
    let mut upper_inner = 0;
    let mut has_lower = false;
    let mut ok_prefix = true;
    for (i, c) in w.char_indices() {
        if c.is_lowercase() {
            has_lower = true;
            prev_lower = true;
            continue;
        }
        if c.is_uppercase() && prev_lower && i > 0 {
            upper_inner += 1;
            let p = fold(&w[..i]);
            ok_prefix &= matches!(
                p.as_str(),
                "mc" | "mac"
                    | "de"
                    | "la"
                    | "le"
                    | "di"
                    | "da"
                    | "van"
                    | "von"
                    | "du"
                    | "del"
                    | "della"
                    | "fitz"
                    | "st"
                    | "ben"
                    | "abu"
            );
        }
        prev_lower = false;
    }
    has_lower && upper_inner > 0 && (upper_inner > 1 || !ok_prefix)
}

// ---------------------------------------------------------------------------
// Tokens.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum TK {
    /// Starts with an upper-case letter (or a lower-case prefix + capital: al-Farsi, d'Alembert).
    Cap,
    Lower,
    /// One capital letter and a period: "J."
    Initial,
    /// Letters without case (CJK, Thai, Arabic script...).
    Caseless,
    /// Digits, underscores, code or e-mail context, a lone capital letter.
    Other,
}

#[derive(Clone, Copy, Debug)]
struct Tok {
    s: usize,
    e: usize,
    kind: TK,
}

/// The end of the run of ASCII lower-case letters starting at `j` (eight bytes at a time).
#[inline]
fn lower_run_end(b: &[u8], mut j: usize, le: usize) -> usize {
    const HI: u64 = 0x8080_8080_8080_8080;
    while j + 8 <= le {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[j..j + 8]);
        let non = !lower_bytes(u64::from_le_bytes(w)) & HI;
        if non != 0 {
            return j + (non.trailing_zeros() / 8) as usize;
        }
        j += 8;
    }
    while j < le && b[j].is_ascii_lowercase() {
        j += 1;
    }
    j
}

/// High bit of each byte of `x` set when that byte is an ASCII lower-case letter.
#[inline]
fn lower_bytes(x: u64) -> u64 {
    const HI: u64 = 0x8080_8080_8080_8080;
    let lo = x & !HI;
    // High bit of each byte: >= b'a', then >= b'{' (no carry crosses a byte).
    let ge_a = lo + 0x1f1f_1f1f_1f1f_1f1f;
    let ge_brace = lo + 0x0505_0505_0505_0505;
    ge_a & !ge_brace & !x & HI
}

/// Bit `k` set when `b[base + k]` (`base + k < le`) is an ASCII lower-case letter.
///
/// A block that runs past `le` is copied into a zeroed 64-byte buffer first: a zero byte
/// is no letter, so the bits from `le` on stay clear, as a byte-by-byte loop would leave them.
#[inline]
fn lower_mask64(b: &[u8], base: usize, le: usize) -> u64 {
    let mut pad = [0u8; 64];
    let blk: &[u8] = if base + 64 <= le {
        &b[base..base + 64]
    } else {
        pad[..le - base].copy_from_slice(&b[base..le]);
        &pad
    };
    // Last chunk first, shifting in: the serial dependency keeps this scalar, which is
    // about twice as fast as the compiler's vectorized form (SSE2 has no 64-bit multiply).
    let mut m = 0u64;
    for c in blk.chunks_exact(8).rev() {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let h = lower_bytes(u64::from_le_bytes(w)) >> 7;
        // Gather the eight flags (bits 0, 8, .., 56) into the top byte.
        m = (m << 8) | (h.wrapping_mul(0x0102_0408_1020_4080) >> 56);
    }
    m
}

#[inline]
fn sig_hit(sig: &[[u32; 32]; 16], b: &[u8], s: usize, e: usize) -> bool {
    let len = e - s;
    len < 16 && sig[len][(b[s] & 31) as usize] & (1 << (b[e - 1] & 31)) != 0
}

/// The byte before `i` in the line starting at `ls` (a space at the line start).
#[inline]
fn prev_byte(b: &[u8], ls: usize, i: usize) -> u8 {
    if i > ls { b[i - 1] } else { b' ' }
}

/// One plain lower-case word `b[i..j]` (see `tokenize`): kept as a token or left out.
#[inline(always)]
fn plain_word(
    m: &NameModel,
    b: &[u8],
    i: usize,
    j: usize,
    toks: &mut Vec<Tok>,
    keep_after: &mut u8,
    tentative: &mut bool,
) {
    let keep = j - i >= 16 || sig_hit(&m.keep_sig, b, i, j);
    if *tentative && !keep {
        toks.pop();
    }
    *tentative = false;
    if *keep_after > 0 {
        *keep_after -= 1;
    } else if keep {
        *tentative = !sig_hit(&m.lower_sig, b, i, j);
    } else if sig_hit(&m.det_sig, b, i, j) {
        *tentative = true;
    } else {
        return;
    }
    if sig_hit(&m.lower_sig, b, i, j) {
        *keep_after = 6;
    }
    toks.push(Tok {
        s: i,
        e: j,
        kind: TK::Lower,
    });
}

/// Splits `text[ls..le]` into words.
///
/// Plain lower-case words (most of prose) are left out unless the run logic may look at
/// them: every use of a lower-case token is either its flags as a title, particle, cue
/// word, determiner or lower-case cue, or the name right after a lower-case cue (kept:
/// the six words after one), and every look at a neighbour first checks that the gap
/// between the two tokens is a few spaces or punctuation. A word left out sits in that gap,
/// so the check fails just as the flags of the word would have. A determiner only counts
/// right before a capitalized word, so one followed by a plain lower-case word is dropped
/// too, and so is any context word followed by a plain word that is no context word.
/// Handles (`tomasz.nowak`, see [`NameModel::handle_at`]) are found on the way, into
/// `handles`: their words reach the slow path below, as a dot follows the first.
fn tokenize(
    m: &NameModel,
    text: &str,
    ls: usize,
    le: usize,
    toks: &mut Vec<Tok>,
    handles: &mut Vec<Range<usize>>,
    buf: &mut String,
) {
    toks.clear();
    // Only the line is read (every look past a word checks `le` first); cut to it, so
    // that those checks also stand for the bounds checks.
    let b = &text.as_bytes()[..le];
    let mut i = ls;
    // Plain lower-case words still to keep after a lower-case cue.
    let mut keep_after = 0u8;
    // The last token is a context word that the next plain word may make irrelevant.
    let mut tentative = false;
    // Lower-case bytes of `b[base..base + 64]`.
    let mut base = usize::MAX;
    let mut mask = 0u64;
    while i < le {
        let c0 = b[i];
        // A JSON escape left in text (tool-call arguments streamed as a JSON string):
        // `\n` and `\t` separate words, they never start one.
        if c0 == b'\\' && i + 1 < le && matches!(b[i + 1], b'n' | b't' | b'r') {
            i += 2;
            continue;
        }
        if c0 < 0x80 {
            if !c0.is_ascii_alphanumeric() {
                i += 1;
                continue;
            }
        } else {
            let c = char_at(text, i).unwrap_or(' ');
            if !c.is_alphabetic() {
                i += c.len_utf8();
                continue;
            }
        }
        // A word: letters, digits, underscores and inner joiners.
        let st = i;
        let first = if c0 < 0x80 {
            c0 as char
        } else {
            char_at(text, i).unwrap_or(' ')
        };
        if c0.is_ascii_lowercase()
            && matches!(prev_byte(b, ls, i), b' ' | b'(' | b'"' | b'\n' | b'\t')
        {
            // A stretch of plain words each followed by one space, found with a bit mask
            // of the lower-case bytes; each word is handled as the word-by-word path
            // below would.
            if i < base || i - base >= 64 {
                base = i;
                mask = lower_mask64(b, base, le);
            }
            // A context word that the next plain word may drop (`tentative`), held back
            // instead of pushed: most of them are dropped right away.
            let mut pend = Tok {
                s: 0,
                e: 0,
                kind: TK::Lower,
            };
            let mut pend_on = false;
            if tentative {
                if let Some(t) = toks.pop() {
                    pend = t;
                    pend_on = true;
                }
                tentative = false;
            }
            loop {
                let mut rest = !mask >> (i - base);
                if rest == 0 {
                    // The word runs past this block.
                    base = i;
                    mask = lower_mask64(b, base, le);
                    rest = !mask;
                    if rest == 0 {
                        break;
                    }
                }
                let j = i + rest.trailing_zeros() as usize;
                // The word ends at a space, or at `,` `;` `.` `!` `?` and a space.
                let next = if j < le && b[j] == b' ' {
                    j + 1
                } else {
                    let step = if j < le { WORD_END[b[j] as usize] } else { 0 };
                    let ok = step == 1 || (step == 2 && j + 1 < le && b[j + 1] == b' ');
                    if !ok {
                        break;
                    }
                    j + step as usize
                };
                let c = m.cls[(j - i).min(16) * 1024
                    + ((b[i] & 31) as usize) * 32
                    + (b[j - 1] & 31) as usize];
                if c & C_LOWER == 0 && keep_after == 0 {
                    // A plain word drops the held word, a context word keeps it; a
                    // context word or determiner is held in turn.
                    if c & C_KEEP != 0 && pend_on {
                        toks.push(pend);
                    }
                    pend = Tok {
                        s: i,
                        e: j,
                        kind: TK::Lower,
                    };
                    pend_on = c & (C_KEEP | C_DET) != 0;
                } else {
                    if pend_on {
                        toks.push(pend);
                        tentative = true;
                    }
                    plain_word(m, b, i, j, toks, &mut keep_after, &mut tentative);
                    pend_on = false;
                    if tentative {
                        if let Some(t) = toks.pop() {
                            pend = t;
                            pend_on = true;
                        }
                        tentative = false;
                    }
                }
                i = next;
                if i - base >= 64 {
                    base = i;
                    mask = lower_mask64(b, base, le);
                }
                if (mask >> (i - base)) & 1 == 0 {
                    break;
                }
            }
            if pend_on {
                toks.push(pend);
                tentative = true;
            }
            if i != st {
                continue;
            }
        }
        if c0.is_ascii_uppercase() {
            // Fast path for a plain capitalized ASCII word ("The", "Anna").
            let rest = if i >= base && i + 1 - base < 64 {
                !mask >> (i + 1 - base)
            } else {
                0
            };
            let j = if rest != 0 {
                i + 1 + rest.trailing_zeros() as usize
            } else {
                lower_run_end(b, i + 1, le)
            };
            if j > i + 1
                && (j >= le || matches!(b[j], b' ' | b','))
                && matches!(prev_byte(b, ls, i), b' ' | b'(' | b'"' | b'\n' | b'\t')
            {
                tentative = false;
                toks.push(Tok {
                    s: i,
                    e: j,
                    kind: TK::Cap,
                });
                i = j;
                continue;
            }
        }
        if c0.is_ascii_lowercase() {
            // Fast path for plain lower-case ASCII words (most of prose).
            let j = lower_run_end(b, i + 1, le);
            let nb = if j < le { b[j] } else { b' ' };
            if (matches!(nb, b' ' | b',' | b'\n' | b';' | b'!' | b'?' | b')' | b'"')
                || (nb == b'.' && (j + 1 >= le || !b[j + 1].is_ascii_alphanumeric())))
                && matches!(prev_byte(b, ls, i), b' ' | b'(' | b'"' | b'\n' | b'\t')
            {
                plain_word(m, b, i, j, toks, &mut keep_after, &mut tentative);
                i = j;
                continue;
            }
        }
        let mut has_digit = false;
        let mut nchars = 0usize;
        let mut joiner_at: Option<usize> = None; // byte offset of the first joiner
        let mut after_joiner_upper = false;
        let mut j = i;
        let mut skip_to = 0usize;
        while j < le {
            let bj = b[j];
            if bj < 0x80 {
                if bj.is_ascii_alphanumeric() || bj == b'_' {
                    if !bj.is_ascii_alphabetic() {
                        has_digit = true;
                    }
                    j += 1;
                    nchars += 1;
                    continue;
                }
                if bj == b'-' || bj == b'\'' {
                    let nc = char_at(text, j + 1);
                    if nc.is_some_and(is_letter) {
                        if bj == b'\''
                            && matches!(nc, Some('s' | 'S'))
                            && !char_at(text, j + 2).is_some_and(is_letter)
                        {
                            skip_to = j + 2;
                            break;
                        }
                        if joiner_at.is_none() {
                            joiner_at = Some(j - st);
                            after_joiner_upper = nc.is_some_and(|c| c.is_uppercase());
                        }
                        j += 1;
                        continue;
                    }
                }
                break;
            }
            let c = char_at(text, j).unwrap_or(' ');
            if c.is_alphabetic() {
                j += c.len_utf8();
                nchars += 1;
                continue;
            }
            if c == '\u{2019}' {
                let nc = char_at(text, j + 3);
                if nc.is_some_and(is_letter) {
                    if matches!(nc, Some('s' | 'S')) && !char_at(text, j + 4).is_some_and(is_letter)
                    {
                        skip_to = j + 4;
                        break;
                    }
                    if joiner_at.is_none() {
                        joiner_at = Some(j - st);
                        after_joiner_upper = nc.is_some_and(|c| c.is_uppercase());
                    }
                    j += 3;
                    continue;
                }
            }
            break;
        }
        let mut e = j;
        let mut kind = if has_digit || !is_letter(first) {
            TK::Other
        } else if first.is_uppercase() {
            TK::Cap
        } else if first.is_lowercase() {
            if joiner_at.is_some_and(|p| p <= 3) && after_joiner_upper {
                TK::Cap
            } else {
                TK::Lower
            }
        } else {
            TK::Caseless
        };
        let next = if e < le { b[e] } else { b' ' };
        if kind == TK::Lower
            && next == b'.'
            && joiner_at.is_none()
            && e + 1 < le
            && (b[e + 1].is_ascii_lowercase() || b[e + 1] >= 0xC3)
        {
            if let Some(end) = m.handle_at(text, ls, st, e, le, buf) {
                handles.push(st..end);
            }
        }
        // Abbreviated titles with a suffix: "Sig.ra", "Dott.ssa".
        if matches!(kind, TK::Cap | TK::Lower) && nchars <= 4 && next == b'.' {
            let mut k = e + 1;
            while k < le && k < e + 5 && b[k].is_ascii_lowercase() {
                k += 1;
            }
            if k > e + 1
                && k - e - 1 <= 3
                && (k >= le || !b[k].is_ascii_alphanumeric())
                && (k >= le || b[k] != b'.')
            {
                let f = fold(&text[st..k]);
                if matches!(
                    f.as_str(),
                    "sig.ra" | "sig.na" | "sig.ri" | "dott.ssa" | "gent.mo" | "gent.ma"
                ) {
                    tentative = false;
                    toks.push(Tok { s: st, e: k, kind });
                    i = k;
                    continue;
                }
            }
        }
        if kind == TK::Cap && nchars == 1 {
            if next == b'.' {
                kind = TK::Initial;
                e += 1;
            } else {
                kind = TK::Other;
            }
        }
        if kind != TK::Initial && kind != TK::Other {
            // Code / e-mail / path context.
            let prev = if st > ls { b[st - 1] } else { b' ' };
            let prev2 = if st > ls + 1 { b[st - 2] } else { b' ' };
            let next2 = if e + 1 < le { b[e + 1] } else { b' ' };
            if matches!(
                prev,
                b'@' | b'/' | b'\\' | b'#' | b'$' | b'_' | b'=' | b'<' | b'`'
            ) || (prev == b'.' && prev2.is_ascii_alphanumeric())
                || matches!(next, b'@' | b'/' | b'\\' | b'_' | b'(' | b'=' | b'<' | b'`')
                || (next == b'.' && next2.is_ascii_alphanumeric())
            {
                kind = TK::Other;
            }
        }
        tentative = false;
        if kind == TK::Lower && sig_hit(&m.lower_sig, b, st, e) {
            keep_after = 6;
        }
        toks.push(Tok { s: st, e, kind });
        i = if skip_to > e { skip_to } else { e.max(st + 1) };
    }
}

/// Single spaces or tabs (or one no-break space) between two words of a name.
#[inline]
fn joinable(text: &str, a: usize, b: usize, allow_empty: bool) -> bool {
    if a >= b {
        return allow_empty && a == b;
    }
    let g = &text.as_bytes()[a..b];
    if g.len() <= 2 && g.iter().all(|&c| c == b' ') {
        return true;
    }
    g == [0xC2, 0xA0]
}

/// Gap between a cue and a name: spaces, optionally after one of `,` `:`.
/// Returns (ok, has_comma).
fn cue_gap(g: &str) -> (bool, bool) {
    let b = g.as_bytes();
    let mut k = 0;
    let mut comma = false;
    if k < b.len() && matches!(b[k], b',' | b':') {
        comma = b[k] == b',';
        k += 1;
    }
    let rest = &b[k..];
    if rest.is_empty() || rest.len() > 3 || !rest.iter().all(|&c| c == b' ' || c == b'\t') {
        return (rest == [0xC2, 0xA0], comma);
    }
    (true, comma)
}

/// Gap after a title: optional period, then spaces.
fn title_gap(g: &str) -> bool {
    let g = g.strip_prefix('.').unwrap_or(g);
    !g.is_empty() && g.len() <= 3 && g.bytes().all(|c| c == b' ' || c == b'\t')
}

/// At a sentence start: only spaces, quotes or brackets back to the line start
/// or to one of `. ! ? : ; > - *`.
fn sentence_start(text: &str, ls: usize, pos: usize) -> bool {
    let b = text.as_bytes();
    let mut k = pos;
    while k > ls {
        let c = b[k - 1];
        match c {
            b' ' | b'\t' | b'"' | b'\'' | b'(' | b'[' | b'*' | b'_' => k -= 1,
            b'.' | b'!' | b'?' | b':' | b';' | b'>' | b'-' => return true,
            _ => return false,
        }
    }
    true
}

#[derive(Clone, Copy, Debug)]
struct RunInfo {
    first: usize,
    last: usize,
    s: usize,
    e: usize,
    accepted: bool,
    eligible: bool,
    words: usize,
}

#[derive(Clone, Copy, Debug)]
struct CsvState {
    delim: u8,
    ncols: usize,
    cols: [(u8, Mode); 8],
    ncols_name: usize,
}

/// The reusable buffers of a [`Scanner`], kept per thread between calls of
/// [`NameModel::find`]: the sidecar scans a few short strings per request, and
/// allocating (and zeroing the word cache) for each cost more than scanning them.
#[derive(Default)]
struct Scratch {
    toks: Vec<Tok>,
    flags: Vec<u32>,
    members: Vec<usize>,
    runs: Vec<RunInfo>,
    buf: String,
    buf2: String,
    fields: Vec<(usize, usize)>,
    handles: Vec<Range<usize>>,
    cap_cache: Vec<(u128, u32)>,
    /// The [`NameModel::id`] that `cap_cache` was filled for.
    cap_model: u64,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::default();
}

struct Scanner<'a> {
    m: &'a NameModel,
    text: &'a str,
    out: Vec<Range<usize>>,
    /// Working buffers, reused across scans on this thread. Their `cap_cache` holds the
    /// flags of short ASCII capitalized words seen before (raw bytes -> flags), so
    /// sentence openers are classified once: a word's flags depend only on the word and
    /// the model, so that cache lives on across texts (per thread, for one model).
    s: Scratch,
}

impl<'a> Scanner<'a> {
    /// A scanner over `text` with buffers from an earlier scan, emptied here so that no
    /// state carries over (except the word cache, when it was filled for this model).
    fn new(m: &'a NameModel, text: &'a str, mut s: Scratch) -> Self {
        s.toks.clear();
        s.flags.clear();
        s.members.clear();
        s.runs.clear();
        s.buf.clear();
        s.buf2.clear();
        s.fields.clear();
        if s.cap_model != m.id {
            s.cap_cache.clear();
            s.cap_model = m.id;
        }
        Scanner {
            m,
            text,
            out: Vec::new(),
            s,
        }
    }

    /// The buffers back, for the next scan on this thread.
    fn into_scratch(self) -> Scratch {
        self.s
    }

    fn push(&mut self, s: usize, e: usize) {
        if e > s && e - s <= NameModel::MAX_LEN {
            self.out.push(s..e);
        }
    }

    fn run(&mut self) {
        let text = self.text;
        let b = text.as_bytes();
        let n = b.len();
        let mut ls = 0;
        let mut csv: Option<CsvState> = None;
        let mut signoff: u8 = 0;
        loop {
            let nl = memchr::memchr(b'\n', &b[ls..]).map_or(n, |p| ls + p);
            let mut le = nl;
            if le > ls && b[le - 1] == b'\r' {
                le -= 1;
            }
            let line = &text[ls..le];
            if line.trim().is_empty() {
                csv = None;
                signoff = signoff.saturating_sub(1);
            } else {
                if signoff > 0 {
                    signoff = 0;
                    self.signoff_name(ls, le);
                }
                if le - ls <= 48 && self.is_signoff(line) {
                    signoff = 2;
                }
                if le - ls <= 64 {
                    self.family_given_line(ls, le);
                }
                self.csv_line(ls, le, &mut csv);
                self.field_line(ls, le);
                self.inline_kv(ls, le);
                self.kv_equals(ls, le);
                self.generic(ls, le);
            }
            if nl >= n {
                break;
            }
            ls = nl + 1;
        }
    }

    // ----- flags ---------------------------------------------------------

    fn flag(&mut self, i: usize) -> u32 {
        let f = self.s.flags[i];
        if f != UNSET {
            return f;
        }
        let t = self.s.toks[i];
        let f = match t.kind {
            TK::Cap if t.e - t.s <= 16 => {
                // The word's bytes, zero-padded, as the cache key: sentence openers up to
                // 16 bytes ("Sometimes", "Additionally") are classified once. Two 8-byte
                // loads and a mask where the text goes on for 16 bytes (no copy of a
                // variable length); a word with a non-ASCII byte is not cached.
                let tb = self.text.as_bytes();
                let len = t.e - t.s;
                let mut k = [0u8; 16];
                if t.s + 16 <= tb.len() {
                    k.copy_from_slice(&tb[t.s..t.s + 16]);
                } else {
                    k[..len].copy_from_slice(&tb[t.s..t.e]);
                }
                let key = u128::from_le_bytes(k) & (u128::MAX >> (128 - 8 * len));
                if key & 0x8080_8080_8080_8080_8080_8080_8080_8080 != 0 {
                    self.m.classify(&self.text[t.s..t.e], &mut self.s.buf)
                } else {
                    if self.s.cap_cache.is_empty() {
                        self.s.cap_cache = vec![(0, 0); 256];
                    }
                    let fold = (key as u64) ^ ((key >> 64) as u64).rotate_left(29);
                    let slot = (fold.wrapping_mul(FX_K) >> 56) as usize;
                    let (ck, cf) = self.s.cap_cache[slot];
                    if ck == key {
                        cf
                    } else {
                        let f = self.m.classify(&self.text[t.s..t.e], &mut self.s.buf);
                        self.s.cap_cache[slot] = (key, f);
                        f
                    }
                }
            }
            TK::Cap => self.m.classify(&self.text[t.s..t.e], &mut self.s.buf),
            TK::Lower => {
                fold_into(&self.text[t.s..t.e], &mut self.s.buf);
                self.m.lookup(&self.s.buf)
            }
            _ => 0,
        };
        self.s.flags[i] = f;
        f
    }

    fn word_eq(&mut self, i: usize, w: &str) -> bool {
        let t = self.s.toks[i];
        fold_into(&self.text[t.s..t.e], &mut self.s.buf2);
        self.s.buf2 == w
    }

    // ----- cues ----------------------------------------------------------

    /// The cue right before token `i`, if any.
    fn cue_before(&mut self, i: usize, need_lower: bool) -> Option<Cue> {
        if i == 0 {
            return None;
        }
        let p = i - 1;
        let pt = self.s.toks[p];
        let gap = &self.text[pt.e..self.s.toks[i].s];
        if matches!(pt.kind, TK::Cap | TK::Lower) {
            let pf = self.flag(p);
            if pf & F_TITLE != 0 && title_gap(gap) && !need_lower {
                return Some(Cue::Strong);
            }
        }
        let (ok, comma) = cue_gap(gap);
        if !ok || !matches!(pt.kind, TK::Cap | TK::Lower) {
            return None;
        }
        fold_into(&self.text[pt.s..pt.e], &mut self.s.buf2);
        let m = self.m;
        let cands = m.cues.get(self.s.buf2.as_str())?;
        let mut best: Option<Cue> = None;
        'c: for c in cands {
            if c.comma && !comma {
                continue;
            }
            if need_lower && !c.lower {
                continue;
            }
            let mut k = p;
            for w in c.prev.iter() {
                if k == 0 {
                    continue 'c;
                }
                let q = k - 1;
                if !joinable(self.text, self.s.toks[q].e, self.s.toks[k].s, false)
                    || !self.word_eq(q, w)
                {
                    continue 'c;
                }
                k = q;
            }
            if best.is_none_or(|b| c.kind > b) {
                best = Some(c.kind);
            }
        }
        best
    }

    // ----- generic runs ----------------------------------------------------

    // Kept out of `run`: inlined there, the tokenizer loop compiles to slower code.
    #[inline(never)]
    fn generic(&mut self, ls: usize, le: usize) {
        let text = self.text;
        let mut toks = std::mem::take(&mut self.s.toks);
        let mut handles = std::mem::take(&mut self.s.handles);
        handles.clear();
        tokenize(
            self.m,
            text,
            ls,
            le,
            &mut toks,
            &mut handles,
            &mut self.s.buf,
        );
        self.s.toks = toks;
        for r in &handles {
            self.push(r.start, r.end);
        }
        self.s.handles = handles;
        let n = self.s.toks.len();
        self.s.flags.clear();
        self.s.flags.resize(n, UNSET);
        self.s.runs.clear();
        let mut i = 0;
        while i < n {
            let t = self.s.toks[i];
            match t.kind {
                TK::Lower => {
                    i = self.lower_cue(i);
                    continue;
                }
                TK::Cap | TK::Initial => {}
                _ => {
                    i += 1;
                    continue;
                }
            }
            if t.kind == TK::Cap {
                let f = self.flag(i);
                if f & (F_CAMEL | F_TITLE) != 0 || (is_pure_stop(f) && f & F_PARTICLE == 0) {
                    i += 1;
                    continue;
                }
            }
            i = self.build_run(i, ls) + 1;
        }
        self.propagate_lists();
    }

    /// A lower-case cue ("my name is") followed by a lower-case dictionary name.
    fn lower_cue(&mut self, i: usize) -> usize {
        let t = self.s.toks[i];
        let b = self.text.as_bytes();
        let len = t.e - t.s;
        if len >= 16
            || (self.m.lower_sig[len][(b[t.s] & 31) as usize] & (1 << (b[t.e - 1] & 31))) == 0
        {
            return i + 1;
        }
        let n = self.s.toks.len();
        if i + 1 >= n
            || self.s.toks[i + 1].kind != TK::Lower
            || !joinable(self.text, t.e, self.s.toks[i + 1].s, false)
        {
            return i + 1;
        }
        if self.flag(i) & F_CUE_LOWER == 0 {
            return i + 1;
        }
        let f1 = self.flag(i + 1);
        if !is_strong(f1) || f1 & F_PARTICLE != 0 {
            return i + 1;
        }
        if self.cue_before(i + 1, true).is_none() {
            return i + 1;
        }
        let mut last = i + 1;
        let mut k = i + 2;
        while k < n
            && k <= i + 6
            && self.s.toks[k].kind == TK::Lower
            && joinable(self.text, self.s.toks[k - 1].e, self.s.toks[k].s, false)
        {
            let f = self.flag(k);
            if is_strong(f) && f & F_PARTICLE == 0 {
                last = k;
            } else if f & F_PARTICLE == 0 {
                break;
            }
            k += 1;
        }
        let (s, e) = (self.s.toks[i + 1].s, self.s.toks[last].e);
        self.push(s, e);
        last + 1
    }

    /// Builds and judges the capitalized run starting at token `i`; returns the
    /// index of its last token.
    fn build_run(&mut self, i: usize, ls: usize) -> usize {
        let text = self.text;
        let n = self.s.toks.len();
        self.s.members.clear();
        self.s.members.push(i);
        let mut j = i;
        while self.s.members.len() < 12 {
            let nj = j + 1;
            if nj >= n
                || !joinable(
                    text,
                    self.s.toks[j].e,
                    self.s.toks[nj].s,
                    self.s.toks[j].kind == TK::Initial,
                )
            {
                break;
            }
            match self.s.toks[nj].kind {
                TK::Initial => {
                    self.s.members.push(nj);
                    j = nj;
                }
                TK::Cap => {
                    let f = self.flag(nj);
                    if f & (F_CAMEL | F_TITLE) != 0 || (is_pure_stop(f) && f & F_PARTICLE == 0) {
                        if is_pure_stop(f) && self.absorbable(j, nj) {
                            // "Luis Zaragoza", "Jodie Shepherd": a word after a given name.
                            self.s.members.push(nj);
                        }
                        break;
                    }
                    self.s.members.push(nj);
                    j = nj;
                }
                TK::Lower => {
                    let mut k = nj;
                    while k < n
                        && k < nj + 3
                        && self.s.toks[k].kind == TK::Lower
                        && self.flag(k) & F_PARTICLE != 0
                    {
                        if k > nj && !joinable(text, self.s.toks[k - 1].e, self.s.toks[k].s, false)
                        {
                            break;
                        }
                        k += 1;
                    }
                    if k == nj
                        || k >= n
                        || self.s.toks[k].kind != TK::Cap
                        || !joinable(text, self.s.toks[k - 1].e, self.s.toks[k].s, false)
                    {
                        break;
                    }
                    let f = self.flag(k);
                    if f & (F_CAMEL | F_TITLE) != 0 || (is_pure_stop(f) && f & F_PARTICLE == 0) {
                        break;
                    }
                    for q in nj..=k {
                        self.s.members.push(q);
                    }
                    j = k;
                }
                _ => break,
            }
        }
        let end_tok = j;
        // Trim particles at the edges (not names themselves).
        while self.s.members.len() > 1 {
            let l = *self.s.members.last().unwrap_or(&i);
            let f = self.flag(l);
            if f & F_PARTICLE != 0 && f & F_NAME == 0 && self.s.toks[l].kind != TK::Initial {
                self.s.members.pop();
            } else {
                break;
            }
        }
        // Count evidence.
        let mut strong = 0usize;
        let mut weak = 0usize;
        let mut unknown = 0usize;
        let mut initials = 0usize;
        let mut first_only = false;
        let mut single_flag = 0u32;
        let mut allcaps_unknown = 0usize;
        for idx in 0..self.s.members.len() {
            let q = self.s.members[idx];
            let t = self.s.toks[q];
            if t.kind == TK::Initial {
                initials += 1;
                continue;
            }
            let f = self.flag(q);
            if t.kind == TK::Lower || (f & F_PARTICLE != 0 && f & F_NAME == 0) {
                continue;
            }
            single_flag = f;
            if is_strong(f) {
                strong += 1;
                if idx == 1 && f & F_FIRST != 0 && f & F_LAST == 0 {
                    first_only = true;
                }
            } else if f & F_NAME != 0 {
                weak += 1;
            } else {
                unknown += 1;
                let w = &text[t.s..t.e];
                if !w.chars().any(|c| c.is_lowercase()) {
                    allcaps_unknown += 1;
                }
            }
        }
        let mut words = strong + weak + unknown;
        let first_tok = self.s.members[0];
        let mut s = self.s.toks[first_tok].s;
        let last_tok = *self.s.members.last().unwrap_or(&first_tok);
        let e = self.s.toks[last_tok].e;

        let mut cue = self.cue_before(first_tok, false);
        // "Frau von Bülow", "mevrouw de Groot", "sig.ra de La Fontaine": a title or
        // greeting before lower-case particles; the particles belong to the name.
        if cue != Some(Cue::Strong) {
            let mut p = first_tok;
            while p > 0
                && first_tok - p < 3
                && self.s.toks[p - 1].kind == TK::Lower
                && joinable(text, self.s.toks[p - 1].e, self.s.toks[p].s, false)
                && self.flag(p - 1) & F_PARTICLE != 0
            {
                p -= 1;
            }
            if p < first_tok && self.cue_before(p, false) == Some(Cue::Strong) {
                cue = Some(Cue::Strong);
                s = self.s.toks[p].s;
            }
        }
        // Place prefix right before ("San Francisco"), org suffix right after ("Acme Corp").
        let mut blocked = false;
        if first_tok > 0 {
            let p = first_tok - 1;
            let pt = self.s.toks[p];
            if pt.kind == TK::Cap
                && self.flag(p) & F_PLACE != 0
                && title_gap(&text[pt.e..self.s.toks[first_tok].s])
            {
                blocked = true;
            }
        }
        if end_tok + 1 < n {
            let q = end_tok + 1;
            if self.s.toks[q].kind == TK::Cap
                && joinable(text, self.s.toks[end_tok].e, self.s.toks[q].s, false)
                && self.flag(q) & F_ORG != 0
            {
                blocked = true;
            }
        }
        // An unknown capitalized word at a sentence start before a given name
        // is usually a verb or interjection ("Congrats Anna").
        if cue.is_none()
            && self.s.members.len() >= 2
            && first_only
            && self.s.toks[first_tok].kind == TK::Cap
            && self.flag(first_tok) & F_NAME == 0
            && allcaps_unknown == 0
            && sentence_start(text, ls, s)
        {
            words -= 1;
            unknown -= 1;
            s = self.s.toks[self.s.members[1]].s;
        }
        let nosolo = words == 1 && single_flag & F_NOSOLO != 0;
        let mut accept =
            match cue {
                Some(Cue::Strong) => words >= 1 && !nosolo,
                Some(Cue::Weak) => {
                    strong >= 1
                        || (weak >= 1 && (words >= 2 || initials >= 1))
                        || ((2..=3).contains(&words)
                            && !self.s.members.iter().any(|&q| {
                                common_word_shape(&text[self.s.toks[q].s..self.s.toks[q].e])
                            }))
                }
                None => false,
            };
        if !accept && cue.is_none_or(|c| c == Cue::Weak) {
            if strong >= 1 && (words >= 2 || initials >= 1) {
                accept = true;
            } else if strong == 1
                && words == 1
                && !nosolo
                && allcaps_single(text, &self.s.toks, first_tok, last_tok)
            {
                // A lone dictionary name: not after a determiner ("der Koch").
                let det = first_tok > 0 && {
                    let p = first_tok - 1;
                    self.s.toks[p].kind == TK::Lower
                        && joinable(text, self.s.toks[p].e, s, false)
                        && self.flag(p) & F_DET != 0
                };
                accept = !det;
            } else if initials >= 1
                && unknown >= 1
                && weak == 0
                && self.s.toks[first_tok].kind == TK::Initial
                && e - s >= 5
            {
                // "J. Kowalczyk"
                accept = true;
            } else if weak >= 1 && words >= 2 && strong == 0 && unknown >= 1 && allcaps_unknown >= 1
            {
                // "PARK Ji-yeon" style: an upper-case family name beside a given name.
                accept = true;
            }
        }
        // "Dear Valued Customer", "Hi Hiring Manager": a title-case phrase, not a name.
        if accept && strong == 0 && end_tok + 1 < n {
            let q = end_tok + 1;
            if self.s.toks[q].kind == TK::Cap
                && joinable(text, self.s.toks[end_tok].e, self.s.toks[q].s, false)
                && is_pure_stop(self.flag(q))
            {
                accept = false;
            }
        }
        // "Der Koch", "La Rosa": an article, not a particle, before one word.
        if accept && cue.is_none() && words == 1 && self.s.members.len() >= 2 {
            let f0 = self.flag(first_tok);
            if f0 & F_DET != 0 && f0 & F_PARTICLE != 0 && self.s.toks[first_tok].kind == TK::Cap {
                accept = false;
            }
        }
        if accept && blocked {
            accept = false;
        }
        if accept && words >= 2 && self.is_stop_phrase(first_tok, last_tok) {
            accept = false;
        }
        if accept && e - s > NameModel::MAX_LEN {
            accept = false;
        }
        let eligible = !accept
            && !blocked
            && (2..=4).contains(&words)
            && initials == 0
            && e - s <= NameModel::MAX_LEN;
        if accept {
            self.push(s, e);
            // "Müller, Hans": a family name (or upper-case word) right before, joined by a comma.
            if let Some(prev) = self.s.runs.last().copied() {
                if prev.words == 1
                    && prev.last + 1 == first_tok
                    && words <= 2
                    && self.flag(first_tok) & F_FIRST != 0
                {
                    let gap = &text[prev.e..s];
                    let pf = self.flag(prev.first);
                    let pw = &text[prev.s..prev.e];
                    let caps = pw.chars().count() >= 2 && !pw.chars().any(|c| c.is_lowercase());
                    // Alone on its line ("Zaranek, Jerzy"), an unknown capitalized word also counts.
                    let alone = sentence_start(text, ls, prev.s)
                        && text[e..]
                            .split('\n')
                            .next()
                            .is_some_and(|r| r.trim().is_empty());
                    let pf_ok = pf & F_LAST != 0
                        || (caps && !is_pure_stop(pf))
                        || (alone && !is_pure_stop(pf) && pf & F_CAMEL == 0);
                    if cue_gap(gap) == (true, true) && gap.starts_with(',') && pf_ok {
                        self.push(prev.s, e);
                    }
                }
            }
        }
        self.s.runs.push(RunInfo {
            first: first_tok,
            last: last_tok,
            s,
            e,
            accepted: accept,
            eligible,
            words,
        });
        end_tok
    }

    /// May the stop-listed capitalized word `k` still be the family name
    /// after the given name `j`? Only a plain word that ends the run.
    fn absorbable(&mut self, j: usize, k: usize) -> bool {
        let fj = self.flag(j);
        if self.s.toks[j].kind != TK::Cap || fj & F_FIRST == 0 || !is_strong(fj) || fj & F_LAST != 0
        {
            return false;
        }
        let fk = self.flag(k);
        if fk & (F_ORG | F_PLACE | F_TITLE | F_DET | F_PARTICLE | F_CUE_LOWER | F_NOSOLO) != 0 {
            return false;
        }
        let t = self.s.toks[k];
        let w = &self.text[t.s..t.e];
        if w.len() < 4 || !w.chars().skip(1).all(|c| c.is_lowercase() || c == '-') {
            return false;
        }
        fold_into(w, &mut self.s.buf2);
        if self.m.cues.contains_key(self.s.buf2.as_str())
            || self.m.signoffs.contains(self.s.buf2.as_str())
        {
            return false;
        }
        let n = self.s.toks.len();
        !(k + 1 < n
            && self.s.toks[k + 1].kind == TK::Cap
            && joinable(self.text, t.e, self.s.toks[k + 1].s, false))
    }

    fn is_stop_phrase(&mut self, first: usize, last: usize) -> bool {
        if self.m.phrases.is_empty() {
            return false;
        }
        let mut words: Vec<String> = Vec::new();
        for q in first..=last {
            let t = self.s.toks[q];
            words.push(fold(&self.text[t.s..t.e]).replace('-', " "));
        }
        let all = words.join(" ");
        if self.m.phrases.contains(all.as_str()) {
            return true;
        }
        for w in words.windows(2) {
            let p = format!("{} {}", w[0], w[1]);
            if self.m.phrases.contains(p.as_str()) {
                return true;
            }
        }
        words
            .iter()
            .any(|w| w.contains(' ') && self.m.phrases.contains(w.as_str()))
    }

    /// In "Priya Patel, Kwabena Osei and Yuki Tanaka", unknown runs shaped like
    /// their accepted neighbours are names too.
    fn propagate_lists(&mut self) {
        let nr = self.s.runs.len();
        if nr < 2 {
            return;
        }
        for _pass in 0..2 {
            for k in 0..nr {
                let r = self.s.runs[k];
                if r.accepted || !r.eligible {
                    continue;
                }
                let mut ok = false;
                if k > 0 {
                    let p = self.s.runs[k - 1];
                    ok |= p.accepted && p.words >= 2 && list_sep(&self.text[p.e..r.s]);
                }
                if k + 1 < nr {
                    let q = self.s.runs[k + 1];
                    ok |= q.accepted && q.words >= 2 && list_sep(&self.text[r.e..q.s]);
                }
                if ok {
                    self.s.runs[k].accepted = true;
                    self.push(r.s, r.e);
                }
            }
        }
    }

    // ----- values in strong positions --------------------------------------

    /// Is `text[s..e]` (a JSON value, CSV cell, header field item, sign-off
    /// line) a person's name? Returns the span of the name inside it.
    fn value_name(
        &mut self,
        s: usize,
        e: usize,
        mode: Mode,
        allow_lower: bool,
    ) -> Option<Range<usize>> {
        let text = self.text;
        let (mut s, mut e) = trim_span(text, s, e);
        // "Name <mail@x>" and "Name (Team)"
        if text[s..e].ends_with('>') {
            if let Some(p) = text[s..e].rfind('<') {
                e = s + p;
                (s, e) = trim_span(text, s, e);
            }
        }
        if text[s..e].ends_with(')') {
            if let Some(p) = text[s..e].rfind('(') {
                e = s + p;
                (s, e) = trim_span(text, s, e);
            }
        }
        loop {
            let v = &text[s..e];
            let c = v.chars().next()?;
            if matches!(
                c,
                '"' | '\'' | '`' | '*' | '“' | '”' | '‘' | '’' | '«' | '»'
            ) {
                s += c.len_utf8();
                continue;
            }
            let c = v.chars().next_back()?;
            if matches!(
                c,
                '"' | '\'' | '`' | '*' | '“' | '”' | '‘' | '’' | '«' | '»' | ',' | ';' | ':'
            ) {
                e -= c.len_utf8();
                continue;
            }
            if v.trim() != v {
                (s, e) = trim_span(text, s, e);
                continue;
            }
            break;
        }
        if e <= s || e - s > NameModel::MAX_LEN {
            return None;
        }
        let v = &text[s..e];
        if v.bytes()
            .any(|c| c.is_ascii_digit() || b"@_/\\=<>{}[]|#$%+:;!?&\n\r\t".contains(&c))
        {
            return None;
        }
        // Words.
        let mut span_s = usize::MAX;
        let mut span_e = 0usize;
        let mut cap = 0usize;
        let mut lower = 0usize;
        let mut lower_known = 0usize;
        let mut caseless = 0usize;
        let mut strong = 0usize;
        let mut commas = 0usize;
        let mut stops = 0usize;
        let mut nwords = 0usize;
        let mut initials = 0usize;
        let mut any_name = false;
        let mut idx = 0usize;
        let mut pos = s;
        let words: Vec<(usize, usize)> = {
            let mut w = Vec::new();
            for part in v.split(' ') {
                let ps = pos;
                pos += part.len() + 1;
                if !part.is_empty() {
                    w.push((ps, ps + part.len()));
                }
            }
            w
        };
        let count = words.len();
        if count == 0 || count > 9 {
            return None;
        }
        for &(ws, we0) in &words {
            let mut we = we0;
            let mut w = &text[ws..we];
            if let Some(x) = w.strip_suffix(',') {
                commas += 1;
                if commas > 1 {
                    return None;
                }
                w = x;
                we -= 1;
            }
            let i_this = idx;
            idx += 1;
            if w.is_empty() {
                return None;
            }
            // Initials "J." / "J.R."
            if is_initials(w) {
                span_s = span_s.min(ws);
                span_e = we;
                initials += 1;
                continue;
            }
            let last_word = i_this + 1 == count;
            if w.ends_with('.') {
                let f = self.m.lookup(&fold(&w[..w.len() - 1]));
                if i_this == 0 && count > 1 && f & F_TITLE != 0 {
                    continue; // "Dr. Anna Smith": the title is not part of the span
                }
                if f & F_SUFFIX != 0 && i_this > 0 {
                    span_e = we;
                    continue;
                }
                if last_word && w.len() > 3 {
                    w = &w[..w.len() - 1];
                    we -= 1;
                } else {
                    return None;
                }
            }
            if !w
                .chars()
                .all(|c| is_letter(c) || c == '-' || c == '\'' || c == '\u{2019}')
            {
                return None;
            }
            let first = w.chars().next().unwrap_or(' ');
            if !is_letter(first) {
                return None;
            }
            let f = if first.is_uppercase() {
                self.m.classify(w, &mut self.s.buf)
            } else {
                fold_into(w, &mut self.s.buf);
                self.m.lookup(&self.s.buf)
            };
            if i_this == 0 && count > 1 && f & F_TITLE != 0 && first.is_uppercase() {
                continue; // "Mr Smith"
            }
            if f & F_PARTICLE != 0 && (f & F_NAME == 0 || first.is_lowercase()) && !last_word {
                if span_s == usize::MAX {
                    span_s = ws;
                }
                continue;
            }
            if f & F_SUFFIX != 0 && i_this > 0 {
                span_e = we;
                continue;
            }
            if f & F_CAMEL != 0 || w.chars().count() > 24 {
                return None;
            }
            nwords += 1;
            if is_pure_stop(f) {
                if mode == Mode::Ambiguous || f & (F_ORG | F_TITLE) != 0 {
                    return None;
                }
                stops += 1;
            }
            if is_strong(f) {
                strong += 1;
            }
            any_name |= f & F_NAME != 0;
            if first.is_uppercase() {
                cap += 1;
            } else if first.is_lowercase() {
                lower += 1;
                if is_strong(f) {
                    lower_known += 1;
                }
            } else {
                caseless += 1;
            }
            span_s = span_s.min(ws);
            span_e = we;
        }
        if nwords == 0 || nwords > 6 || span_s >= span_e {
            return None;
        }
        // "Sanaya Sur" is fine, "Test User" is not.
        if stops > 0 && (strong == 0 || stops >= nwords) {
            return None;
        }
        if caseless > 0 && (mode != Mode::Strong || cap + lower > 0) {
            return None;
        }
        if lower > 0 {
            if cap > 0 {
                return None;
            }
            let ok = (mode == Mode::Strong && allow_lower) || lower_known == lower;
            if !ok {
                return None;
            }
        }
        // "D. Green": an initial makes a dictionary family name a person's.
        if mode == Mode::Ambiguous
            && nwords == 1
            && strong == 0
            && !(initials > 0 && any_name && cap == 1)
        {
            return None;
        }
        Some(span_s..span_e)
    }

    // ----- line-level structure ------------------------------------------

    fn is_signoff(&mut self, line: &str) -> bool {
        let t = line
            .trim()
            .trim_end_matches([',', '.', '!', ':', ';', ' ', '-', '\u{2013}', '\u{2014}']);
        if t.is_empty() {
            return line.trim() == "--";
        }
        if t.len() > 40 {
            return false;
        }
        fold_into(t, &mut self.s.buf);
        if self.s.buf.contains("  ") {
            let p: Vec<&str> = self.s.buf.split_whitespace().collect();
            let j = p.join(" ");
            return self.m.signoffs.contains(j.as_str());
        }
        self.m.signoffs.contains(self.s.buf.as_str())
    }

    /// A line that is only "Family, Given" ("Zaranek, Jerzy"): a roster entry.
    fn family_given_line(&mut self, ls: usize, le: usize) {
        let line = &self.text[ls..le];
        if memchr::memchr(b',', line.as_bytes()).is_none()
            || line.bytes().filter(|&c| c == b',').count() != 1
        {
            return;
        }
        let Some((a, b)) = line.trim().split_once(',') else {
            return;
        };
        let (wa, wb) = (a.split_whitespace().count(), b.split_whitespace().count());
        if !(1..=2).contains(&wa) || !(1..=2).contains(&wb) || !b.starts_with(' ') {
            return;
        }
        if !a.trim().chars().next().is_some_and(|c| c.is_uppercase())
            || !b.trim().chars().next().is_some_and(|c| c.is_uppercase())
        {
            return;
        }
        if let Some(r) = self.value_name(ls, le, Mode::Strong, false) {
            self.push(r.start, r.end);
        }
    }

    /// The line after a sign-off: "John Carter", "Anna | Sales", "— Jan".
    fn signoff_name(&mut self, ls: usize, le: usize) {
        let text = self.text;
        let b = text.as_bytes();
        let mut s = ls;
        while s < le && matches!(b[s], b' ' | b'\t' | b'-' | b'~' | b'>') {
            s += 1;
        }
        while text[s..le].starts_with('\u{2014}') || text[s..le].starts_with('\u{2013}') {
            s += 3;
            while s < le && b[s] == b' ' {
                s += 1;
            }
        }
        // The name ends at a separator.
        let mut e = s;
        while e < le {
            let c = b[e];
            if matches!(c, b',' | b'|' | b'(' | b'<' | b'\t' | b'/') {
                break;
            }
            if c == b' ' && e + 1 < le && matches!(b[e + 1], b' ' | b'-' | b'|') {
                break;
            }
            if b[e..le].starts_with(" \u{2013}".as_bytes())
                || b[e..le].starts_with(" \u{2014}".as_bytes())
            {
                break;
            }
            e += 1;
        }
        let words = text[s..e].split_whitespace().count();
        if words == 0 || words > 5 {
            return;
        }
        if let Some(r) = self.value_name(s, e, Mode::Strong, false) {
            // Must start with a capital letter (not a sentence in lower case).
            if char_at(text, r.start).is_some_and(|c| c.is_uppercase()) {
                self.push(r.start, r.end);
            }
        }
    }

    /// "Key: value" at the start of a line (mail and git headers, forms, YAML).
    fn field_line(&mut self, ls: usize, le: usize) {
        let text = self.text;
        let b = text.as_bytes();
        let mut k = ls;
        while k < le && matches!(b[k], b' ' | b'\t' | b'>' | b'*' | b'-' | b'#' | b'|') {
            k += 1;
        }
        let lim = (k + 40).min(le);
        let Some(cp) = memchr::memchr(b':', &b[k..lim]) else {
            return;
        };
        let colon = k + cp;
        let key_raw = text[k..colon].trim_matches(|c| c == '*' || c == ' ' || c == '_');
        if key_raw.is_empty() || key_raw.len() > 32 {
            return;
        }
        if !key_raw.bytes().all(|c| {
            c.is_ascii_alphabetic()
                || c >= 0x80
                || matches!(c, b' ' | b'-' | b'_' | b'(' | b')' | b'.' | b'\'')
        }) {
            return;
        }
        if key_raw.split_whitespace().count() > 4 {
            return;
        }
        let after = colon + 1;
        if after < le && !matches!(b[after], b' ' | b'\t' | b'*') {
            return;
        }
        let mut key = std::mem::take(&mut self.s.buf2);
        norm_key(key_raw, &mut key);
        let kind = self.m.fields.get(key.as_str()).copied();
        self.s.buf2 = key;
        let Some(kind) = kind else { return };
        let mode = if key_raw == "name" {
            Mode::Ambiguous
        } else {
            Mode::Strong
        };
        let mut vs = after;
        while vs < le && matches!(b[vs], b' ' | b'\t' | b'*') {
            vs += 1;
        }
        if vs >= le {
            return;
        }
        if kind == FieldKind::Single {
            if let Some(r) = self.value_name(vs, le, mode, false) {
                self.push(r.start, r.end);
                return;
            }
        }
        let mut items = Vec::new();
        split_items(text, vs, le, &mut items);
        for (s, e) in items {
            if let Some(r) = self.value_name(s, e, mode, false) {
                self.push(r.start, r.end);
            }
        }
    }

    /// `"full_name": "Anna Kowalski"` inside free text (pasted JSON).
    fn inline_kv(&mut self, ls: usize, le: usize) {
        let text = self.text;
        let b = text.as_bytes();
        let line = &b[ls..le];
        if memchr::memchr(b'"', line).is_none() {
            return;
        }
        for cp in memchr::memchr_iter(b':', line) {
            let colon = ls + cp;
            // key before
            let mut k = colon;
            while k > ls && b[k - 1] == b' ' {
                k -= 1;
            }
            if k == ls || b[k - 1] != b'"' {
                continue;
            }
            let kend = k - 1;
            let Some(kq) = memchr::memrchr(b'"', &b[ls..kend]) else {
                continue;
            };
            let kstart = ls + kq + 1;
            if kend - kstart > 40 || kend <= kstart {
                continue;
            }
            // value after
            let mut v = colon + 1;
            while v < le && b[v] == b' ' {
                v += 1;
            }
            if v >= le || b[v] != b'"' {
                continue;
            }
            let vs = v + 1;
            let Some(vq) = memchr::memchr(b'"', &b[vs..le]) else {
                continue;
            };
            let ve = vs + vq;
            if ve > vs && b[ve - 1] == b'\\' {
                continue;
            }
            if let KeyMode::Name(mode) = self.m.key_mode(&text[kstart..kend]) {
                if let Some(r) = self.value_name(vs, ve, mode, true) {
                    self.push(r.start, r.end);
                }
            }
        }
    }

    /// `customer=Jane Doe`, `author="Jane Doe"`, `applicant=Sietske van der Linden ssn=...`:
    /// log and query-string pairs whose key names a person. The value is quoted, or the
    /// capitalized words (with particles) up to the next `key=`.
    fn kv_equals(&mut self, ls: usize, le: usize) {
        let text = self.text;
        let b = text.as_bytes();
        let Some(first) = memchr::memchr(b'=', &b[ls..le]) else {
            return;
        };
        let mut key = String::new();
        for cp in memchr::memchr_iter(b'=', &b[ls + first..le]) {
            let eq = ls + first + cp;
            let mut k = eq;
            while k > ls
                && (b[k - 1].is_ascii_alphanumeric() || matches!(b[k - 1], b'_' | b'-' | b'.'))
            {
                k -= 1;
            }
            if k == eq || eq - k > 40 {
                continue;
            }
            if k > ls
                && !matches!(
                    b[k - 1],
                    b' ' | b'\t' | b',' | b';' | b'(' | b'[' | b'{' | b'|' | b'&' | b'?'
                )
            {
                continue;
            }
            // `user.name=`, `ctx.customer=`: the last segment is the key.
            let raw = text[k..eq].rsplit('.').next().unwrap_or("");
            let mode = match self.m.key_mode(raw) {
                KeyMode::Name(m) => m,
                _ => {
                    norm_key(raw, &mut key);
                    if self.m.fields.get(key.as_str()) == Some(&FieldKind::Single) && key != "name"
                    {
                        Mode::Strong
                    } else {
                        continue;
                    }
                }
            };
            let vs = eq + 1;
            if vs >= le {
                continue;
            }
            let (s, e) = if matches!(b[vs], b'"' | b'\'') {
                let q = b[vs];
                let Some(p) = memchr::memchr(q, &b[vs + 1..le]) else {
                    continue;
                };
                (vs + 1, vs + 1 + p)
            } else {
                // Words separated by one space, up to a separator or the next `key=`;
                // lower-case words only as particles inside the name.
                let mut e = vs;
                let mut end = vs;
                while e < le {
                    let ws = e;
                    while e < le
                        && !matches!(
                            b[e],
                            b' ' | b'\t'
                                | b','
                                | b';'
                                | b')'
                                | b']'
                                | b'}'
                                | b'|'
                                | b'&'
                                | b'"'
                                | b'='
                                | b':'
                        )
                    {
                        e += 1;
                    }
                    if e == ws || (e < le && matches!(b[e], b'=' | b':')) {
                        break;
                    }
                    let w = &text[ws..e];
                    let c0 = w.chars().next().unwrap_or(' ');
                    if c0.is_uppercase() {
                        end = e;
                    } else if !(c0.is_lowercase()
                        && end > vs
                        && self.m.lookup(&fold(w)) & F_PARTICLE != 0)
                    {
                        break;
                    }
                    if e + 1 < le && b[e] == b' ' && b[e + 1] != b' ' {
                        e += 1;
                    } else {
                        break;
                    }
                }
                (vs, end)
            };
            if e <= s || e - s > NameModel::MAX_LEN {
                continue;
            }
            if let Some(r) = self.value_name(s, e, mode, false) {
                if char_at(text, r.start).is_some_and(char::is_uppercase) {
                    self.push(r.start, r.end);
                }
            }
        }
    }

    /// A data row without a header in view (one row of a table sent alone, as in
    /// an embeddings `input` array): adjacent cells "Family,Given" where the given
    /// name is a known one and the family name a known or upper-case one, in a row
    /// that also carries data (digits or an e-mail address).
    fn record_row(&mut self, ls: usize, le: usize) {
        let text = self.text;
        let b = &text.as_bytes()[ls..le];
        if b.len() > 1024 || !has_digit_or_at(b) {
            return;
        }
        let mut best = (0usize, 0u8);
        for d in [b',', b';', b'\t', b'|'] {
            let c = memchr::memchr_iter(d, b).count();
            if c > best.0 {
                best = (c, d);
            }
        }
        if best.0 < 2 {
            return;
        }
        let mut fields = std::mem::take(&mut self.s.fields);
        split_fields(text, ls, le, best.1, &mut fields);
        let cells: Vec<(usize, usize)> = fields
            .iter()
            .map(|&(fs, fe)| {
                let (s, e) = trim_span(text, fs, fe);
                let v = &text[s..e];
                if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
                    (s + 1, e - 1)
                } else {
                    (s, e)
                }
            })
            .collect();
        self.s.fields = fields;
        let plain = |v: &str| {
            !v.is_empty()
                && v.split_whitespace().count() <= 3
                && v.chars().next().is_some_and(char::is_uppercase)
                && v.chars()
                    .all(|c| is_letter(c) || matches!(c, ' ' | '-' | '\'' | '\u{2019}'))
        };
        for i in 0..cells.len().saturating_sub(1) {
            let (fs, fe) = cells[i];
            let (gs, ge) = cells[i + 1];
            let (fam, giv) = (&text[fs..fe], &text[gs..ge]);
            if !plain(fam) || !plain(giv) {
                continue;
            }
            let Some(fam_last) = fam.split_whitespace().next_back() else {
                continue;
            };
            let Some(giv_first) = giv.split_whitespace().next() else {
                continue;
            };
            let ff = self.m.classify(fam_last, &mut self.s.buf);
            let gf = self.m.classify(giv_first, &mut self.s.buf);
            let fam_caps = fam.chars().filter(|c| is_letter(*c)).count() >= 2
                && !fam.chars().any(char::is_lowercase);
            let given_ok =
                gf & F_FIRST != 0 && (is_strong(gf) || (ff & F_LAST != 0 && is_strong(ff)));
            let family_ok = ff & F_LAST != 0 || (fam_caps && !is_pure_stop(ff));
            if !given_ok || !family_ok || ff & (F_CAMEL | F_ORG | F_PLACE | F_TITLE) != 0 {
                continue;
            }
            if let (Some(a), Some(g)) = (
                self.value_name(fs, fe, Mode::Strong, false),
                self.value_name(gs, ge, Mode::Strong, false),
            ) {
                self.push(a.start, a.end);
                self.push(g.start, g.end);
            }
        }
    }

    /// CSV / TSV / pipe tables: a header naming name columns, then rows.
    fn csv_line(&mut self, ls: usize, le: usize, state: &mut Option<CsvState>) {
        let text = self.text;
        let b = &text.as_bytes()[ls..le];
        if let Some(st) = *state {
            if memchr::memchr(st.delim, b).is_some() {
                let mut fields = std::mem::take(&mut self.s.fields);
                split_fields(text, ls, le, st.delim, &mut fields);
                if fields.len() == st.ncols {
                    for &(col, mode) in &st.cols[..st.ncols_name] {
                        let (fs, fe) = fields[col as usize];
                        if let Some(r) = self.value_name(fs, fe, mode, false) {
                            self.push(r.start, r.end);
                        }
                    }
                    self.s.fields = fields;
                    return;
                }
                self.s.fields = fields;
            }
            *state = None;
        }
        if b.len() > 1024 {
            return;
        }
        // Quick exits, with the outcome of the full check below. A span between two
        // delimiter bytes lies inside one field, so when it is longer than a header
        // field may be once trimmed, the line is no header. Tabs take the full path.
        if memchr::memchr(b'\t', b).is_none() {
            let line = &text[ls..le];
            let mut last = 0;
            let mut any = false;
            let mut long = false;
            for p in memchr::memchr3_iter(b',', b';', b'|', b) {
                any = true;
                if header_cell(&line[last..p]).len() > 40 {
                    long = true;
                    break;
                }
                last = p + 1;
            }
            if !any {
                return;
            }
            if long || header_cell(&line[last..]).len() > 40 {
                self.record_row(ls, le);
                return;
            }
        }
        // Header?
        let mut best = (0usize, 0u8);
        for d in [b',', b';', b'\t', b'|'] {
            let c = memchr::memchr_iter(d, b).count();
            if c > best.0 {
                best = (c, d);
            }
        }
        if best.0 == 0 {
            return;
        }
        let delim = best.1;
        let mut fields = std::mem::take(&mut self.s.fields);
        split_fields(text, ls, le, delim, &mut fields);
        let mut cols: [(u8, Mode); 8] = [(0, Mode::Strong); 8];
        let mut nname = 0usize;
        let mut evidence = false;
        let mut has_bare_name = false;
        let mut ok = fields.len() >= 2 && fields.len() <= 64;
        let mut key = String::new();
        if ok {
            for (ci, &(fs, fe)) in fields.iter().enumerate() {
                let f = header_cell(&text[fs..fe]);
                let f = if ci == 0 { after_lead_in(f) } else { f };
                if f.is_empty() {
                    continue;
                }
                if f.len() > 40 || f.split_whitespace().count() > 4 || f.contains('@') {
                    ok = false;
                    break;
                }
                norm_key(f, &mut key);
                if self.m.csv_evidence.contains(key.as_str()) {
                    evidence = true;
                }
                if self.m.csv_name.contains(key.as_str()) && nname < 8 && ci < 256 {
                    let mode = if key == "name" || key == "first" || key == "last" {
                        has_bare_name = true;
                        Mode::Ambiguous
                    } else {
                        Mode::Strong
                    };
                    cols[nname] = (ci as u8, mode);
                    nname += 1;
                }
            }
        }
        if !(ok && nname > 0) {
            self.s.fields = fields;
            self.record_row(ls, le);
            return;
        }
        if has_bare_name && (evidence || nname > 1) {
            for c in cols.iter_mut().take(nname) {
                c.1 = Mode::Strong;
            }
        }
        *state = Some(CsvState {
            delim,
            ncols: fields.len(),
            cols,
            ncols_name: nname,
        });
        self.s.fields = fields;
    }
}

/// The first header cell without an assistant's lead-in on the same line
/// ("Sure! last_name", "Here it is: name").
fn after_lead_in(f: &str) -> &str {
    match f.rfind(['!', ':', '?', '.']) {
        Some(i) if f[i + 1..].starts_with(' ') => header_cell(&f[i + 1..]),
        _ => f,
    }
}

/// A CSV header cell without its padding, quotes and emphasis.
#[inline]
fn header_cell(f: &str) -> &str {
    f.trim()
        .trim_matches(|c| c == '"' || c == '\'' || c == '*' || c == ' ')
}

/// Any ASCII digit or `@` in `b` (32 bytes at a time, so the compiler can vectorize).
fn has_digit_or_at(b: &[u8]) -> bool {
    let mut chunks = b.chunks_exact(32);
    for c in &mut chunks {
        let mut acc = 0u8;
        for &x in c {
            acc |= u8::from(x.wrapping_sub(b'0') < 10) | u8::from(x == b'@');
        }
        if acc != 0 {
            return true;
        }
    }
    chunks
        .remainder()
        .iter()
        .any(|&x| x.is_ascii_digit() || x == b'@')
}

/// English word endings that names rarely have ("Congruential", "Management").
fn common_word_shape(w: &str) -> bool {
    if w.len() <= 2 || !w.chars().any(|c| c.is_lowercase()) {
        return true;
    }
    let l = w.to_ascii_lowercase();
    [
        "tion", "sion", "ment", "ness", "ity", "ive", "ous", "able", "ible", "ing", "ial", "ical",
        "ics", "ism", "ogy", "ware", "ance", "ence", "ship", "hood", "less", "ful", "ize", "ise",
        "ated", "ency", "ary", "ory", "ure",
    ]
    .iter()
    .any(|s| l.ends_with(s))
}

/// True unless the run is one upper-case word (an acronym like "SHA", "NASA").
fn allcaps_single(text: &str, toks: &[Tok], first: usize, last: usize) -> bool {
    let w = &text[toks[first].s..toks[last].e];
    w.chars().any(|c| c.is_lowercase())
}

fn is_initials(w: &str) -> bool {
    // "J." or "J.R." or "J.-P."
    let b = w.as_bytes();
    if b.len() < 2 || *b.last().unwrap_or(&0) != b'.' {
        return false;
    }
    let mut expect_letter = true;
    let mut k = 0;
    while k < b.len() {
        if expect_letter {
            let Some(c) = char_at(w, k) else { return false };
            if !c.is_uppercase() {
                return false;
            }
            k += c.len_utf8();
            expect_letter = false;
        } else {
            if b[k] != b'.' {
                return false;
            }
            k += 1;
            if k < b.len() && b[k] == b'-' {
                k += 1;
            }
            expect_letter = true;
        }
    }
    expect_letter
}

fn trim_span(text: &str, mut s: usize, mut e: usize) -> (usize, usize) {
    let v = &text[s..e];
    let t = v.trim_start();
    s += v.len() - t.len();
    let t2 = t.trim_end();
    e -= t.len() - t2.len();
    (s, e)
}

/// Separators between items of a list of names.
fn list_sep(g: &str) -> bool {
    let t = g.trim();
    if g.contains('\n') {
        return false;
    }
    matches!(
        t,
        "," | ";"
            | "&"
            | "and"
            | ", and"
            | ", &"
            | "und"
            | "et"
            | "y"
            | "e"
            | "en"
            | "og"
            | "och"
            | "ja"
            | "és"
            | "i"
            | "/"
            | "·"
            | "|"
    )
}

/// Split a header value into items: commas and semicolons outside quotes and
/// angle brackets, and conjunctions ("Anna and Bob").
fn split_items(text: &str, s: usize, e: usize, out: &mut Vec<(usize, usize)>) {
    out.clear();
    let b = text.as_bytes();
    let mut in_q = false;
    let mut in_a = false;
    let mut st = s;
    let mut k = s;
    while k < e {
        let c = b[k];
        match c {
            b'"' => in_q = !in_q,
            b'<' => in_a = true,
            b'>' => in_a = false,
            b',' | b';' if !in_q && !in_a => {
                out.push((st, k));
                st = k + 1;
            }
            b' ' if !in_q && !in_a => {
                let mut hit = false;
                for conj in [
                    " and ", " & ", " und ", " et ", " y ", " e ", " en ", " og ", " och ",
                ] {
                    if text[k..e].starts_with(conj) {
                        out.push((st, k));
                        st = k + conj.len();
                        k = st;
                        hit = true;
                        break;
                    }
                }
                if hit {
                    continue;
                }
            }
            _ => {}
        }
        k += 1;
    }
    out.push((st, e));
}

/// Quote-aware split of one CSV line.
fn split_fields(text: &str, s: usize, e: usize, d: u8, out: &mut Vec<(usize, usize)>) {
    out.clear();
    let b = text.as_bytes();
    let mut in_q = false;
    let mut st = s;
    for (k, &c) in b.iter().enumerate().take(e).skip(s) {
        if c == b'"' {
            in_q = !in_q;
        } else if c == d && !in_q {
            out.push((st, k));
            st = k + 1;
        }
    }
    out.push((st, e));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::OnceLock;

    fn model() -> &'static NameModel {
        static M: OnceLock<NameModel> = OnceLock::new();
        M.get_or_init(NameModel::builtin)
    }

    fn names(text: &str) -> Vec<&str> {
        model()
            .find(text, None)
            .into_iter()
            .map(|r| &text[r])
            .collect()
    }

    fn key_names<'t>(text: &'t str, key: &str) -> Vec<&'t str> {
        model()
            .find(text, Some(key))
            .into_iter()
            .map(|r| &text[r])
            .collect()
    }

    #[test]
    fn json_keys_are_normalized_ascii_or_not() {
        let m = model();
        // ASCII keys (normalized on the stack) and accented ones (folded on the heap).
        assert_eq!(m.key_mode("First_Name"), KeyMode::Name(Mode::Strong));
        assert_eq!(m.key_mode("Prénom"), KeyMode::Name(Mode::Strong));
        assert_eq!(m.key_mode("finish_reason"), KeyMode::Skip);
        assert_eq!(m.key_mode("USER"), KeyMode::Name(Mode::Ambiguous));
        assert_eq!(m.key_mode("summary"), KeyMode::Other);
        assert_eq!(m.key_mode(&"x".repeat(100)), KeyMode::Other);
    }

    #[track_caller]
    fn check(text: &str, want: &[&str]) {
        assert_eq!(names(text), want, "text: {text:?}");
    }

    #[track_caller]
    fn none(text: &str) {
        assert_eq!(names(text), Vec::<&str>::new(), "text: {text:?}");
    }

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn model_is_send_sync_and_loaded() {
        assert_send_sync::<NameModel>();
        let m = model();
        assert!(m.words.values().filter(|f| *f & F_FIRST != 0).count() > 4000);
        assert!(m.words.values().filter(|f| *f & F_LAST != 0).count() > 4000);
        assert_eq!(NameModel::MAX_LEN, 96);
    }

    // ----- greetings -------------------------------------------------------

    #[test]
    fn greetings() {
        check("Hi Anna,\nthanks for the update.", &["Anna"]);
        check("Dear Mr. Smith,\nplease find attached", &["Smith"]);
        check("Sehr geehrte Frau Müller,\nvielen Dank", &["Müller"]);
        check("Bonjour Jean-Pierre,\nmerci", &["Jean-Pierre"]);
        check("Hola María, ¿cómo estás?", &["María"]);
        check("Ciao Giulia, come stai?", &["Giulia"]);
        check("Beste Jan, bedankt voor je bericht.", &["Jan"]);
        check("Hallo Herr Schmidt, danke.", &["Schmidt"]);
        check("Hello Kwabena, welcome aboard!", &["Kwabena"]);
        check(
            "Hi Oluwaseun Adeyemi-Okafor, thanks",
            &["Oluwaseun Adeyemi-Okafor"],
        );
        check("Dear Dr. Nakamura,", &["Nakamura"]);
        check("Gentile Sig.ra Bianchi,", &["Bianchi"]);
        check("Geachte mevrouw De Vries,", &["De Vries"]);
        check("Estimada Sra. Gómez:", &["Gómez"]);
        check("Hi Zorblax,", &["Zorblax"]); // unknown word after a strong cue
    }

    #[test]
    fn log_key_value_pairs() {
        check(
            "2024-06-25 WARN kyc mismatch applicant=Amelia Wilson ssn=300-88-8455 (score 0.41)",
            &["Amelia Wilson"],
        );
        check(
            "INFO kyc passed customer=Sietske van der Linden dob=2005-09-21",
            &["Sietske van der Linden"],
        );
        check("commit author=\"Jane Doe\" files=3", &["Jane Doe"]);
        check(
            "audit user.name=Hannah O'Brien action=login",
            &["Hannah O'Brien"],
        );
        none("GET /api?user=admin&role=viewer");
        none("build target=Release mode=Debug");
        none("customer=ACME-42 plan=Pro");
    }

    #[test]
    fn diacritics_tell_names_from_stop_words() {
        // "Tuan" is a Malay title and "ASA" an org suffix; "Tuấn" and "Åsa" are names.
        check("Dear Tuấn Anh,\nthanks", &["Tuấn Anh"]);
        check("Customer Trần Tuấn Anh called", &["Trần Tuấn Anh"]);
        check(
            "Je m'appelle Åsa Virtanen et j'habite ici.",
            &["Åsa Virtanen"],
        );
        check("Sehr geehrter Señor García,", &["García"]);
    }

    #[test]
    fn particles_after_a_title() {
        check("Frau von Bülow meldet, dass", &["von Bülow"]);
        check(
            "Melding CS-880289: mevrouw de Groot heeft haar",
            &["de Groot"],
        );
        check("Gentile sig.ra de La Fontaine,", &["de La Fontaine"]);
        none("Die Stadt von Berlin ist groß.");
    }

    #[test]
    fn escaped_line_breaks_separate_words() {
        check("Cordialement\\nKarthik Desai", &["Karthik Desai"]);
        none("C:\\new\\Folder");
    }

    #[test]
    fn initial_and_family_name_in_a_name_field() {
        assert_eq!(key_names("D. Green", "name"), ["D. Green"]);
        assert_eq!(key_names("A. Test", "name"), Vec::<&str>::new());
        check(
            "{\"id\":1,\"name\":\"P. Ferrari\",\"email\":\"x\"}",
            &["P. Ferrari"],
        );
    }

    #[test]
    fn header_less_record_rows() {
        check(
            "Green,Rhys,05/10/1956,+44 20 3474 0801,128A Station Road,Leeds LS1 4DY",
            &["Green", "Rhys"],
        );
        check(
            "JOSHI,Shreya,\"December 9, 1979\",+16465602817",
            &["JOSHI", "Shreya"],
        );
        check("Visser,Floor,08/03/1982,215.450.9671", &["Visser", "Floor"]);
        none("Paris,France,2024-01-01,120");
        none("Apple,Orange,12,14");
    }

    #[test]
    fn greeting_negatives() {
        none("Dear Customer,\nyour order has shipped.");
        none("Hi team,\nplease review the PR.");
        none("Hi Team, please review.");
        none("Hello World");
        none("Dear Sir or Madam,");
        none("Dear Valued Customer,");
        none("Hi all, quick update.");
        none("Hi Claude, can you help me with this?");
    }

    // ----- sign-offs -------------------------------------------------------

    #[test]
    fn signoffs() {
        check(
            "Thanks for your help.\n\nBest regards,\nJohn Carter",
            &["John Carter"],
        );
        check("Mit freundlichen Grüßen\nKlaus Becker", &["Klaus Becker"]);
        check("Cordialement,\nMarie Dubois", &["Marie Dubois"]);
        check("Saludos,\nJavier Ruiz", &["Javier Ruiz"]);
        check("Cordiali saluti,\nMarco Bianchi", &["Marco Bianchi"]);
        check(
            "Met vriendelijke groet,\nPieter de Vries",
            &["Pieter de Vries"],
        );
        check(
            "Kind regards,\nZygmunt Brzęczyszczykiewicz\nSenior Engineer",
            &["Zygmunt Brzęczyszczykiewicz"],
        );
        check("Cheers,\nTaini Ngata | Customer Success", &["Taini Ngata"]);
        check("Best regards, John Carter", &["John Carter"]);
        check("Thanks,\nAnna", &["Anna"]);
    }

    #[test]
    fn signoff_negatives() {
        none("Kind regards");
        none("Best Regards");
        none("Best regards,\nThe Acme Team");
        none("Thanks,\nSupport Team");
        none("Thanks!\nSent from my iPhone");
        none("Regards,\nIT Department");
    }

    // ----- headers ---------------------------------------------------------

    #[test]
    fn mail_headers() {
        check("From: Anna Kowalski <anna@x.pl>", &["Anna Kowalski"]);
        check(
            "To: Bob Brennan <bob@x.com>, Chiamaka Eze <c@x.ng>",
            &["Bob Brennan", "Chiamaka Eze"],
        );
        check("Cc: \"Kowalski, Anna\" <anna@x.pl>", &["Kowalski, Anna"]);
        check("From: Qxilo Vantrebb <q@x.io>", &["Qxilo Vantrebb"]);
        check("Von: Jürgen Weiß <jw@example.de>", &["Jürgen Weiß"]);
        none("From: noreply@github.com");
        none("From: GitHub <noreply@github.com>");
        none("To: Sales Team <sales@acme.com>");
    }

    #[test]
    fn git_trailers() {
        check("Author: Søren Kierkegaard <s@x.dk>", &["Søren Kierkegaard"]);
        check("Signed-off-by: Wei Zhang <wei@example.com>", &["Wei Zhang"]);
        check(
            "Co-authored-by: Tafadzwa Mlambo-Ncube <t@x.zw>",
            &["Tafadzwa Mlambo-Ncube"],
        );
        check("Reviewed-by: Ngozi Okonjo <n@x.ng>", &["Ngozi Okonjo"]);
        check("Author: Brixton Quell <bq@x.io>", &["Brixton Quell"]);
    }

    #[test]
    fn attendee_lists() {
        check(
            "Attendees: Priya Patel, Kwame Mensah, Yuki Tanaka",
            &["Priya Patel", "Kwame Mensah", "Yuki Tanaka"],
        );
        check(
            "Participants: Tomasz Nowak; Aroha Wiremu; Lena Fischer",
            &["Tomasz Nowak", "Aroha Wiremu", "Lena Fischer"],
        );
        check(
            "The call was with Priya Patel, Kwabena Osei-Tutu and Yuki Tanaka.",
            &["Priya Patel", "Kwabena Osei-Tutu", "Yuki Tanaka"],
        );
    }

    #[test]
    fn name_fields() {
        check("Name: Xochitl Quispe Mamani", &["Xochitl Quispe Mamani"]);
        check("Full name: Brixton Quell", &["Brixton Quell"]);
        check("Patient: Oyelaran Babatunde", &["Oyelaran Babatunde"]);
        check("Customer: Acme GmbH", &[]);
        check("- name: Build and Test", &[]);
        check("name: my-service", &[]);
        check("name: Checkout", &[]);
    }

    // ----- CSV ---------------------------------------------------------------

    #[test]
    fn csv_first_last() {
        let t = "first_name,last_name,email\nZindzi,Mabuza,z@x.za\nQuorra,Vantrebb,q@x.io\n";
        check(t, &["Zindzi", "Mabuza", "Quorra", "Vantrebb"]);
    }

    #[test]
    fn csv_variants() {
        check(
            "name;email\nBrixton Quell;bq@x.io\nAnna Nowak;a@x.pl",
            &["Brixton Quell", "Anna Nowak"],
        );
        check(
            "Nom,Prénom,Ville\nDUPONT,Jean,Paris\nLefèvre,Élodie,Lyon",
            &["DUPONT", "Jean", "Lefèvre", "Élodie"],
        );
        check(
            "Vorname\tNachname\tStadt\nLukas\tWeber\tBerlin",
            &["Lukas", "Weber"],
        );
        check(
            "id,customer_name,total\n1,\"Osei-Tutu, Kwabena\",10.00",
            &["Osei-Tutu, Kwabena"],
        );
        check(
            "| Name | Email |\n|---|---|\n| Brixton Quell | bq@x.io |",
            &["Brixton Quell"],
        );
    }

    #[test]
    fn csv_negatives() {
        // not a name column
        none("product,price\nVisual Studio Code,0\nDocker Compose,0");
        // package list with a bare "name" column: single unknown words are not names
        none("name,version\nserde,1.0\nReact,18");
        // a blank line ends the table
        check("first_name,email\nZed,z@x.io\n\nFoo,bar", &["Zed"]);
    }

    // ----- JSON keys -----------------------------------------------------------

    #[test]
    fn json_keys() {
        assert_eq!(key_names("Brixton Quell", "full_name"), ["Brixton Quell"]);
        assert_eq!(key_names("Zindzi", "first_name"), ["Zindzi"]);
        assert_eq!(key_names("de la Cruz", "last_name"), ["de la Cruz"]);
        assert_eq!(
            key_names("Maria José García López", "name"),
            ["Maria José García López"]
        );
        assert_eq!(key_names("Qxilo Vantrebb", "customer"), ["Qxilo Vantrebb"]);
        assert_eq!(
            key_names("Ngozi Okonjo <n@x.ng>", "author"),
            ["Ngozi Okonjo"]
        );
        assert_eq!(key_names("john smith", "customer_name"), ["john smith"]);
        assert_eq!(key_names("Yuki", "assignee"), ["Yuki"]);
        assert_eq!(key_names("Dr. Amara Nwosu", "patient"), ["Amara Nwosu"]);
        assert_eq!(key_names("Lars Ødegård", "employee"), ["Lars Ødegård"]);
        assert_eq!(key_names("Kwame Mensah", "userName"), ["Kwame Mensah"]);
        assert_eq!(key_names("王伟", "full_name"), ["王伟"]);
    }

    #[test]
    fn json_key_negatives() {
        assert!(key_names("gpt-4o", "model").is_empty());
        assert!(key_names("Anna Smith", "model").is_empty());
        assert!(key_names("user", "role").is_empty());
        assert!(key_names("get_weather", "name").is_empty());
        assert!(key_names("Weather Tool", "name").is_empty());
        assert!(key_names("Calculator", "name").is_empty());
        assert!(key_names("function", "type").is_empty());
        assert!(key_names("Acme GmbH", "customer").is_empty());
        assert!(key_names("cus_8f7a6d", "customer").is_empty());
        assert!(key_names("search_docs", "tool_name").is_empty());
        assert!(key_names("Test User", "full_name").is_empty());
    }

    #[test]
    fn json_key_other_falls_back_to_text() {
        let t = "Please email Maria José García López about it.";
        assert_eq!(key_names(t, "content"), ["Maria José García López"]);
    }

    #[test]
    fn inline_json_in_prose() {
        check(
            r#"record: {"full_name": "Brixton Quell", "plan": "pro"}"#,
            &["Brixton Quell"],
        );
        check(r#"{"name": "get_weather", "description": "Weather"}"#, &[]);
    }

    // ----- prose cues ------------------------------------------------------

    #[test]
    fn intro_cues() {
        check(
            "Hello, my name is Ahmed Al-Farsi and I need help.",
            &["Ahmed Al-Farsi"],
        );
        check("I'm Olga, the new PM.", &["Olga"]);
        check("Ich bin Lukas Weber aus Berlin.", &["Lukas Weber"]);
        check("Bonjour, je m'appelle Léa Martin.", &["Léa Martin"]);
        check("Hola, me llamo Sofía Gómez.", &["Sofía Gómez"]);
        check("Ciao, mi chiamo Luca Rossi.", &["Luca Rossi"]);
        check("Hoi, ik ben Daan Bakker.", &["Daan Bakker"]);
        check("my name is Brixton Quell", &["Brixton Quell"]);
        check("hi, my name is ahmed", &["ahmed"]);
        check("The patient John Doe was admitted.", &["John Doe"]);
        check("patient Zorblax Quimby reported pain", &["Zorblax Quimby"]);
    }

    #[test]
    fn titles() {
        check("Please ask Mrs. Okafor.", &["Okafor"]);
        check("Ms Vantrebb will call.", &["Vantrebb"]);
        check(
            "Prof. Dr. Hans-Jürgen Müller-Lüdenscheidt spoke.",
            &["Hans-Jürgen Müller-Lüdenscheidt"],
        );
        check("M. Dupont est arrivé.", &["M. Dupont"]);
        check("Mme Lefèvre et Mlle Girard", &["Lefèvre", "Girard"]);
        check(
            "el Sr. Ramírez y la Sra. Castillo",
            &["Ramírez", "Castillo"],
        );
        check("Dhr. Jansen en Mevr. Visser", &["Jansen", "Visser"]);
    }

    // ----- shapes ----------------------------------------------------------

    #[test]
    fn whole_span() {
        check(
            "Yesterday Maria José García López called.",
            &["Maria José García López"],
        );
        check("I met Pieter van der Berg today.", &["Pieter van der Berg"]);
        check("Ursula von der Leyen spoke.", &["Ursula von der Leyen"]);
        check("Ask Juan de la Cruz.", &["Juan de la Cruz"]);
        check("Leonardo da Vinci painted it.", &["Leonardo da Vinci"]);
        check(
            "Mohammed bin Salman met Omar al-Bashir.",
            &["Mohammed bin Salman", "Omar al-Bashir"],
        );
        check(
            "Seán O'Brien and Aoife MacNamara",
            &["Seán O'Brien", "Aoife MacNamara"],
        );
        check("Contact Kwabena Osei-Tutu now", &["Kwabena Osei-Tutu"]);
        check(
            "J. R. Smith and Smith J. attended.",
            &["J. R. Smith", "Smith J."],
        );
        check("Anna's laptop", &["Anna"]);
    }

    #[test]
    fn upper_case_family_names() {
        check("DUPONT Jean a signé.", &["DUPONT Jean"]);
        check("signed by Jean DUPONT yesterday", &["Jean DUPONT"]);
        check("Nguyen VAN AN", &["Nguyen VAN AN"]);
        check("KOWALCZYK Agnieszka", &["KOWALCZYK Agnieszka"]);
    }

    #[test]
    fn family_comma_given() {
        check("Müller, Hans", &["Müller, Hans"]);
        check(
            "Report by NAKAMURA, Hiroshi on the incident",
            &["NAKAMURA, Hiroshi"],
        );
    }

    #[test]
    fn structure_generalizes() {
        // Roster line "Family, Given" with no dictionary word.
        check("Qorvath, Zindle", &["Qorvath, Zindle"]);
        check("Hello, World", &[]);
        check("Paris, France", &[]);
        // A stop-listed word right after a given name is the family name.
        check("Please call Luis Zaragoza today.", &["Luis Zaragoza"]);
        // In a strong position a stop-listed word is tolerated next to a known name.
        check(
            "Attendees: Samaksh Bose, Priya Sur",
            &["Samaksh Bose", "Priya Sur"],
        );
    }

    #[test]
    fn world_names() {
        for n in [
            "Søren Kierkegaard",
            "Wei Zhang",
            "Zhang Wei",
            "Li Na",
            "Nguyen Thi Mai",
            "Tran Van Minh",
            "Somchai Srisuk",
            "Budi Santoso",
            "Siti Rahayu",
            "Juan dela Cruz",
            "Maria Santos",
            "Chukwuemeka Okafor",
            "Adebayo Ogunleye",
            "Kwame Mensah",
            "Abena Owusu",
            "Wanjiru Kamau",
            "Abebe Bekele",
            "Thandiwe Dlamini",
            "Sipho Ndlovu",
            "Amina Yusuf",
            "Mehmet Yılmaz",
            "Ayşe Kaya",
            "Reza Hosseini",
            "Fatemeh Ahmadi",
            "Priya Sharma",
            "Arjun Reddy",
            "Yuki Tanaka",
            "Hiroshi Sato",
            "Min-jun Kim",
            "Kim Min-jun",
            "Park Ji-hoon",
            "Seo-yeon Lee",
            "Olga Ivanova",
            "Dmitry Smirnov",
            "Oksana Shevchenko",
            "Tomasz Nowak",
            "Jana Nováková",
            "Nikola Jovanović",
            "Ana Horvat",
            "Lars Andersson",
            "Ingrid Hansen",
            "Mikko Korhonen",
            "Guðrún Jónsdóttir",
            "László Nagy",
            "Ioana Popescu",
            "Giorgos Papadopoulos",
            "Arben Hoxha",
            "João Silva",
            "Luiz Oliveira",
            "Sofía Gómez",
            "Camila Rodríguez",
            "José Hernández",
            "Giulia Rossi",
            "Pieter Jansen",
            "Chloé Lefèvre",
            "Dimitar Ivanov",
            "Ahmed Hassan",
            "Youssef El Amrani",
            "Fatima Benali",
            "Moshe Cohen",
            "Oluwaseun Adeyemi",
            "Ngozi Okafor",
        ] {
            let t = format!("Please forward the file to {n} today.");
            assert_eq!(names(&t), [n], "text: {t:?}");
        }
    }

    // ----- negatives -----------------------------------------------------------

    #[test]
    fn nicknames_between_given_and_family_name() {
        check("Robert \"Bob\" Smith signed.", &["Robert \"Bob\" Smith"]);
        check(
            "Attendees: Li (Lily) Wang; Tomás Ruiz",
            &["Li (Lily) Wang", "Tomás Ruiz"],
        );
        check(
            "Bartholomew “Bart” Simpson-Ng | Head of Ops",
            &["Bartholomew “Bart” Simpson-Ng"],
        );
        // A common word before a quoted word stays out of the name.
        check("Reply \"Yes\" John Smith", &["John Smith"]);
    }

    #[test]
    fn family_comma_given_items_where_one_side_was_found() {
        check(
            "Teilnehmer:\n* Oberhuber, Gisela <g@x.de>\n* Schulz (Finance)",
            &["Oberhuber, Gisela", "Schulz"],
        );
        check(
            "Attendees: Ilse de Groot | Pemberton, Niamh (Sales) | SCHMIDT Maximilian",
            &["Ilse de Groot", "Pemberton, Niamh", "SCHMIDT Maximilian"],
        );
        // Not an item of its own, or the other side is a place or a common word.
        check("We met Pemberton, Niamh and Ana.", &["Niamh", "Ana"]);
        check("Office: Berlin, Anna Schmidt", &["Anna Schmidt"]);
    }

    #[test]
    fn display_names_before_an_address() {
        check(
            "   167\tGianmarco Colombo <gianmarco.colombo@gmail.com>\n    49\tFloor de Wit <floor_wit@ziggo.nl>",
            &["Gianmarco Colombo", "Floor de Wit"],
        );
        check(
            "From: Hugo Lacroix-d'Aubigné <hugo.lacroixdaubigne@gmail.com>",
            &["Hugo Lacroix-d'Aubigné"],
        );
        // Role mailboxes and products stay.
        for t in [
            "Reply-To: Acme Billing <billing@acme.com>",
            "Contact Support Team <support.team@acme.com> or Sales <sales@acme.com>",
            "From: Jira Notifications <jira@acme.atlassian.net>",
            "GitHub Actions <actions@github.com>",
        ] {
            none(t);
        }
    }

    #[test]
    fn user_handles_of_given_and_family_names() {
        check(
            "ping tomasz.nowak and @lindiwe.dlamini",
            &["tomasz.nowak", "lindiwe.dlamini"],
        );
        check("Author: björn.ekström <b@e.se>", &["björn.ekström"]);
        check("user=anna.smith ok", &["anna.smith"]);
        for t in [
            "tomasz.nowak@onet.pl",
            "self.name = user.email; os.path.join(a, b)",
            "see github.com/maria.garcia and john.smith.example.com",
            "call mark.price() then grace.period",
            "maria.garcia_2 or x.anna.smith",
        ] {
            none(t);
        }
    }

    #[test]
    fn look_alikes_survive() {
        for t in [
            "The Quick Brown fox jumps over the lazy dog.",
            "Open Visual Studio Code and run Docker Compose.",
            "Restart the Kubernetes Pod in New York.",
            "Release Notes for March 2024",
            "Main Street is closed on Monday.",
            "Acme GmbH and Acme Corp signed.",
            "Kind regards",
            "Best Regards",
            "We met on Tuesday, April 2nd in Paris.",
            "Berlin is big. Madrid is sunny. London is rainy.",
            "Will you send it? May I ask? Mark as read.",
            "Grace period ends in June.",
            "San Francisco and Santa Clara are in California.",
            "The Apache Kafka cluster talks to Google Cloud.",
            "Use Microsoft Teams or Slack.",
            "Getting Started Guide",
            "Amazon Web Services and Hugging Face",
            "Call the Customer Support Team.",
            "Morgan Stanley and Goldman Sachs reported.",
            "Hello World from Python",
            "ChatGPT and Claude are assistants.",
            "The GitHub Actions workflow failed on Ubuntu.",
            "See https://github.com/AnnaSmith/repo and anna.smith@example.com",
            "Der Koch und der Richter.",
            "Newton's method converges.",
            "Meeting notes: Q3 Roadmap Review",
        ] {
            none(t);
        }
    }

    #[test]
    fn prose_mixed() {
        check(
            "Hi Anna,\nI talked to Kwame Mensah about the Docker Compose issue in New York. \
             He said Yuki will fix it by Monday.\n\nBest regards,\nJohn Carter",
            &["Anna", "Kwame Mensah", "Yuki", "John Carter"],
        );
    }

    #[test]
    fn spans_are_sorted_and_disjoint() {
        let t = "From: Anna Kowalski <anna@x.pl>\nHi Anna Kowalski, Anna Kowalski here.";
        let r = model().find(t, None);
        for w in r.windows(2) {
            assert!(w[0].end <= w[1].start);
        }
        for x in &r {
            let s = &t[x.clone()];
            assert!(!s.ends_with([',', ' ']) && !s.starts_with(' '));
        }
    }

    #[test]
    fn with_extra_lists() {
        let m = NameModel::builtin().with_extra("Zorblax\n", "Quimby\n", "anna\n");
        let t = "Zorblax Quimby met Anna.";
        let got: Vec<&str> = m.find(t, None).into_iter().map(|r| &t[r]).collect();
        assert_eq!(got, ["Zorblax Quimby"]);
    }

    #[test]
    fn no_panic_on_odd_input() {
        for t in [
            "",
            " ",
            "\n\n",
            "Mr.",
            "Dear",
            "From:",
            "a,b\n",
            "\"",
            "ŁÓDŹ",
            "Ω",
            "J.",
            "O'",
            "al-",
            "’s",
            "é\u{301}",
        ] {
            let _ = model().find(t, None);
            let _ = model().find(t, Some("name"));
        }
    }
}
