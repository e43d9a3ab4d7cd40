//! Prometheus text metrics. Labels are upstream names, entity names, actions, status codes
//! and `veilgate_*` codes: never a value, a key, a tenant secret or a path with ids.
//! Every series carries its retention: `retention_class` (`usage` for traffic, `security`
//! for detections, refusals and reloads) and `retention_days` from the configured
//! schedule; a store expires a sample `retention_days` after its timestamp.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use crate::policy::{Class, Schedule};
use crate::provider::Direction;
use crate::redact::{Counts, Observer};

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0, 120.0,
];

#[derive(Debug, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    total: u64,
}

#[derive(Debug, Default)]
struct Inner {
    /// upstream -> status -> requests (nested, so a known upstream is found by `&str`:
    /// no key is allocated per request)
    requests: BTreeMap<String, BTreeMap<u16, u64>>,
    /// upstream -> time to response headers
    latency: BTreeMap<String, Histogram>,
    /// (direction, entity, action) -> detections
    detections: BTreeMap<(&'static str, String, &'static str), u64>,
    /// (direction, status, code) -> refusals
    refusals: BTreeMap<(&'static str, u16, String), u64>,
    /// (upstream, kind) -> upstream errors
    upstream_errors: BTreeMap<(String, &'static str), u64>,
    reloads: BTreeMap<&'static str, u64>,
}

/// The sidecar's metrics registry.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
    schedule: Mutex<Schedule>,
    /// The training capture sink, whose counters `/metrics` shows.
    capture: Mutex<Option<std::sync::Arc<crate::training::CaptureSink>>>,
}

fn dir(d: Direction) -> &'static str {
    match d {
        Direction::Request => "request",
        Direction::Response => "response",
    }
}

impl Metrics {
    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g)
    }

    /// Sets the schedule whose days the series carry (on start and reload).
    pub fn set_schedule(&self, schedule: Schedule) {
        *self.schedule.lock().unwrap_or_else(|p| p.into_inner()) = schedule;
    }

    /// Sets the capture sink whose written and dropped records are shown (on start and
    /// reload).
    pub fn set_capture(&self, sink: Option<std::sync::Arc<crate::training::CaptureSink>>) {
        *self.capture.lock().unwrap_or_else(|p| p.into_inner()) = sink;
    }

    /// One request answered (status as sent to the client) after `latency`.
    pub fn request(&self, upstream: &str, status: u16, latency: Duration) {
        self.with(|m| {
            let by_status = match m.requests.get_mut(upstream) {
                Some(b) => b,
                None => m.requests.entry(upstream.to_string()).or_default(),
            };
            *by_status.entry(status).or_default() += 1;
            let h = match m.latency.get_mut(upstream) {
                Some(h) => h,
                None => m.latency.entry(upstream.to_string()).or_default(),
            };
            let s = latency.as_secs_f64();
            for (i, b) in BUCKETS.iter().enumerate() {
                if s <= *b {
                    h.counts[i] += 1;
                }
            }
            h.sum += s;
            h.total += 1;
        });
    }

    /// The upstream failed (`connect`, `timeout`, `protocol`).
    pub fn upstream_error(&self, upstream: &str, kind: &'static str) {
        self.with(|m| {
            *m.upstream_errors
                .entry((upstream.to_string(), kind))
                .or_default() += 1
        });
    }

    /// A configuration reload (`ok` or `rejected`).
    pub fn reload(&self, outcome: &'static str) {
        self.with(|m| *m.reloads.entry(outcome).or_default() += 1);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let schedule = *self.schedule.lock().unwrap_or_else(|p| p.into_inner());
        let r = |c: Class| {
            format!(
                "retention_class=\"{}\",retention_days=\"{}\",",
                c.as_str(),
                schedule.days(c)
            )
        };
        let (usage, security) = (r(Class::Usage), r(Class::Security));
        let mut out = self.with(|m| {
            let mut s = String::new();
            let _ = writeln!(s, "# HELP veilgate_requests_total Requests answered, by upstream and status.");
            let _ = writeln!(s, "# TYPE veilgate_requests_total counter");
            for (u, st, n) in m.requests.iter().flat_map(|(u, b)| b.iter().map(move |(st, n)| (u, st, n))) {
                let _ = writeln!(s, "veilgate_requests_total{{{usage}upstream=\"{}\",status=\"{st}\"}} {n}", esc(u));
            }
            let _ = writeln!(s, "# HELP veilgate_request_duration_seconds Time to response headers.");
            let _ = writeln!(s, "# TYPE veilgate_request_duration_seconds histogram");
            for (u, h) in &m.latency {
                for (i, b) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        s,
                        "veilgate_request_duration_seconds_bucket{{{usage}upstream=\"{}\",le=\"{b}\"}} {}",
                        esc(u),
                        h.counts[i]
                    );
                }
                let _ = writeln!(
                    s,
                    "veilgate_request_duration_seconds_bucket{{{usage}upstream=\"{}\",le=\"+Inf\"}} {}",
                    esc(u),
                    h.total
                );
                let _ = writeln!(s, "veilgate_request_duration_seconds_sum{{{usage}upstream=\"{}\"}} {}", esc(u), h.sum);
                let _ = writeln!(s, "veilgate_request_duration_seconds_count{{{usage}upstream=\"{}\"}} {}", esc(u), h.total);
            }
            let _ = writeln!(s, "# HELP veilgate_detections_total Values detected, by direction, entity and action.");
            let _ = writeln!(s, "# TYPE veilgate_detections_total counter");
            for ((d, e, a), n) in &m.detections {
                let _ = writeln!(
                    s,
                    "veilgate_detections_total{{{security}direction=\"{d}\",entity=\"{}\",action=\"{a}\"}} {n}",
                    esc(e)
                );
            }
            let _ = writeln!(s, "# HELP veilgate_refusals_total Bodies refused, by direction, status and code.");
            let _ = writeln!(s, "# TYPE veilgate_refusals_total counter");
            for ((d, st, c), n) in &m.refusals {
                let _ = writeln!(
                    s,
                    "veilgate_refusals_total{{{security}direction=\"{d}\",status=\"{st}\",code=\"{}\"}} {n}",
                    esc(c)
                );
            }
            let _ = writeln!(s, "# HELP veilgate_upstream_errors_total Upstream failures, by upstream and kind.");
            let _ = writeln!(s, "# TYPE veilgate_upstream_errors_total counter");
            for ((u, k), n) in &m.upstream_errors {
                let _ = writeln!(s, "veilgate_upstream_errors_total{{{usage}upstream=\"{}\",kind=\"{k}\"}} {n}", esc(u));
            }
            let _ = writeln!(s, "# HELP veilgate_config_reloads_total Configuration reloads, by outcome.");
            let _ = writeln!(s, "# TYPE veilgate_config_reloads_total counter");
            for (o, n) in &m.reloads {
                let _ = writeln!(s, "veilgate_config_reloads_total{{{security}outcome=\"{o}\"}} {n}");
            }
            s
        });
        let capture = self
            .capture
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(sink) = capture {
            let _ = writeln!(
                out,
                "# HELP veilgate_capture_records_total Training capture records, by outcome (dropped: queue full, too large, not writable)."
            );
            let _ = writeln!(out, "# TYPE veilgate_capture_records_total counter");
            let _ = writeln!(
                out,
                "veilgate_capture_records_total{{{usage}outcome=\"written\"}} {}",
                sink.written()
            );
            let _ = writeln!(
                out,
                "veilgate_capture_records_total{{{usage}outcome=\"dropped\"}} {}",
                sink.dropped_total()
            );
        }
        out
    }
}

