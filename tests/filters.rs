//! Every built-in filter's examples must be detected (with the exact marked span) and its
//! negative examples must not be: the same check as `veilgate filters check`.

use veilgate::engine::{Engine, check_filter};

#[test]
fn builtin_filter_examples_and_negative_examples() {
    let engine = Engine::builtin().expect("built-in filters compile");
    let mut problems = Vec::new();
    for f in engine.filters() {
        for p in check_filter(&engine, f) {
            problems.push(format!("{} ({}): {p}", f.id, f.source));
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn every_builtin_filter_is_bounded_and_documented_by_examples() {
    let engine = Engine::builtin().unwrap();
    assert!(
        engine.filters().len() >= 40,
        "only {} filters",
        engine.filters().len()
    );
    for f in engine.filters() {
        assert!(
            f.max_len > 0 && f.max_len <= 16 * 1024,
            "{}: max_len {}",
            f.id,
            f.max_len
        );
        assert!(
            !f.examples.is_empty() && !f.negative_examples.is_empty(),
            "{}",
            f.id
        );
    }
    assert!(engine.max_match_len() <= 16 * 1024);
}

#[test]
fn required_entities_are_covered() {
    let engine = Engine::builtin().unwrap();
    for entity in [
        "EMAIL",
        "PHONE",
        "CREDIT_CARD",
        "IBAN",
        "US_SSN",
        "IP_ADDRESS",
        "MAC_ADDRESS",
        "DATE_OF_BIRTH",
        "STREET_ADDRESS",
        "PERSON",
        "API_KEY",
        "JWT",
        "PRIVATE_KEY",
        "PASSWORD",
        "BEARER_TOKEN",
    ] {
        assert!(
            engine.filters().iter().any(|f| &*f.entity == entity),
            "no filter for {entity}"
        );
    }
}
