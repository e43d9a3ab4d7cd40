#![no_main]
//! See fuzz/README.md; the checks live in fuzz/checks.rs (shared with tests/fuzz_corpus.rs).

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::sse(data));
