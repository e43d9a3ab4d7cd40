//! The crate's telemetry conventions: every span, log record and metric event veilgate
//! emits (through `tracing` only; the binary or the host application owns exporters)
//! carries its retention:
//!
//! | field | value |
//! | --- | --- |
//! | `retention.class` | `usage`, `security` or `billing` (`content` is never written; `training` marks the lines of the training capture sink, not log records) |
//! | `retention.days` | days the record may be kept, from the tenant's [`Schedule`] |
//! | `retention.expires_at` | RFC 3339 UTC instant the record must be gone by (metric events: the day, `2027-11-22`, so series stay few) |
//!
//! Targets: `veilgate::access` (one usage record per exchange), `veilgate::security`
//! (auth failures, refusals, detections, configuration changes), `veilgate::billing`
//! (token usage), `veilgate::metrics` (metric events, named the way
//! `tracing-opentelemetry`'s metrics layer reads them: `monotonic_counter.*`,
//! `histogram.*`), `veilgate::ops` (operational messages). The request span is
//! `veilgate.request` (target `veilgate::retention`).
//!
//! Other fields: `tenant.id`, `api_key.id` (a `kid_...` keyed hash, never a key),
//! `http.request.method`, `url.path`, `http.response.status_code`, `client.address`
//! (truncated to /24 or /48), `veilgate.upstream`, `training.allowed`, `entity`,
//! `detections`, `code`. Never a body, a key or a detected value.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::api_key::{KeyId, Tenant};
use crate::policy::{Class, Policy, Schedule, TenantPolicy};

/// A record's retention, computed when the record is emitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    pub class: Class,
    pub days: u32,
    /// RFC 3339, UTC, whole seconds.
    pub expires_at: String,
}

impl Stamp {
    /// `class` under `schedule`, expiring `days` from now.
    pub fn now(class: Class, schedule: &Schedule) -> Stamp {
        Stamp::at(class, schedule.days(class), SystemTime::now())
    }

    /// `class`, kept `days` from `t`.
    pub fn at(class: Class, days: u32, t: SystemTime) -> Stamp {
        let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        Stamp {
            class,
            days,
            expires_at: rfc3339(secs + u64::from(days) * 86_400),
        }
    }

    /// The expiry day (`YYYY-MM-DD`), for metric attributes.
    pub fn expires_on(&self) -> &str {
        &self.expires_at[..10]
    }
}

/// Seconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from day count (H. Hinnant's algorithm), proleptic Gregorian.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let mut s = String::with_capacity(20);
    let _ = write!(
        s,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    s
}

/// A client address with its host part removed: IPv4 to its /24, IPv6 to its /48
/// (an IPv4-mapped IPv6 address counts as IPv4). `203.0.113.0/24`, `2001:db8:85a3::/48`.
pub fn truncate_ip(ip: IpAddr) -> String {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let net = std::net::Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0);
            format!("{net}/48")
        }
    }
}

/// Emits a `tracing` event stamped with its retention:
/// `event!(INFO, "veilgate::security", &stamp, "message", code = "x")`.
macro_rules! event {
    ($level:ident, $target:literal, $stamp:expr, $msg:literal, $($fields:tt)*) => {{
        // The stamp (a clock read and a formatted date) only for records someone wants.
        if tracing::enabled!(target: $target, tracing::Level::$level) {
            let stamp: &$crate::telemetry::Stamp = $stamp;
            tracing::event!(
                target: $target,
                tracing::Level::$level,
                {
                    retention.class = stamp.class.as_str(),
                    retention.days = stamp.days,
                    retention.expires_at = %stamp.expires_at,
                    $($fields)*
                },
                $msg
            )
        }
    }};
}
pub(crate) use event;

/// What the layers learn about one exchange, shared through the request extensions: the
/// retention layer puts it there, the key, training and redact layers fill it in, and the
/// retention layer writes the access record from it when the answer is done. Holds no
/// value, body or key: ids, names and counts.
#[derive(Debug, Clone)]
pub struct Exchange(Arc<Shared>);

#[derive(Debug)]
struct Shared {
    policy: Arc<Policy>,
    state: Mutex<State>,
}

