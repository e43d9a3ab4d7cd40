//! The capture sink: a bounded queue and one writer thread appending JSON lines to a file
//! rotated by size. Requests never wait for it: when the queue is full a record is
//! dropped and counted.
//!
//! Each line:
//!
//! ```text
//! {"retention":{"class":"training","days":365,"expires_at":"2027-11-22T10:00:00Z"},
//!  "tenant":"t_3f9a...","endpoint":"chat_completions",
//!  "request":{...the body as the redact layer forwarded it...},
//!  "response":{...the answer as the upstream sent it...} | {"events":[...SSE data...]}}
//! ```
//!
//! Before a record is written, the writer makes it safe to keep: every string value of the
//! request and the answer goes through the detector again with the `redact` action (the
//! redact layer scans only the fields that carry content, and PII the model produced is
//! still in the upstream's answer), client metadata fields of the request (`user`,
//! `metadata`, `safety_identifier`, `prompt_cache_key`) are dropped, and base64 JPEG and
//! PNG images (data URLs or bare) lose their EXIF, GPS, XMP and text metadata (an image
//! that cannot be cleaned is replaced by `[IMAGE]`). The tenant is a keyed hash, and no
//! header is ever written (so no client address, user agent or key id).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use bytes::Bytes;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::image;
use crate::engine::{Redactor, Session, json as ejson};
use crate::policy::Class;
use crate::telemetry::{Stamp, event};

/// Where and how the sink writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureOptions {
    /// The JSONL file; rotated files are `<path>.<unix seconds>.<n>`.
    pub path: PathBuf,
    /// Rotate before the file would grow past this many bytes.
    pub max_bytes: u64,
    /// Records waiting to be written; more are dropped (and counted).
    pub queue: usize,
    /// Largest request or answer captured (bytes); larger exchanges are not captured.
    pub max_record_bytes: usize,
}

impl CaptureOptions {
    /// Defaults: 64 MiB files, a queue of 1,024 records, 4 MiB per body.
    pub fn new(path: impl Into<PathBuf>) -> CaptureOptions {
        CaptureOptions {
            path: path.into(),
            max_bytes: 64 << 20,
            queue: 1024,
            max_record_bytes: 4 << 20,
        }
    }
}

/// Replaces tenant names by `t_` and 20 hex digits of HMAC-SHA256 under a key.
#[derive(Clone)]
pub struct TenantHasher(Arc<[u8]>);

impl std::fmt::Debug for TenantHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TenantHasher(..)")
    }
}

impl TenantHasher {
    pub fn new(key: impl Into<Vec<u8>>) -> TenantHasher {
        TenantHasher(key.into().into())
    }

    /// `t_` and 80 bits of HMAC-SHA256(key, tenant), hex.
    pub fn hash(&self, tenant: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(tenant.as_bytes());
        let tag = mac.finalize().into_bytes();
        let mut s = String::from("t_");
        for b in &tag[..10] {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }
}

/// One exchange to write.
pub(crate) struct Job {
    pub tenant: Option<String>,
    pub stamp: Stamp,
    pub endpoint: &'static str,
    pub request: Bytes,
    pub response: Bytes,
    pub sse: bool,
}

/// Sizes only: the request and the answer are content, never printed.
impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("endpoint", &self.endpoint)
            .field("request_bytes", &self.request.len())
            .field("response_bytes", &self.response.len())
            .finish_non_exhaustive()
    }
}

enum Msg {
    Job(Box<Job>),
    Flush(SyncSender<()>),
    /// A reloaded configuration's filters and allow-list, for the records after it.
    Redactor(Box<Redactor>),
}

/// Appends captured exchanges to a JSONL file from a writer thread. Cheap to share
/// (`Arc`); the thread ends when the last handle is dropped.
#[derive(Debug)]
pub struct CaptureSink {
    tx: SyncSender<Msg>,
    options: CaptureOptions,
    counters: Arc<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    written: AtomicU64,
    dropped: AtomicU64,
}

impl CaptureSink {
    /// Opens (creates) the file and starts the writer. `redactor` is the detector the
    /// writer runs over every captured string (its action is forced to `redact`).
    pub fn open(
        options: CaptureOptions,
        hasher: TenantHasher,
        redactor: Redactor,
    ) -> std::io::Result<CaptureSink> {
        let file = open_append(&options.path)?;
        let size = file.metadata()?.len();
        let (tx, rx) = sync_channel(options.queue.max(1));
        let counters = Arc::new(Counters::default());
        let writer = Writer {
            path: options.path.clone(),
            max_bytes: options.max_bytes,
            file,
            size,
            seq: 0,
            hasher,
            redactor: redactor.with_action(crate::engine::Action::Redact),
            counters: counters.clone(),
        };
        std::thread::Builder::new()
            .name("veilgate-capture".into())
            .spawn(move || writer.run(rx))?;
        Ok(CaptureSink {
            tx,
            options,
            counters,
        })
    }