/// Escapes a label value (only names the gateway chose reach here).
fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Observer for Metrics {
    fn detections(&self, d: Direction, counts: &Counts) {
        self.with(|m| {
            for ((entity, action), n) in counts {
                *m.detections
                    .entry((dir(d), entity.to_string(), action.as_str()))
                    .or_default() += n;
            }
        });
    }

    fn refused(&self, d: Direction, status: u16, code: &str) {
        self.with(|m| {
            *m.refusals
                .entry((dir(d), status, code.to_string()))
                .or_default() += 1
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Action;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.request("openai", 200, Duration::from_millis(30));
        let mut c = Counts::new();
        c.insert(("EMAIL".into(), Action::Pseudonymize), 2);
        m.detections(Direction::Request, &c);
        m.refused(Direction::Request, 400, "veilgate_invalid_json");
        m.upstream_error("openai", "timeout");
        let t = m.render();
        assert!(
            t.contains("veilgate_requests_total{retention_class=\"usage\",retention_days=\"365\",upstream=\"openai\",status=\"200\"} 1"),
            "{t}"
        );
        assert!(
            t.contains(
                "veilgate_request_duration_seconds_bucket{retention_class=\"usage\",retention_days=\"365\",upstream=\"openai\",le=\"0.05\"} 1"
            ),
            "{t}"
        );
        assert!(
            t.contains(
                "veilgate_request_duration_seconds_bucket{retention_class=\"usage\",retention_days=\"365\",upstream=\"openai\",le=\"0.025\"} 0"
            ),
            "{t}"
        );
        assert!(t.contains("veilgate_detections_total{retention_class=\"security\",retention_days=\"365\",direction=\"request\",entity=\"EMAIL\",action=\"pseudonymize\"} 2"));
        assert!(t.contains("veilgate_refusals_total{retention_class=\"security\",retention_days=\"365\",direction=\"request\",status=\"400\",code=\"veilgate_invalid_json\"} 1"));
        assert!(
            t.contains("veilgate_upstream_errors_total{retention_class=\"usage\",retention_days=\"365\",upstream=\"openai\",kind=\"timeout\"} 1")
        );
    }
}