/// The facts gathered so far.
#[derive(Debug, Clone, Default)]
pub struct State {
    pub key_id: Option<KeyId>,
    pub tenant: Option<Tenant>,
    /// Detections by entity, both directions.
    pub detections: BTreeMap<Arc<str>, u64>,
    pub upstream: Option<Arc<str>>,
    pub training_allowed: Option<bool>,
    /// The `veilgate_*` code of a refusal, if the exchange was refused.
    pub refusal: Option<String>,
}

impl Exchange {
    pub fn new(policy: Arc<Policy>) -> Exchange {
        Exchange(Arc::new(Shared {
            policy,
            state: Mutex::new(State::default()),
        }))
    }

    /// The gathered facts (a poisoned lock still yields them: they are plain data).
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.0.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The policy of the exchange's tenant (the defaults until one is known).
    pub fn tenant_policy(&self) -> Arc<TenantPolicy> {
        let state = self.state();
        self.0
            .policy
            .get(state.tenant.as_ref().map(Tenant::as_str))
            .clone()
    }

    /// A stamp for a record of `class` under the tenant's schedule.
    pub fn stamp(&self, class: Class) -> Stamp {
        Stamp::now(class, &self.tenant_policy().schedule)
    }

    pub fn set_key(&self, key_id: Option<KeyId>, tenant: Option<Tenant>) {
        let mut s = self.state();
        s.key_id = key_id;
        if tenant.is_some() {
            s.tenant = tenant;
        }
    }

    pub fn set_upstream(&self, name: &str) {
        self.state().upstream = Some(name.into());
    }

    pub fn set_training_allowed(&self, allowed: bool) {
        self.state().training_allowed = Some(allowed);
    }

    pub fn add_detections<'a>(&self, counts: impl IntoIterator<Item = (&'a Arc<str>, u64)>) {
        let mut s = self.state();
        for (entity, n) in counts {
            *s.detections.entry(entity.clone()).or_default() += n;
        }
    }

    pub fn set_refusal(&self, code: &str) {
        self.state().refusal.get_or_insert_with(|| code.to_owned());
    }
}

/// The stamp for a record of `class`: the exchange's tenant schedule when the request
/// carries an [`Exchange`], the default schedule otherwise.
pub fn stamp_for(exchange: Option<&Exchange>, class: Class) -> Stamp {
    match exchange {
        Some(e) => e.stamp(class),
        None => Stamp::now(class, &Schedule::default()),
    }
}

/// `EMAIL:2 PHONE:1`: detections by entity, for a record field.
pub fn format_counts(counts: &BTreeMap<Arc<str>, u64>) -> String {
    let mut s = String::new();
    for (e, n) in counts {
        if !s.is_empty() {
            s.push(' ');
        }
        let _ = write!(s, "{e}:{n}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_359_952), "2026-11-22T15:05:52Z");
        assert_eq!(rfc3339(4_107_542_399), "2100-02-28T23:59:59Z");
        assert_eq!(rfc3339(4_107_542_400), "2100-03-01T00:00:00Z");
    }

    #[test]
    fn stamps_expire_after_their_days() {
        let t = UNIX_EPOCH + std::time::Duration::from_secs(1_795_359_952);
        let s = Stamp::at(Class::Billing, 2555, t);
        assert_eq!(s.expires_at, "2033-11-20T15:05:52Z");
        assert_eq!(s.expires_on(), "2033-11-20");
        assert_eq!(
            Stamp::at(Class::Content, 0, t).expires_at,
            rfc3339(1_795_359_952)
        );
    }

    #[test]
    fn client_addresses_lose_their_host_part() {
        let t = |s: &str| truncate_ip(s.parse().unwrap());
        assert_eq!(t("203.0.113.77"), "203.0.113.0/24");
        assert_eq!(t("10.1.2.255"), "10.1.2.0/24");
        assert_eq!(
            t("2001:db8:85a3:8d3:1319:8a2e:370:7348"),
            "2001:db8:85a3::/48"
        );
        assert_eq!(t("::ffff:198.51.100.9"), "198.51.100.0/24");
        assert_eq!(t("::1"), "::/48");
    }
}
