//! Where the pattern group whose matches need not hold a digit or `@` (keys, passwords,
//! obfuscated e-mails, MACs, ...) is searched: only around *gate positions*, which every
//! match of the group touches. Proved from each pattern's syntax tree at load; a group
//! with one pattern that cannot be proved is searched in a full pass.
//!
//! A position is a gate position when
//! - its byte is rare in prose ([`is_rare`]: anything but ASCII letters, whitespace and
//!   control bytes, and `.,;!?'"`; every non-ASCII byte counts as rare), or
//! - it lies in a run of at least `run` bytes above 0x20 (a long token), or
//! - an *anchor* starts there: an ASCII string (compared ignoring ASCII case) at a word
//!   start (the byte before is no ASCII letter), optionally followed by a non-word byte,
//!   or one starting with `.`.
//!
//! The proof for a pattern works on its syntax tree with every rare byte and every
//! non-ASCII character removed: what a match without a rare byte can use (case folding
//! is then ASCII-only). Either that tree matches nothing, or every match of it holds a
//! long token, or every match of it holds one of the anchors.

use super::filter::impossible;
use regex_syntax::hir::{Class, Hir, HirKind, Look};

/// Bytes that prose rarely has; see the module documentation.
#[inline]
pub(crate) fn is_rare(c: u8) -> bool {
    // Branch-free, so that scans over chunks vectorize.
    let alpha = (c | 0x20).wrapping_sub(b'a') < 26;
    let punct = (c == b'.')
        | (c == b',')
        | (c == b';')
        | (c == b'!')
        | (c == b'?')
        | (c == b'\'')
        | (c == b'"');
    !(alpha | (c <= 0x20) | punct)
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Shortest long token used as a proof (shorter runs are common words).
const MIN_RUN: usize = 12;
/// Limits of the exact literal sets built for anchors.
const EXACT_MAX: usize = 256;
const LIT_MAX: usize = 12;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Anchor {
    /// Lower-case ASCII, at least two bytes.
    lit: Vec<u8>,
    /// The byte after the anchor is no ASCII word byte (or the text ends).
    whole: bool,
}

/// How one pattern is gated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Proof {
    /// Every match holds a rare byte.
    Rare,
    /// Every match without a rare byte holds a long token of at least this many bytes.
    Run(usize),
    /// Every match without a rare byte holds one of these word-start anchors or dot
    /// anchors.
    Anchors(Vec<Anchor>),
}

/// How `pattern` can be gated, if it can.
pub(crate) fn proof(pattern: &str) -> Option<Proof> {
    let hir = regex_syntax::parse(pattern).ok()?;
    let s = strip(&hir);
    if impossible(&s) {
        return Some(Proof::Rare);
    }
    let r = run(&s);
    if r.inner >= MIN_RUN {
        return Some(Proof::Run(r.inner));
    }
    anchors(&s).map(|(a, _)| Proof::Anchors(a))
}

/// `h` with every rare byte and non-ASCII character removed.
fn strip(h: &Hir) -> Hir {
    // Every non-ASCII byte is rare, so non-ASCII characters go too.
    super::filter::strip_to(h, |b| !is_rare(b))
}

// ---------------------------------------------------------------------------------------
// Long tokens: runs of bytes above 0x20 that every match holds.

/// Guaranteed runs of bytes above 0x20 over all matches of a node: whether every match
/// is one run (`full`), the shortest match, and the shortest run at the start, at the end
/// and anywhere.
#[derive(Clone, Copy)]
struct Run {
    full: bool,
    min: usize,
    pre: usize,
    suf: usize,
    inner: usize,
}

const RUN_CAP: usize = 1 << 20;

fn cat(a: Run, b: Run) -> Run {
    Run {
        full: a.full && b.full,
        min: (a.min + b.min).min(RUN_CAP),
        pre: if a.full { a.min + b.pre } else { a.pre }.min(RUN_CAP),
        suf: if b.full { b.min + a.suf } else { b.suf }.min(RUN_CAP),
        inner: a.inner.max(b.inner).max(a.suf + b.pre).min(RUN_CAP),
    }
}