    /// The options the sink was opened with.
    pub fn options(&self) -> &CaptureOptions {
        &self.options
    }

    /// Queues a record; never blocks. `false` (and counted) when the queue is full.
    pub(crate) fn submit(&self, job: Job) -> bool {
        match self.tx.try_send(Msg::Job(Box::new(job))) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.dropped();
                false
            }
        }
    }

    pub(crate) fn dropped(&self) {
        self.counters.dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// Records written so far.
    pub fn written(&self) -> u64 {
        self.counters.written.load(Ordering::Relaxed)
    }

    /// Records dropped so far (queue full, too large, unwritable, not cleanable).
    pub fn dropped_total(&self) -> u64 {
        self.counters.dropped.load(Ordering::Relaxed)
    }

    /// Scrubs records queued after this call with `redactor` (a reload's filters and
    /// allow-list). Waits for room in the queue: for reloads, not for request paths.
    pub fn set_redactor(&self, redactor: Redactor) {
        let _ = self.tx.send(Msg::Redactor(Box::new(redactor)));
    }

    /// Blocks until every record queued before the call is written (for tests and
    /// shutdown; not for request paths).
    pub fn flush(&self) {
        let (tx, rx) = sync_channel(1);
        if self.tx.send(Msg::Flush(tx)).is_ok() {
            let _ = rx.recv();
        }
    }
}

/// Opens for appending; a new file is readable by its owner only (it holds training data).
fn open_append(path: &Path) -> std::io::Result<File> {
    let mut o = OpenOptions::new();
    o.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o.open(path)
}

struct Writer {
    path: PathBuf,
    max_bytes: u64,
    file: File,
    size: u64,
    seq: u64,
    hasher: TenantHasher,
    redactor: Redactor,
    counters: Arc<Counters>,
}

impl Writer {
    fn run(mut self, rx: Receiver<Msg>) {
        while let Ok(msg) = rx.recv() {
            match msg {
                Msg::Job(job) => {
                    let ok = match record(&job, &self.hasher, &self.redactor) {
                        Some(line) => self.write(line),
                        None => false,
                    };
                    let c = if ok {
                        &self.counters.written
                    } else {
                        &self.counters.dropped
                    };
                    c.fetch_add(1, Ordering::Relaxed);
                }
                Msg::Flush(done) => {
                    let _ = self.file.flush();
                    let _ = done.send(());
                }
                Msg::Redactor(r) => {
                    self.redactor = r.with_action(crate::engine::Action::Redact);
                }
            }
        }
        let _ = self.file.flush();
    }

