//! Filter definitions as data: the TOML schema, loading, and the checks that
//! `veilgate filters check` enforces.
//!
//! A filter file holds `[[filter]]` tables and, optionally, one `[allow]` table:
//!
//! ```toml
//! [[filter]]
//! id = "contact.email"
//! entity = "EMAIL"
//! pattern = '''[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){1,8}'''
//! validator = "email"
//! action = "pseudonymize"
//! examples = ["write to [[jane.doe@acme.io]]"]
//! negative_examples = ["user@example.com"]
//! ```
//!
//! Patterns must be bounded (no `*`, `+` or `{n,}`): the streaming holdback needs a
//! maximum match length. A named group `value` narrows the detection to that group.

use std::collections::HashSet;
use std::sync::Arc;

use serde::Deserialize;

use super::Error;
use super::action::Action;
use super::allow::AllowDef;
use super::validators::Validator;

/// Default number of bytes before a match searched for context words.
pub const DEFAULT_CONTEXT_WINDOW: usize = 48;

/// One `[[filter]]` table as written in a filter file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterDef {
    pub id: String,
    pub entity: String,
    #[serde(default)]
    pub description: Option<String>,
    /// A bounded regular expression. Exactly one of `pattern` and `detector` is set.
    #[serde(default)]
    pub pattern: Option<String>,
    /// A built-in detector instead of a pattern: `"names"` (the PERSON model) or
    /// `"field"` (values under the field names in `fields`).
    #[serde(default)]
    pub detector: Option<String>,
    /// For `detector = "field"`: the field names (JSON keys, `Label:` lines, CSV headers);
    /// a leading `*` matches as a suffix.
    #[serde(default)]
    pub fields: Vec<String>,
    #[serde(default)]
    pub validator: Option<String>,
    #[serde(default)]
    pub context: Vec<String>,
    #[serde(default)]
    pub context_window: Option<usize>,
    #[serde(default)]
    pub context_required: bool,
    #[serde(default)]
    pub action: Option<Action>,
    #[serde(default)]
    pub priority: i32,
    #[serde(default)]
    pub examples: Vec<String>,
    #[serde(default)]
    pub negative_examples: Vec<String>,
}

/// A whole filter file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterFile {
    #[serde(default)]
    pub filter: Vec<FilterDef>,
    #[serde(default)]
    pub allow: Option<AllowDef>,
}

/// How a filter finds candidates.
#[derive(Debug, Clone)]
pub(crate) enum Kind {
    /// Pattern number `pid` in the combined regex.
    Pattern { has_value_group: bool },
    /// The PERSON name model.
    Names,
    /// Values under field names.
    Field,
}

/// A filter ready to run.
#[derive(Debug, Clone)]
pub struct Filter {
    pub id: Arc<str>,
    pub entity: Arc<str>,
    pub action: Action,
    pub priority: i32,
    /// Longest possible match in bytes (context included).
    pub max_len: usize,
    /// Where the filter came from (file name), for error messages.
    pub source: Arc<str>,
    pub validator: Option<Validator>,
    pub(crate) validator_spec: String,
    pub examples: Vec<String>,
    pub negative_examples: Vec<String>,
    pub(crate) kind: Kind,
    /// Lower-cased context words.
    pub(crate) context: Vec<String>,
    pub(crate) context_window: usize,
    pub(crate) context_required: bool,
    pub(crate) pattern: Option<String>,
    pub(crate) fields: Vec<String>,
}

impl Filter {
    /// The validator's spec name, for listings.
    pub fn validator_name(&self) -> Option<&str> {
        self.validator
            .as_ref()
            .map(|_| self.validator_spec.as_str())
    }
}

/// Parses one filter file's text.
pub(crate) fn parse_file(source: &str, text: &str) -> Result<FilterFile, Error> {
    toml::from_str(text).map_err(|e| Error::Filter {
        source: source.to_string(),
        id: None,
        message: e.to_string(),
    })
}