fn run(h: &Hir) -> Run {
    let empty = Run {
        full: true,
        min: 0,
        pre: 0,
        suf: 0,
        inner: 0,
    };
    match h.kind() {
        HirKind::Empty | HirKind::Look(_) => empty,
        HirKind::Literal(l) => l.0.iter().fold(empty, |acc, &b| {
            let one = if b > b' ' {
                Run {
                    full: true,
                    min: 1,
                    pre: 1,
                    suf: 1,
                    inner: 1,
                }
            } else {
                Run {
                    full: false,
                    min: 1,
                    pre: 0,
                    suf: 0,
                    inner: 0,
                }
            };
            cat(acc, one)
        }),
        HirKind::Class(c) => {
            let above = match c {
                Class::Unicode(u) => u.ranges().iter().all(|r| r.start() > ' '),
                Class::Bytes(b) => b.ranges().iter().all(|r| r.start() > b' '),
            };
            Run {
                full: above,
                min: 1,
                pre: usize::from(above),
                suf: usize::from(above),
                inner: usize::from(above),
            }
        }
        HirKind::Capture(c) => run(&c.sub),
        HirKind::Concat(v) => v.iter().map(run).fold(empty, cat),
        HirKind::Alternation(v) => v
            .iter()
            .map(run)
            .reduce(|a, b| Run {
                full: a.full && b.full,
                min: a.min.min(b.min),
                pre: a.pre.min(b.pre),
                suf: a.suf.min(b.suf),
                inner: a.inner.min(b.inner),
            })
            .unwrap_or(empty),
        HirKind::Repetition(r) => {
            let s = run(&r.sub);
            let k = r.min as usize;
            if k == 0 {
                Run {
                    full: s.full,
                    ..empty
                }
            } else if s.full {
                let m = s.min.saturating_mul(k).min(RUN_CAP);
                Run {
                    full: true,
                    min: m,
                    pre: m,
                    suf: m,
                    inner: m,
                }
            } else {
                Run {
                    full: false,
                    min: s.min.saturating_mul(k).min(RUN_CAP),
                    pre: s.pre,
                    suf: s.suf,
                    inner: if k >= 2 {
                        s.inner.max(s.suf + s.pre)
                    } else {
                        s.inner
                    },
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Anchors: literal strings every match holds.

/// Every string a node can match (lower-cased, ASCII), when that set is small.
fn exact(h: &Hir) -> Option<Vec<Vec<u8>>> {
    let set = match h.kind() {
        HirKind::Empty | HirKind::Look(_) => vec![Vec::new()],
        HirKind::Literal(l) => vec![l.0.to_ascii_lowercase()],
        HirKind::Class(Class::Unicode(c)) => {
            let mut out = Vec::new();
            for r in c.ranges() {
                for ch in r.start()..=r.end() {
                    if !ch.is_ascii() || out.len() > 64 {
                        return None;
                    }
                    out.push(vec![(ch as u8).to_ascii_lowercase()]);
                }
            }
            out
        }
        HirKind::Class(Class::Bytes(c)) => {
            let mut out = Vec::new();
            for r in c.ranges() {
                for b in r.start()..=r.end() {
                    if !b.is_ascii() || out.len() > 64 {
                        return None;
                    }
                    out.push(vec![b.to_ascii_lowercase()]);
                }
            }
            out
        }
        HirKind::Capture(c) => return exact(&c.sub),
        HirKind::Concat(v) => {
            let mut acc = vec![Vec::new()];
            for x in v {
                acc = cross(&acc, &exact(x)?)?;
            }
            acc
        }
        HirKind::Alternation(v) => {
            let mut out = Vec::new();
            for x in v {
                out.extend(exact(x)?);
            }
            out
        }
        HirKind::Repetition(r) if r.max == Some(r.min) && r.min <= 8 => {
            let sub = exact(&r.sub)?;
            let mut acc = vec![Vec::new()];
            for _ in 0..r.min {
                acc = cross(&acc, &sub)?;
            }
            acc
        }
        HirKind::Repetition(r) if r.min == 0 && r.max == Some(1) => {
            let mut out = exact(&r.sub)?;
            out.push(Vec::new());
            out
        }
        HirKind::Repetition(_) => return None,
    };
    tidy(set)
}

fn tidy(mut set: Vec<Vec<u8>>) -> Option<Vec<Vec<u8>>> {
    set.sort();
    set.dedup();
    (set.len() <= EXACT_MAX && set.iter().all(|s| s.len() <= LIT_MAX)).then_some(set)
}

fn cross(a: &[Vec<u8>], b: &[Vec<u8>]) -> Option<Vec<Vec<u8>>> {
    if a.len().saturating_mul(b.len()) > EXACT_MAX * 4 {
        return None;
    }
    let mut out = Vec::with_capacity(a.len() * b.len());
    for x in a {
        for y in b {
            let mut s = x.clone();
            s.extend_from_slice(y);
            out.push(s);
        }
    }
    tidy(out)
}

/// The bytes a non-empty match of `h` can start (`first`) or end with; `None` when `h`
/// can match the empty string or the set is unknown.
fn edge(h: &Hir, first: bool) -> Option<Vec<u8>> {
    match h.kind() {
        HirKind::Literal(l) => {
            let b = if first { l.0.first() } else { l.0.last() };
            b.map(|&b| vec![b])
        }
        HirKind::Class(Class::Unicode(c)) => {
            let mut out = Vec::new();
            for r in c.ranges() {
                if !r.end().is_ascii() {
                    return None;
                }
                out.extend(r.start() as u8..=r.end() as u8);
            }
            Some(out)
        }
        HirKind::Class(Class::Bytes(c)) => {
            let mut out = Vec::new();
            for r in c.ranges() {
                out.extend(r.start()..=r.end());
            }
            Some(out)
        }
        HirKind::Capture(c) => edge(&c.sub, first),
        HirKind::Repetition(r) if r.min >= 1 => edge(&r.sub, first),
        HirKind::Alternation(v) => {
            let mut out = Vec::new();
            for x in v {
                out.extend(edge(x, first)?);
            }
            Some(out)
        }
        HirKind::Concat(v) => {
            let mut it: Box<dyn Iterator<Item = &Hir>> = if first {
                Box::new(v.iter())
            } else {
                Box::new(v.iter().rev())
            };
            loop {
                let x = it.next()?;
                if matches!(x.kind(), HirKind::Look(_)) {
                    continue;
                }
                if x.properties().minimum_len().unwrap_or(0) == 0 {
                    return None;
                }
                return edge(x, first);
            }
        }
        _ => None,
    }
}

/// A match of `h` ends right before a word start: `h` is a word-boundary or start-of-line
/// assertion, or always ends with a non-word byte.
fn boundary_before(h: &Hir) -> bool {
    match h.kind() {
        HirKind::Look(l) => matches!(
            l,
            Look::WordAscii
                | Look::WordStartAscii
                | Look::WordStartHalfAscii
                | Look::Start
                | Look::StartLF
                | Look::StartCRLF
        ),
        _ => edge(h, false).is_some_and(|e| !e.is_empty() && e.iter().all(|&b| !is_word(b))),
    }
}

/// A match of `h` starts with a non-word byte (so the anchor before it is a whole word).
fn boundary_after(h: &Hir) -> bool {
    edge(h, true).is_some_and(|e| !e.is_empty() && e.iter().all(|&b| !is_word(b)))
}

/// Cost of an anchor set (expected hits per byte, roughly): lower is better.
fn cost(set: &[Anchor]) -> f64 {
    set.iter()
        .map(|a| {
            let len = i32::try_from(a.lit.len()).unwrap_or(i32::MAX);
            let base = if a.lit[0] == b'.' { 0.01 } else { 1.0 };
            base * 20f64.powi(-len) * if a.whole { 0.5 } else { 1.0 }
        })
        .sum()
}

/// Anchors from a run of concatenated literals, if they qualify: at least two bytes from
/// a letter at a proved word start (leading non-word bytes of the literal prove one
/// too), or starting with `.`.
fn candidate(set: &[Vec<u8>], word_start: bool, whole: bool) -> Option<Vec<Anchor>> {
    set.iter()
        .map(|s| {
            if s.first() == Some(&b'.') {
                return (s.len() >= 2).then(|| Anchor {
                    lit: s.clone(),
                    whole,
                });
            }
            let lead = s.iter().take_while(|&&c| !is_word(c) && c != b'.').count();
            let t = &s[lead..];
            let ok = t.len() >= 2 && t[0].is_ascii_alphabetic() && (word_start || lead > 0);
            ok.then(|| Anchor {
                lit: t.to_vec(),
                whole,
            })
        })
        .collect()
}

fn anchors(h: &Hir) -> Option<(Vec<Anchor>, f64)> {
    let better = |best: &mut Option<(Vec<Anchor>, f64)>, a: Vec<Anchor>| {
        let c = cost(&a);
        if best.as_ref().is_none_or(|(_, bc)| c < *bc) {
            *best = Some((a, c));
        }
    };
    match h.kind() {
        HirKind::Capture(c) => anchors(&c.sub),
        HirKind::Repetition(r) if r.min >= 1 => anchors(&r.sub),
        HirKind::Alternation(v) => {
            let mut all = Vec::new();
            for x in v {
                all.extend(anchors(x)?.0);
            }
            all.sort_by(|a, b| a.lit.cmp(&b.lit).then(a.whole.cmp(&b.whole)));
            all.dedup();
            let c = cost(&all);
            Some((all, c))
        }
        HirKind::Concat(v) => {
            let mut best = None;
            for x in v {
                if let Some((a, _)) = anchors(x) {
                    better(&mut best, a);
                }
            }
            for i in 0..v.len() {
                let word_start = i > 0 && boundary_before(&v[i - 1]);
                let mut set = vec![Vec::new()];
                for j in i..v.len() {
                    let Some(next) = exact(&v[j]).and_then(|e| cross(&set, &e)) else {
                        break;
                    };
                    set = next;
                    let whole = j + 1 < v.len() && boundary_after(&v[j + 1]);
                    if let Some(a) = candidate(&set, word_start, whole) {
                        better(&mut best, a);
                    }
                }
            }
            best
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------
// Scanning

/// The gate of one pattern group: see the module documentation.
pub(crate) struct Gate {
    /// Shortest long token (0: none).
    run: usize,
    /// Anchors at word starts, and those starting with `.`.
    words: Vec<Anchor>,
    dots: Vec<Anchor>,
    /// Bit `(b1 & 31)` of entry `b0 & 31`: some word anchor starts with `b0 b1`.
    pairs: [u32; 32],
    /// Bit `(b2 & 31)` of entry `(b0 & 31) * 32 + (b1 & 31)`: some word anchor starts
    /// with `b0 b1 b2` (every `b2` for a two-byte anchor). Common words pass the pair
    /// test ("co", "se", "wa"); this one sends far fewer of them to the comparison.
    triples: Vec<u32>,
    /// Per pair `(b0 & 31) * 32 + (b1 & 31)`: the range of `words` (sorted by pair)
    /// starting with it.
    by_pair: Vec<(u16, u16)>,
}

fn pair_key(lit: &[u8]) -> usize {
    usize::from(lit[0] & 31) * 32 + usize::from(lit[1] & 31)
}

impl Gate {
    /// The gate of a group whose patterns have these proofs.
    pub(crate) fn new(proofs: &[Proof]) -> Gate {
        let mut g = Gate {
            run: 0,
            words: Vec::new(),
            dots: Vec::new(),
            pairs: [0; 32],
            triples: vec![0; 1024],
            by_pair: vec![(0, 0); 1024],
        };
        for p in proofs {
            match p {
                Proof::Rare => {}
                Proof::Run(k) => g.run = if g.run == 0 { *k } else { g.run.min(*k) },
                Proof::Anchors(a) => {
                    for a in a {
                        if a.lit[0] == b'.' {
                            g.dots.push(a.clone());
                        } else {
                            g.pairs[usize::from(a.lit[0] & 31)] |= 1 << (a.lit[1] & 31);
                            g.triples[pair_key(&a.lit)] |=
                                a.lit.get(2).map_or(u32::MAX, |&c| 1 << (c & 31));
                            g.words.push(a.clone());
                        }
                    }
                }
            }
        }
        g.words.sort_by_key(|a| pair_key(&a.lit));
        g.words.dedup();
        for (i, a) in g.words.iter().enumerate() {
            let i = u16::try_from(i).unwrap_or(u16::MAX);
            let e = &mut g.by_pair[pair_key(&a.lit)];
            if e.1 == 0 {
                e.0 = i;
            }
            e.1 = i + 1;
        }
        g
    }

    /// The first gate position in `from..to` of `b`.
    pub(crate) fn first(&self, b: &[u8], from: usize, to: usize) -> Option<usize> {
        self.scan(b, from, to, false)
    }

    /// The last gate position in `from..to` of `b`.
    pub(crate) fn last(&self, b: &[u8], from: usize, to: usize) -> Option<usize> {
        let r = last_rare(b, from, to);
        self.scan(b, r.map_or(from, |r| r + 1), to, true).or(r)
    }

    /// The first (or last) gate position in `from..to`, in one pass over 64-byte blocks
    /// with bit masks of the letters and of the bytes above 0x20.
    fn scan(&self, b: &[u8], from: usize, to: usize, last: bool) -> Option<usize> {
        let k = self.run;
        let better = |p: usize, h: Option<usize>| match h {
            Some(h) if last => Some(h.max(p)),
            Some(h) => Some(h.min(p)),
            None => Some(p),
        };
        let mut found: Option<usize> = None;
        // The start of the run of bytes above 0x20 still open at `base`.
        let mut open: Option<usize> = None;
        if k > 0 && from < to && b[from] > b' ' {
            let mut s = from;
            while s > 0 && b[s - 1] > b' ' && from - s < k {
                s -= 1;
            }
            open = Some(s);
        }
        let mut base = from;
        while base < to {
            let n = (to - base).min(64);
            let valid = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
            let (letters, above) = masks(&b[base..base + n]);
            let mut hit: Option<usize> = None;
            // Rare bytes and dot anchors, among the non-letters above 0x20.
            let mut other = above & !letters & valid;
            while other != 0 {
                let p = base + other.trailing_zeros() as usize;
                other &= other - 1;
                let c = b[p];
                if is_rare(c) || (c == b'.' && self.dots.iter().any(|a| anchor_at(b, p, a))) {
                    hit = better(p, hit);
                    if !last {
                        break;
                    }
                }
            }
            // Word anchors.
            if !self.words.is_empty() {
                let prev = u64::from(base > 0 && b[base - 1].is_ascii_alphabetic());
                let mut starts = letters & !((letters << 1) | prev) & valid;
                while starts != 0 {
                    let p = base + starts.trailing_zeros() as usize;
                    starts &= starts - 1;
                    if !last && hit.is_some_and(|h| p >= h) {
                        break;
                    }
                    if p + 1 >= b.len() {
                        continue;
                    }
                    let (c0, c1) = (b[p], b[p + 1]);
                    let miss = match b.get(p + 2) {
                        Some(&c2) => self.triples[pair_key(&[c0, c1])] & (1 << (c2 & 31)) == 0,
                        None => self.pairs[usize::from(c0 & 31)] & (1 << (c1 & 31)) == 0,
                    };
                    if miss {
                        continue;
                    }
                    let (lo, hi) = self.by_pair[pair_key(&[c0, c1])];
                    let words = &self.words[usize::from(lo)..usize::from(hi)];
                    if words.iter().any(|a| anchor_at(b, p, a)) {
                        hit = better(p, hit);
                        if !last {
                            break;
                        }
                    }
                }
            }
            // Long tokens: runs of bytes above 0x20 of at least `k` bytes.
            if k > 0 {
                let ws = !above & valid;
                let long = |s: usize, e: usize, hit: &mut Option<usize>| {
                    // `s..e` is a whole run; its positions in `from..to` are gate positions.
                    if e - s >= k && e > from {
                        *hit = better(if last { e - 1 } else { s.max(from) }, *hit);
                    }
                };
                if ws == 0 {
                    let s = *open.get_or_insert(base);
                    if base + n - s >= k {
                        // Long already; it may go on, but these positions are in it.
                        hit = better(if last { base + n - 1 } else { s.max(from) }, hit);
                    }
                } else {
                    let lead = ws.trailing_zeros() as usize;
                    let s = open.take().unwrap_or(base);
                    long(s, base + lead, &mut hit);
                    // Runs between two spaces of this block (rare: walk them).
                    let inner = runs_at_least(above & valid, k) & !((1u64 << lead) - 1);
                    let tail = 63 - ws.leading_zeros() as usize;
                    if inner != 0 {
                        let mut z = ws & !(1u64 << lead);
                        let mut s = base + lead + 1;
                        while z != 0 {
                            let e = base + z.trailing_zeros() as usize;
                            z &= z - 1;
                            long(s, e, &mut hit);
                            s = e + 1;
                        }
                    }
                    if tail + 1 < n {
                        open = Some(base + tail + 1);
                    }
                }
            }
            if let Some(h) = hit {
                if !last {
                    // A run still open before `h` may yet prove long.
                    if let Some(s) = open.filter(|&s| s < h) {
                        let mut e = base + n;
                        while e < b.len() && b[e] > b' ' && e - s < k {
                            e += 1;
                        }
                        if e - s >= k {
                            return Some(s.max(from));
                        }
                    }
                    return Some(h);
                }
                found = better(h, found);
            }
            base += n;
        }
        if let Some(s) = open {
            // The run goes on to `to`: measure it to its real end.
            let mut e = to;
            while e < b.len() && b[e] > b' ' && e - s < k {
                e += 1;
            }
            if e - s >= k && to > from {
                found = better(if last { to - 1 } else { s.max(from) }, found);
            }
        }
        found
    }
}

/// Bit `i` set when bits `i..i + k` of `m` are all set.
fn runs_at_least(m: u64, k: usize) -> u64 {
    let mut r = m;
    let mut len = 1;
    while len < k {
        let step = (k - len).min(len);
        r &= r >> step;
        len += step;
    }
    r
}

/// Whether anchor `a` starts at `p` of `b`.
fn anchor_at(b: &[u8], p: usize, a: &Anchor) -> bool {
    let n = a.lit.len();
    p + n <= b.len()
        && b[p..p + n].eq_ignore_ascii_case(&a.lit)
        && (!a.whole || p + n == b.len() || !is_word(b[p + n]))
}

/// Bits `k` set when `b[k]` is an ASCII letter, and when it is above 0x20 (`b` at most
/// 64 bytes).
fn masks(b: &[u8]) -> (u64, u64) {
    const HI: u64 = 0x8080_8080_8080_8080;
    const LO: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let gather = |h: u64| (h >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56;
    let (mut m, mut a) = (0u64, 0u64);
    let chunks = b.chunks_exact(8);
    let rem = chunks.remainder();
    // Last chunk first, shifting in: the serial dependency keeps this scalar, which is
    // about twice as fast as the compiler's vectorized form (SSE2 has no 64-bit multiply).
    for c in chunks.rev() {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let x = u64::from_le_bytes(w);
        let y = x | 0x2020_2020_2020_2020;
        let lo = y & LO;
        let ge_a = lo + 0x1f1f_1f1f_1f1f_1f1f;
        let ge_brace = lo + 0x0505_0505_0505_0505;
        m = (m << 8) | gather(ge_a & !ge_brace & !x & HI);
        // Above 0x20: the low seven bits plus 0x5f carry into the high bit, or the
        // high bit is set.
        a = (a << 8) | gather((((x & LO) + 0x5f5f_5f5f_5f5f_5f5f) | x) & HI);
    }
    let done = b.len() - rem.len();
    for (k, &c) in rem.iter().enumerate() {
        m |= u64::from(c.is_ascii_alphabetic()) << (done + k);
        a |= u64::from(c > b' ') << (done + k);
    }
    (m, a)
}

/// The last rare byte in `from..to`.
fn last_rare(b: &[u8], from: usize, to: usize) -> Option<usize> {
    let rest = b.get(from..to)?;
    let mut end = rest.len();
    for chunk in rest.rchunks(32) {
        end -= chunk.len();
        if chunk.iter().fold(false, |a, &c| a | is_rare(c)) {
            return chunk
                .iter()
                .rposition(|&c| is_rare(c))
                .map(|i| from + end + i);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(p: &str) -> Vec<String> {
        match proof(p) {
            Some(Proof::Anchors(a)) => a
                .iter()
                .map(|a| String::from_utf8(a.lit.clone()).unwrap() + if a.whole { "$" } else { "" })
                .collect(),
            other => panic!("{p}: {other:?}"),
        }
    }

    #[test]
    fn proofs() {
        assert_eq!(proof("sk-[A-Za-z0-9]{20}"), Some(Proof::Rare));
        assert_eq!(proof("[0-9a-f]{2}(?::[0-9a-f]{2}){5}"), Some(Proof::Rare));
        assert_eq!(
            proof("(?-u:\\b)[A-Za-z]{16}(?-u:\\b)"),
            Some(Proof::Run(16))
        );
        assert_eq!(proof("[a-z]{1,4}"), None);
        assert_eq!(
            words("(?i:(?-u:\\b)(?:password|pw)[ ]is)"),
            ["password is", "pw is"]
        );
        assert_eq!(
            words("(?i:(?-u:\\b)(?:password|pw))[ ]"),
            ["password ", "pw "]
        );
        assert_eq!(words("[a-z]{1,9}[ ](?i:at)[ ][a-z]{1,9}"), ["at "]);
        assert_eq!(words("[a-z]{1,9}\\.[a-z][a-z]{0,8}"), proof_dot());
    }

    #[test]
    fn builtin_filters_are_gated() {
        let mut seen = 0;
        for (_, text) in crate::engine::BUILTIN_FILTERS {
            let file = crate::engine::filter::parse_file("builtin", text).unwrap();
            for f in file.filter {
                let Some(p) = f.pattern.as_deref() else {
                    continue;
                };
                let proof = proof(p);
                eprintln!(
                    "{}: {:?}",
                    f.id,
                    proof.as_ref().map(|p| match p {
                        Proof::Rare => "rare".to_string(),
                        Proof::Run(k) => format!("run {k}"),
                        Proof::Anchors(a) => format!(
                            "{} anchors, e.g. {:?}",
                            a.len(),
                            String::from_utf8_lossy(&a[0].lit)
                        ),
                    })
                );
                assert!(proof.is_some(), "{} cannot be gated", f.id);
                seen += 1;
            }
        }
        assert!(seen > 40);
    }

    /// Every gate position, by brute force.
    fn reference(g: &Gate, b: &[u8]) -> Vec<bool> {
        let mut out = vec![false; b.len()];
        let mut i = 0;
        while i < b.len() {
            if b[i] <= b' ' {
                i += 1;
                continue;
            }
            let mut e = i;
            while e < b.len() && b[e] > b' ' {
                e += 1;
            }
            if g.run > 0 && e - i >= g.run {
                out[i..e].iter_mut().for_each(|x| *x = true);
            }
            i = e;
        }
        for p in 0..b.len() {
            let start = p == 0 || !b[p - 1].is_ascii_alphabetic();
            out[p] |= is_rare(b[p])
                || g.dots.iter().any(|a| anchor_at(b, p, a))
                || (start && g.words.iter().any(|a| anchor_at(b, p, a)));
        }
        out
    }

    #[test]
    fn scanning_matches_brute_force() {
        let g = Gate::new(&[
            Proof::Run(5),
            Proof::Anchors(vec![
                Anchor {
                    lit: b"pw".to_vec(),
                    whole: true,
                },
                Anchor {
                    lit: b"at ".to_vec(),
                    whole: false,
                },
                Anchor {
                    lit: b".t".to_vec(),
                    whole: false,
                },
            ]),
        ]);
        let alphabet = b"apwtPA .,x\n1";
        let mut seed = 7u64;
        for len in [0usize, 1, 5, 63, 64, 65, 130, 300] {
            for _ in 0..60 {
                let b: Vec<u8> = (0..len)
                    .map(|_| {
                        seed = seed
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        // Mostly letters and spaces, so runs and anchors occur.
                        alphabet[((seed >> 33) % alphabet.len() as u64) as usize]
                    })
                    .collect();
                let want = reference(&g, &b);
                for from in 0..=len {
                    for to in [from, (from + 1).min(len), (from + 70).min(len), len] {
                        let first = (from..to).find(|&p| want[p]);
                        let last = (from..to).rev().find(|&p| want[p]);
                        assert_eq!(
                            g.first(&b, from, to),
                            first,
                            "{:?} {from}..{to}",
                            String::from_utf8_lossy(&b)
                        );
                        assert_eq!(
                            g.last(&b, from, to),
                            last,
                            "{:?} {from}..{to}",
                            String::from_utf8_lossy(&b)
                        );
                    }
                }
            }
        }
    }

    fn proof_dot() -> Vec<String> {
        (b'a'..=b'z').map(|c| format!(".{}", c as char)).collect()
    }

    #[test]
    fn scanning() {
        let g = Gate::new(&[
            Proof::Run(14),
            Proof::Anchors(vec![Anchor {
                lit: b"pw".to_vec(),
                whole: true,
            }]),
        ]);
        let t = b"the pwd is here, upw and PW now; abcdefghijklmnop end: x";
        let b = &t[..];
        assert_eq!(g.first(b, 0, b.len()), Some(25));
        assert_eq!(g.first(b, 26, b.len()), Some(33));
        assert_eq!(g.first(b, 40, b.len()), Some(40));
        assert_eq!(g.first(b, 50, b.len()), Some(53));
        assert_eq!(g.last(b, 0, 53), Some(48));
        assert_eq!(g.last(b, 0, 30), Some(25));
        assert_eq!(g.first(b, 0, 20), None);
    }
}