    fn write(&mut self, mut line: String) -> bool {
        line.push('\n');
        if self.size > 0 && self.size + line.len() as u64 > self.max_bytes {
            if let Err(e) = self.rotate() {
                event!(
                    WARN,
                    "veilgate::ops",
                    &Stamp::now(Class::Security, &Default::default()),
                    "training capture: rotation failed",
                    error = %e,
                );
            }
        }
        match self.file.write_all(line.as_bytes()) {
            Ok(()) => {
                self.size += line.len() as u64;
                true
            }
            Err(e) => {
                event!(
                    WARN,
                    "veilgate::ops",
                    &Stamp::now(Class::Security, &Default::default()),
                    "training capture: write failed, record dropped",
                    error = %e,
                );
                false
            }
        }
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        self.file.flush()?;
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut name = self.path.clone().into_os_string();
        loop {
            self.seq += 1;
            let mut candidate = name.clone();
            candidate.push(format!(".{secs}.{}", self.seq));
            if !Path::new(&candidate).exists() {
                name = candidate;
                break;
            }
        }
        std::fs::rename(&self.path, &name)?;
        self.file = open_append(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

/// Request fields that describe the client rather than the exchange.
const CLIENT_METADATA: [&str; 4] = ["user", "metadata", "safety_identifier", "prompt_cache_key"];

/// The JSON line for a job, or `None` if some part cannot be made safe.
fn record(job: &Job, hasher: &TenantHasher, redactor: &Redactor) -> Option<String> {
    let mut session = Session::default();
    let mut request = scrub(&job.request, redactor, &mut session)?;
    if let Value::Object(m) = &mut request {
        for k in CLIENT_METADATA {
            m.remove(k);
        }
    }
    let response = if job.sse {
        // The stream as a whole first: a value the model streamed over several deltas
        // matches in no single event, but does per channel (choice, block, tool call).
        let whole = crate::engine::redact_bytes_with(
            redactor,
            &job.response,
            crate::engine::Format::Sse,
            &mut session,
        )
        .ok()?;
        let text = std::str::from_utf8(&whole).ok()?;
        let mut events = Vec::new();
        for line in text.lines() {
            let Some(data) = line.strip_prefix("data:") else {
                continue;
            };
            let data = data.trim();
            if data.is_empty() || data == "[DONE]" {
                continue;
            }
            events.push(scrub(data.as_bytes(), redactor, &mut session)?);
        }
        json!({ "events": events })
    } else {
        scrub(&job.response, redactor, &mut session)?
    };
    let tenant = job.tenant.as_deref().map(|t| hasher.hash(t));
    let line = json!({
        "retention": {
            "class": job.stamp.class.as_str(),
            "days": job.stamp.days,
            "expires_at": job.stamp.expires_at,
        },
        "tenant": tenant,
        "endpoint": job.endpoint,
        "request": request,
        "response": response,
    });
    Some(line.to_string())
}

/// A body made safe to keep: JSON with every string value redacted and images cleaned;
/// text redacted whole. `None` when neither works.
fn scrub(body: &[u8], redactor: &Redactor, session: &mut Session) -> Option<Value> {
    if body.trim_ascii().is_empty() {
        return Some(Value::Null);
    }
    if let Ok(out) = ejson::redact_json(redactor, body, session) {
        if let Ok(mut v) = serde_json::from_slice::<Value>(&out) {
            clean_images(&mut v);
            return Some(v);
        }
    }
    let text = std::str::from_utf8(body).ok()?;
    let out = redactor.redact_str(text, session).ok()?;
    Some(Value::String(out.into_owned()))
}

/// Every base64 JPEG or PNG in the document, as a data URL or bare, without metadata.
fn clean_images(v: &mut Value) {
    match v {
        Value::String(s) => {
            if let Some(clean) = clean_image_string(s) {
                *s = clean;
            }
        }
        Value::Array(a) => a.iter_mut().for_each(clean_images),
        Value::Object(m) => m.values_mut().for_each(clean_images),
        _ => {}
    }
}

/// The cleaned form of a string holding a base64 image; `None` for other strings.
fn clean_image_string(s: &str) -> Option<String> {
    let (prefix, data) = match s.strip_prefix("data:") {
        Some(rest) => {
            let i = rest.find(";base64,")?;
            s.split_at(5 + i + 8)
        }
        None if s.len() >= 64 => ("", s),
        None => return None,
    };
    // Only the first bytes are needed to tell an image.
    let head = image::base64_decode(data.get(..data.len().min(16) & !3)?)?;
    if !(image::is_jpeg(&head) || image::is_png(&head)) {
        return None;
    }
    let bytes = image::base64_decode(data.trim());
    match bytes.as_deref().and_then(image::strip_image_metadata) {
        Some(clean) => Some(format!("{prefix}{}", image::base64_encode(&clean))),
        None => Some("[IMAGE]".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Engine;

    fn redactor() -> Redactor {
        Redactor::new(Arc::new(Engine::builtin().unwrap()))
            .with_action(crate::engine::Action::Redact)
    }

    fn job(request: &str, response: &str, sse: bool) -> Job {
        Job {
            tenant: Some("acme".into()),
            stamp: Stamp::now(Class::Training, &Default::default()),
            endpoint: "chat_completions",
            request: Bytes::from(request.to_string()),
            response: Bytes::from(response.to_string()),
            sse,
        }
    }

    #[test]
    fn records_are_scrubbed_hashed_and_stamped() {
        let h = TenantHasher::new(b"k".to_vec());
        let jpeg = image::base64_encode(&image::tests::jpeg_with_exif());
        let req = format!(
            r#"{{"model":"m","user":"jane.doe@acme-corp.io","messages":[{{"role":"user","content":[{{"type":"text","text":"hi <EMAIL_ABC123>"}},{{"type":"image_url","image_url":{{"url":"data:image/jpeg;base64,{jpeg}"}}}}]}}]}}"#
        );
        let resp = r#"{"choices":[{"message":{"content":"call +49 30 901820 or mail bob.smith@example-mail.org"}}]}"#;
        let line = record(&job(&req, resp, false), &h, &redactor()).unwrap();
        assert!(!line.contains("jane.doe"), "{line}");
        assert!(!line.contains("bob.smith"), "{line}");
        assert!(!line.contains("acme\""), "{line}");
        assert!(!line.contains("\"user\":"), "{line}");
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["retention"]["class"], "training");
        assert_eq!(v["retention"]["days"], 365);
        assert_eq!(v["tenant"], h.hash("acme"));
        assert!(v["tenant"].as_str().unwrap().starts_with("t_"));
        let url = v["request"]["messages"][0]["content"][1]["image_url"]["url"]
            .as_str()
            .unwrap();
        let data = url.strip_prefix("data:image/jpeg;base64,").unwrap();
        let img = image::base64_decode(data).unwrap();
        assert!(memchr::memmem::find(&img, b"GPS").is_none());
        assert!(image::is_jpeg(&img));
    }

    #[test]
    fn sse_answers_become_events() {
        let h = TenantHasher::new(b"k".to_vec());
        let sse = "data: {\"choices\":[{\"delta\":{\"content\":\"mail bob.smith@example-mail.org\"}}]}\n\ndata: [DONE]\n\n";
        let line = record(&job("{}", sse, true), &h, &redactor()).unwrap();
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["response"]["events"].as_array().unwrap().len(), 1);
        assert!(!line.contains("bob.smith"), "{line}");
        // A value the model streamed over several deltas is caught too.
        let d = |t: &str| {
            format!("data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{t}\"}}}}]}}\n\n")
        };
        let sse = [d("write to bob.sm"), d("ith@example-"), d("mail.org today")].concat();
        let line = record(&job("{}", &sse, true), &h, &redactor()).unwrap();
        assert!(
            !line.contains("bob.sm") && !line.contains("example-"),
            "{line}"
        );
    }

    #[test]
    fn bare_base64_png_is_cleaned_and_broken_images_dropped() {
        let png = image::base64_encode(&image::tests::png_with_text());
        let clean = clean_image_string(&png).unwrap();
        let img = image::base64_decode(&clean).unwrap();
        assert!(memchr::memmem::find(&img, b"GPS").is_none());
        let broken = image::base64_encode(&image::tests::jpeg_with_exif()[..40]);
        assert_eq!(
            clean_image_string(&format!("data:image/jpeg;base64,{broken}")).as_deref(),
            Some("[IMAGE]")
        );
        assert_eq!(clean_image_string("hello"), None);
    }

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_waiting() {
        let dir = std::env::temp_dir().join(format!("veilgate-sink-q-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut o = CaptureOptions::new(dir.join("capture.jsonl"));
        o.queue = 1;
        let sink = CaptureSink::open(o, TenantHasher::new(b"k".to_vec()), redactor()).unwrap();
        let text = "mail anna.kowalski@posteo.de ".repeat(200);
        let body = json!({ "messages": [{ "role": "user", "content": text }] }).to_string();
        let start = std::time::Instant::now();
        let accepted = (0..200)
            .filter(|_| sink.submit(job(&body, &body, false)))
            .count() as u64;
        assert!(
            start.elapsed() < std::time::Duration::from_secs(5),
            "never blocks"
        );
        sink.flush();
        assert!(
            sink.dropped_total() > 0,
            "a queue of one cannot take a burst"
        );
        assert_eq!(sink.written(), accepted);
        assert_eq!(sink.written() + sink.dropped_total(), 200);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_file_rotates_by_size() {
        let dir = std::env::temp_dir().join(format!("veilgate-sink-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("capture.jsonl");
        let mut o = CaptureOptions::new(&path);
        o.max_bytes = 600;
        let sink = CaptureSink::open(o, TenantHasher::new(b"k".to_vec()), redactor()).unwrap();
        for _ in 0..10 {
            assert!(sink.submit(job(
                r#"{"a":"some text here"}"#,
                r#"{"b":"answer text"}"#,
                false
            )));
        }
        sink.flush();
        assert_eq!(sink.written(), 10);
        let files: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert!(files.len() > 1, "rotated: {files:?}");
        let mut lines = 0;
        for f in files {
            let f = f.unwrap().path();
            let text = std::fs::read_to_string(&f).unwrap();
            assert!(text.len() <= 600, "{}", f.display());
            for l in text.lines() {
                serde_json::from_str::<Value>(l).unwrap();
                lines += 1;
            }
        }
        assert_eq!(lines, 10);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
