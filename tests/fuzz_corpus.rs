//! Replays the committed fuzz seed corpus (`fuzz/corpus/<target>/*`) through the same
//! checks as the fuzz targets (`fuzz/checks.rs`), on stable, under plain `cargo test`.
//! Every file is run; all failures are reported together, by file name.

#[path = "../fuzz/checks.rs"]
mod checks;

use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(
        files.len() >= 10,
        "{}: only {} seed files",
        dir.display(),
        files.len()
    );
    files
}

fn replay(target: &str, check: fn(&[u8])) {
    let mut failures = Vec::new();
    let files = corpus(target);
    for path in &files {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if let Err(p) = panic::catch_unwind(AssertUnwindSafe(|| check(&data))) {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!("{}: {msg}", path.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} {target} seeds fail:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[test]
fn json_scanner_corpus() {
    replay("json_scanner", checks::json_scanner);
}

#[test]
fn engine_corpus() {
    replay("engine", checks::engine);
}

#[test]
fn sse_corpus() {
    replay("sse", checks::sse);
}

/// The checks themselves catch what they claim to: a quick self-test on inline inputs.
#[test]
fn checks_accept_known_good_inputs() {
    checks::json_scanner(br#"{"a":"caf\u00e9 \ud83d\ude00 zz q","b":[1,-2.5e3,true,null]}"#);
    checks::json_scanner(b"[1e400]"); // serde_json: out of range; the scanner: valid (documented)
    checks::json_scanner(br#""\ud800""#); // both reject a lone surrogate
    checks::engine(b"plain words and nothing else");
    checks::sse(b": ping\n\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\ndata: [DONE]\n\n");
    checks::sse(b"data: \xff\n\n");
}