/// Validates a definition on its own and turns it into a [`Filter`] (without the compiled
/// regex, which is built for all filters at once).
pub(crate) fn prepare(
    source: &Arc<str>,
    def: FilterDef,
    seen: &mut HashSet<String>,
) -> Result<Filter, Error> {
    let err = |message: String| Error::Filter {
        source: source.to_string(),
        id: Some(def.id.clone()),
        message,
    };
    if def.id.is_empty()
        || !def
            .id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return Err(err(
            "id must be non-empty ASCII letters, digits, '.', '_' or '-'".into(),
        ));
    }
    if !seen.insert(def.id.clone()) {
        return Err(err("duplicate filter id".into()));
    }
    if def.entity.is_empty()
        || !def
            .entity
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(err(format!(
            "entity {:?} must be UPPER_SNAKE_CASE",
            def.entity
        )));
    }
    let validator = match &def.validator {
        Some(spec) => Some(Validator::parse(spec).map_err(|m| err(format!("validator: {m}")))?),
        None => None,
    };
    let (kind, max_len) = match (&def.pattern, &def.detector) {
        (Some(p), None) => {
            let hir = regex_syntax::ParserBuilder::new()
                .build()
                .parse(p)
                .map_err(|e| err(format!("pattern does not parse:\n{e}")))?;
            let props = hir.properties();
            let Some(max_len) = props.maximum_len() else {
                return Err(err(
                    "pattern is unbounded (uses *, + or {n,}); streaming needs a maximum match length: use {m,n}".into(),
                ));
            };
            if props.minimum_len().unwrap_or(0) == 0 {
                return Err(err("pattern can match the empty string".into()));
            }
            let has_value_group = has_group(&hir, "value");
            (Kind::Pattern { has_value_group }, max_len)
        }
        (None, Some(d)) if d == "names" => (Kind::Names, super::person::NameModel::MAX_LEN),
        (None, Some(d)) if d == "field" => {
            if def.fields.is_empty() {
                return Err(err("a field detector needs `fields`".into()));
            }
            (Kind::Field, super::fields::MAX_VALUE)
        }
        (None, Some(d)) => {
            return Err(err(format!(
                "unknown detector {d:?} (known: \"names\", \"field\")"
            )));
        }
        _ => return Err(err("set exactly one of `pattern` and `detector`".into())),
    };
    if def.examples.is_empty() {
        return Err(err("a filter needs at least one example".into()));
    }
    if def.negative_examples.is_empty() {
        return Err(err("a filter needs at least one negative example".into()));
    }
    let validator_spec = def.validator.clone().unwrap_or_default();
    Ok(Filter {
        id: def.id.as_str().into(),
        entity: def.entity.as_str().into(),
        action: def.action.unwrap_or(Action::Pseudonymize),
        priority: def.priority,
        max_len,
        source: source.clone(),
        validator,
        validator_spec,
        examples: def.examples,
        negative_examples: def.negative_examples,
        kind,
        context: def.context.iter().map(|w| w.to_ascii_lowercase()).collect(),
        context_window: def.context_window.unwrap_or(DEFAULT_CONTEXT_WINDOW),
        context_required: def.context_required,
        pattern: def.pattern,
        fields: def.fields,
    })
}

fn has_group(hir: &regex_syntax::hir::Hir, name: &str) -> bool {
    use regex_syntax::hir::HirKind;
    match hir.kind() {
        HirKind::Capture(c) => c.name.as_deref() == Some(name) || has_group(&c.sub, name),
        HirKind::Concat(v) | HirKind::Alternation(v) => v.iter().any(|h| has_group(h, name)),
        HirKind::Repetition(r) => has_group(&r.sub, name),
        _ => false,
    }
}

/// Splits an example into its text (markers removed) and the marked span, if any.
/// `[[` and `]]` mark the exact span the filter must detect.
pub fn parse_example(example: &str) -> (String, Option<(usize, usize)>) {
    match (example.find("[["), example.find("]]")) {
        (Some(a), Some(b)) if a < b => {
            let mut text = String::with_capacity(example.len());
            text.push_str(&example[..a]);
            text.push_str(&example[a + 2..b]);
            text.push_str(&example[b + 2..]);
            (text, Some((a, b - 2)))
        }
        _ => (example.to_string(), None),
    }
}

/// The bytes a match of `pattern` can start with (all bytes when unknown).
pub(crate) fn first_bytes(pattern: &str) -> [bool; 256] {
    use regex_syntax::hir::literal::{ExtractKind, Extractor};
    let all = [true; 256];
    let Ok(hir) = regex_syntax::parse(pattern) else {
        return all;
    };
    let mut ex = Extractor::new();
    ex.kind(ExtractKind::Prefix)
        .limit_class(64)
        .limit_total(4096);
    let seq = ex.extract(&hir);
    let Some(lits) = seq.literals() else {
        return all;
    };
    let mut set = [false; 256];
    for lit in lits {
        match lit.as_bytes().first() {
            Some(&b) => set[usize::from(b)] = true,
            None => return all,
        }
    }
    set
}

/// Whether every match of `pattern` contains one of the `trigger` bytes: with those bytes
/// removed from every class and literal, the pattern can match nothing.
pub(crate) fn requires_bytes(pattern: &str, trigger: &[u8]) -> bool {
    let Ok(hir) = regex_syntax::parse(pattern) else {
        return false;
    };
    impossible(&strip_to(&hir, |b| !trigger.contains(&b)))
}

/// The HIR matches nothing.
pub(crate) fn impossible(h: &regex_syntax::hir::Hir) -> bool {
    h.properties().minimum_len().is_none()
}

