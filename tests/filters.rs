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

/// Whether a detection covers all of `value` (its first occurrence) in `text`.
fn covered(engine: &Engine, text: &str, value: &str) -> Option<String> {
    let at = text.find(value).expect("value in text");
    engine
        .detect(text)
        .into_iter()
        .find(|d| d.start <= at && d.end >= at + value.len())
        .map(|d| d.entity.to_string())
}

#[test]
fn nordic_polish_and_belgian_personal_numbers_in_realistic_text() {
    let engine = Engine::builtin().unwrap();
    let found: &[(&str, &str, &str)] = &[
        (
            "Hej! Jag heter Karin Ek och mitt personnummer är 19811228-9874. Kan ni ändra min adress?",
            "19811228-9874",
            "SE_PERSONNUMMER",
        ),
        (
            "förnamn;efternamn;personnr;ort\nKarin;Ek;811228-9874;Umeå",
            "811228-9874",
            "SE_PERSONNUMMER",
        ),
        (
            "Dzień dobry, proszę o korektę faktury. Mój PESEL to 02270803624, nazwisko Nowak.",
            "02270803624",
            "PL_PESEL",
        ),
        (
            r#"{"imie":"Anna","nazwisko":"Wiśniewska","pesel":"85031101922","miasto":"Gdańsk"}"#,
            "85031101922",
            "PL_PESEL",
        ),
        (
            "Kære kundeservice\nMit CPR-nr. er 150384-2617 og jeg er flyttet til Odense.",
            "150384-2617",
            "DK_CPR",
        ),
        (
            "Asiakas soitti: henkilötunnus 131052-308T, osoite vaihtunut.",
            "131052-308T",
            "FI_HETU",
        ),
        (
            "2026-11-03T10:15:02Z INFO kyc applicant=Virtanen hetu=010101A123N score=0.93",
            "010101A123N",
            "FI_HETU",
        ),
        (
            "Hei, fødselsnummeret mitt er 24127649827 (Ola Nordmann).",
            "24127649827",
            "NO_FNR",
        ),
        (
            "Beste, mijn rijksregisternummer is 85.07.30-033.28 en mijn naam is Luc Peeters.",
            "85.07.30-033.28",
            "BE_NRN",
        ),
        (
            "Numéro de registre national : 93011422851",
            "93011422851",
            "BE_NRN",
        ),
        (
            r#"{"employee":{"name":"Mette Nielsen","national_id":"150384-2617"}}"#,
            "150384-2617",
            "NATIONAL_ID",
        ),
    ];
    for (text, value, entity) in found {
        assert_eq!(
            covered(&engine, text, value).as_deref(),
            Some(*entity),
            "{value} in {text:?}"
        );
    }
    // Same shapes without a context word, or failing their checks, stay.
    let kept: &[(&str, &str)] = &[
        ("Order 20241105-0001 shipped to Malmö.", "20241105-0001"),
        ("ordernummer 19811228-9874 levererad", "19811228-9874"),
        ("Numer faktury: 44051401359, termin 14 dni.", "44051401359"),
        ("PESEL 44051401358 (błędna cyfra kontrolna)", "44051401358"),
        ("Fakturanr. 150384-2617 betalt", "150384-2617"),
        ("batch 131052-308U rejected by QA", "131052-308U"),
        ("tracking 24127649827 via Posten", "24127649827"),
        ("build 85.07.30-033.29 is the last one", "85.07.30-033.29"),
        ("INSZ 85073003329 is ongeldig", "85073003329"),
        ("personnummer: 20241105-0001", "20241105-0001"),
    ];
    for (text, value) in kept {
        assert_eq!(covered(&engine, text, value), None, "{value} in {text:?}");
    }
}

#[test]
fn table_rows_sent_one_per_array_element_keep_their_header() {
    use std::sync::Arc;
    use veilgate::engine::{Action, Format, Redactor, redact_bytes};
    let r = Redactor::new(Arc::new(Engine::builtin().unwrap())).with_action(Action::Redact);
    let run = |body: &str| {
        String::from_utf8(redact_bytes(&r, body.as_bytes(), Format::Json).unwrap()).unwrap()
    };
    // An embeddings input of CSV rows: the date of birth is only known by its column.
    let out = run(
        r#"{"model":"text-embedding-3-small","input":["id,date_of_birth,plan","1,08/03/1982,pro","2,\"December 9, 1979\",free"],"other":["x","08/03/1982"]}"#,
    );
    assert_eq!(
        out,
        r#"{"model":"text-embedding-3-small","input":["id,date_of_birth,plan","1,[DATE_OF_BIRTH],pro","2,\"[DATE_OF_BIRTH]\",free"],"other":["x","08/03/1982"]}"#
    );
    // Without a header naming a field, rows are plain text: a bare date stays.
    let plain = r#"{"input":["id,created,plan","1,08/03/1982,pro"]}"#;
    assert_eq!(run(plain), plain);
}

#[test]
fn streamed_tables_keep_their_header_after_it_left_the_context() {
    use std::sync::Arc;
    use veilgate::engine::stream::Channel;
    use veilgate::engine::{Action, Redactor, Session};
    let r = Redactor::new(Arc::new(Engine::builtin().unwrap())).with_action(Action::Redact);
    // Only the header says that the second column holds dates of birth; forty rows take
    // it far out of the channel's context before the last ones arrive.
    let mut table = String::from("Here it is: id,date_of_birth,plan\n");
    for i in 0..40 {
        table.push_str(&format!("{i},19{}-03-{:02},pro\n", 50 + i, i % 28 + 1));
    }
    table.push_str("\nDates such as 1980-03-14 in prose stay.\n");
    let mut ch = Channel::new();
    let mut session = Session::default();
    let mut out = String::new();
    for piece in table.as_bytes().chunks(11) {
        let piece = std::str::from_utf8(piece).unwrap();
        out.push_str(&ch.push(&r, &mut session, piece).unwrap());
    }
    out.push_str(&ch.finish(&r, &mut session).unwrap());
    assert_eq!(out.matches(",[DATE_OF_BIRTH],pro\n").count(), 40, "{out}");
    assert!(
        out.ends_with("\nDates such as 1980-03-14 in prose stay.\n"),
        "{out}"
    );
}
