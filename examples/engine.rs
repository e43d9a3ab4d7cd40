//! Using the detection engine as a library: detect, pseudonymize, restore.
//!
//! ```sh
//! cargo run --example engine
//! ```

use std::sync::Arc;

use veilgate::engine::{Action, Engine, Format, Key, Redactor, Session, redact_bytes_with};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Compile the built-in filters once; share the engine across threads.
    let engine = Arc::new(Engine::builtin()?);
    let redactor = Redactor::new(engine.clone())
        .with_key(Key::new(b"load-me-from-a-secret-store"))
        .with_action(Action::Pseudonymize)
        .with_entity_action("API_KEY", Action::Redact);

    let body = br#"{"model":"gpt-4o","messages":[{"role":"user","content":"Hi, I'm Anna Kowalski (anna.k@posteo.de). My key is sk-proj-4fQx9ZtLm2VbN8rKp3sWd7YhJc1AeGu6TnXo0BiRq5MvLzHw"}]}"#;
    let mut session = Session::default();
    let out = redact_bytes_with(&redactor, body, Format::Json, &mut session)?;
    println!("{}", String::from_utf8(out)?);

    // The session's reverse map restores pseudonyms in the answer.
    for (token, original) in session.pseudonyms() {
        println!("{token} restores to a {}-byte value", original.len());
    }
    for d in engine.detect("call +44 20 7946 0958 or mail ops@acme-corp.io") {
        println!("{} [{}..{}] by {}", d.entity, d.start, d.end, d.filter);
    }
    Ok(())
}