/// `h` restricted to the bytes `keep` allows: what a match that uses no other byte can
/// be. A literal holding another byte fails, classes lose the other bytes, and a
/// repetition, concatenation or alternation whose parts can no longer match collapses.
/// Non-ASCII characters are kept when every byte from 0x80 up is, else all removed.
pub(crate) fn strip_to(
    h: &regex_syntax::hir::Hir,
    keep: impl Fn(u8) -> bool,
) -> regex_syntax::hir::Hir {
    use regex_syntax::hir::{ClassBytes, ClassBytesRange, ClassUnicode, ClassUnicodeRange};
    let kept = |r: std::ops::RangeInclusive<u8>| r.filter(|&b| keep(b)).collect::<Vec<u8>>();
    let bytes = ClassBytes::new(
        kept(0..=255)
            .into_iter()
            .map(|b| ClassBytesRange::new(b, b)),
    );
    let mut unicode = ClassUnicode::new(
        kept(0..=0x7f)
            .into_iter()
            .map(|b| ClassUnicodeRange::new(char::from(b), char::from(b))),
    );
    if (0x80..=255).all(&keep) {
        unicode.union(&ClassUnicode::new([ClassUnicodeRange::new(
            '\u{80}',
            char::MAX,
        )]));
    }
    strip_classes(h, &keep, &bytes, &unicode)
}

fn strip_classes(
    h: &regex_syntax::hir::Hir,
    keep: &impl Fn(u8) -> bool,
    bytes: &regex_syntax::hir::ClassBytes,
    unicode: &regex_syntax::hir::ClassUnicode,
) -> regex_syntax::hir::Hir {
    use regex_syntax::hir::{Class, Hir, HirKind};
    let strip = |x: &Hir| strip_classes(x, keep, bytes, unicode);
    match h.kind() {
        HirKind::Literal(l) if l.0.iter().any(|&b| !keep(b)) => Hir::fail(),
        HirKind::Literal(_) | HirKind::Empty | HirKind::Look(_) => h.clone(),
        HirKind::Class(Class::Unicode(c)) => {
            let mut c = c.clone();
            c.intersect(unicode);
            Hir::class(Class::Unicode(c))
        }
        HirKind::Class(Class::Bytes(c)) => {
            let mut c = c.clone();
            c.intersect(bytes);
            Hir::class(Class::Bytes(c))
        }
        HirKind::Repetition(r) => {
            let sub = strip(&r.sub);
            if impossible(&sub) {
                // Zero repetitions still match the empty string.
                return if r.min == 0 {
                    Hir::empty()
                } else {
                    Hir::fail()
                };
            }
            let mut r = r.clone();
            r.sub = Box::new(sub);
            Hir::repetition(r)
        }
        HirKind::Capture(c) => {
            let mut c = c.clone();
            c.sub = Box::new(strip(&c.sub));
            Hir::capture(c)
        }
        HirKind::Concat(v) => {
            let parts: Vec<Hir> = v.iter().map(strip).collect();
            if parts.iter().any(impossible) {
                Hir::fail()
            } else {
                Hir::concat(parts)
            }
        }
        HirKind::Alternation(v) => {
            let alts: Vec<Hir> = v.iter().map(strip).filter(|x| !impossible(x)).collect();
            if alts.is_empty() {
                Hir::fail()
            } else {
                Hir::alternation(alts)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn starts(p: &str) -> String {
        first_bytes(p)
            .iter()
            .enumerate()
            .filter(|(_, c)| **c)
            .map(|(b, _)| b as u8 as char)
            .collect()
    }

    #[test]
    fn first_byte_sets() {
        assert_eq!(starts("(?-u:\\b)[0-9]{4}"), "0123456789");
        assert_eq!(starts("sk-[a-z]{3}|AKIA[A-Z]{16}"), "As");
        assert_eq!(starts("(?i)ab"), "Aa");
        assert_eq!(first_bytes("[^x]{2}").iter().filter(|c| **c).count(), 256);
    }

    #[test]
    fn trigger_requirements() {
        let t = b"0123456789@";
        assert!(requires_bytes("[a-z]{1,9}@[a-z]{1,9}", t));
        assert!(requires_bytes("(?-u:\\b)[0-9]{4}", t));
        assert!(requires_bytes("(?i)ab[0-9]|c@", t));
        assert!(requires_bytes("x(?:[0-9]|@){1,3}", t));
        assert!(!requires_bytes("sk-[A-Za-z0-9]{3,9}", t));
        assert!(!requires_bytes("[a-z]{1,4}[0-9]{0,2}", t));
        assert!(!requires_bytes("a[0-9]?|b", t));
    }

    #[test]
    fn example_markers() {
        assert_eq!(
            parse_example("a [[bc]] d"),
            ("a bc d".to_string(), Some((2, 4)))
        );
        assert_eq!(parse_example("plain"), ("plain".to_string(), None));
    }
}
