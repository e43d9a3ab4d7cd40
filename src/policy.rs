//! Tenants and their policy: retention schedule, training consent, region, and overrides
//! of the redaction policy (action per entity, extra allow-listed values).
//!
//! A [`Policy`] is built once per configuration and shared (`Arc`) by the layers that need
//! it; a request's tenant (resolved by [`crate::api_key`]) selects a [`TenantPolicy`], and
//! a tenant the policy does not name gets the defaults. Everything here is plain data:
//! no http types, cheap lookups, nothing per request but a hash-map probe.
//!
//! ```
//! use veilgate::policy::{Class, Consent, Policy, Schedule, TenantConfig};
//!
//! let policy = Policy::new(Schedule::default())
//!     .tenant("acme", toml::from_str::<TenantConfig>(r#"
//!         training = "opt-in"
//!         region = "eu"
//!         retention = { usage = 90 }
//!         actions = { EMAIL = "hash" }
//!     "#).unwrap());
//! let acme = policy.get(Some("acme"));
//! assert_eq!(acme.training, Consent::OptIn);
//! assert_eq!(acme.schedule.days(Class::Usage), 90);
//! assert_eq!(acme.schedule.days(Class::Billing), 2555); // the default still applies
//! assert_eq!(policy.get(Some("someone-else")).training, Consent::OptOut);
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use serde::Deserialize;

use crate::engine::Action;

/// What a record is kept for, and so how long it may be kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    /// Access records: who called what, when, with which outcome (no content).
    Usage,
    /// Auth failures, refusals, detections, configuration changes.
    Security,
    /// Token usage per tenant and key id.
    Billing,
    /// Request and response bodies: never written by veilgate (0 days).
    Content,
    /// Redacted request/response pairs of opted-in tenants, written by the training
    /// capture sink (see [`crate::training`]); 0 days turns capture off.
    Training,
}

impl Class {
    pub const ALL: [Class; 5] = [
        Class::Usage,
        Class::Security,
        Class::Billing,
        Class::Content,
        Class::Training,
    ];

    /// `usage`, `security`, `billing`, `content`, `training`.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Usage => "usage",
            Class::Security => "security",
            Class::Billing => "billing",
            Class::Content => "content",
            Class::Training => "training",
        }
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Days each class is kept. Defaults: usage 365, security 365, billing 2,555 (7 years),
/// content 0, training 365 (captured, already-redacted pairs of opted-in tenants only;
/// 0 turns the capture off).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Schedule {
    pub usage: u32,
    pub security: u32,
    pub billing: u32,
    pub content: u32,
    pub training: u32,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            usage: 365,
            security: 365,
            billing: 2555,
            content: 0,
            training: 365,
        }
    }
}

impl Schedule {
    /// Days records of `class` are kept.
    pub fn days(&self, class: Class) -> u32 {
        match class {
            Class::Usage => self.usage,
            Class::Security => self.security,
            Class::Billing => self.billing,
            Class::Content => self.content,
            Class::Training => self.training,
        }
    }

    /// This schedule with the days `o` sets.
    pub fn with(mut self, o: &ScheduleOverride) -> Schedule {
        self.usage = o.usage.unwrap_or(self.usage);
        self.security = o.security.unwrap_or(self.security);
        self.billing = o.billing.unwrap_or(self.billing);
        self.content = o.content.unwrap_or(self.content);
        self.training = o.training.unwrap_or(self.training);
        self
    }
}

/// A tenant's changes to the schedule; unset classes keep the default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleOverride {
    pub usage: Option<u32>,
    pub security: Option<u32>,
    pub billing: Option<u32>,
    pub content: Option<u32>,
    pub training: Option<u32>,
}

/// Whether a tenant's traffic may be used to train models. Opt-out unless the tenant
/// opted in; a request with `DNT: 1` or `Sec-GPC: 1` is opted out whatever its tenant
/// says (see [`crate::training`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum Consent {
    #[serde(rename = "opt-in")]
    OptIn,
    #[default]
    #[serde(rename = "opt-out")]
    OptOut,
}

/// One tenant as written in the configuration (`[tenants.NAME]`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    /// Action per entity for this tenant (`EMAIL = "hash"`), over the global ones.
    #[serde(default)]
    pub actions: BTreeMap<String, Action>,
    /// Values never redacted for this tenant (exact, case-insensitive), besides the
    /// global allow-list.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Training consent; unset: the policy's default (opt-out).
    #[serde(default)]
    pub training: Option<Consent>,
    /// Only upstreams of this region serve the tenant (residency).
    #[serde(default)]
    pub region: Option<String>,
    /// Retention days for this tenant's records.
    #[serde(default)]
    pub retention: ScheduleOverride,
}

/// A tenant's effective policy: the defaults with its overrides applied.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantPolicy {
    /// The tenant's name; `None` for the defaults.
    pub name: Option<Arc<str>>,
    pub schedule: Schedule,
    pub training: Consent,
    pub region: Option<Arc<str>>,
    /// Action per entity (only this tenant's changes).
    pub actions: BTreeMap<String, Action>,
    /// Extra allow-listed values (only this tenant's).
    pub allow: Vec<String>,
}

/// Every tenant's policy, and the defaults for the others.
#[derive(Debug, Clone)]
pub struct Policy {
    default: Arc<TenantPolicy>,
    tenants: HashMap<Arc<str>, Arc<TenantPolicy>>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy::new(Schedule::default())
    }
}

impl Policy {
    /// Defaults only: this schedule, training opted out, no region.
    pub fn new(schedule: Schedule) -> Policy {
        Policy {
            default: Arc::new(TenantPolicy {
                name: None,
                schedule,
                training: Consent::OptOut,
                region: None,
                actions: BTreeMap::new(),
                allow: Vec::new(),
            }),
            tenants: HashMap::new(),
        }
    }

    /// Sets the consent of tenants whose configuration leaves it unset (opt-out unless
    /// said). Call it before [`Policy::tenant`]: tenants added earlier keep theirs.
    pub fn default_training(mut self, consent: Consent) -> Policy {
        Arc::make_mut(&mut self.default).training = consent;
        self
    }

    /// Adds (or replaces) a tenant.
    pub fn tenant(mut self, name: &str, c: TenantConfig) -> Policy {
        let d = &self.default;
        let name: Arc<str> = name.into();
        let t = TenantPolicy {
            name: Some(name.clone()),
            schedule: d.schedule.with(&c.retention),
            training: c.training.unwrap_or(d.training),
            region: c.region.map(Into::into),
            actions: c.actions,
            allow: c.allow,
        };
        self.tenants.insert(name, Arc::new(t));
        self
    }

    /// The policy of `tenant`; the defaults for `None` or a tenant not configured.
    pub fn get(&self, tenant: Option<&str>) -> &Arc<TenantPolicy> {
        tenant
            .and_then(|t| self.tenants.get(t))
            .unwrap_or(&self.default)
    }

    /// The defaults.
    pub fn defaults(&self) -> &Arc<TenantPolicy> {
        &self.default
    }

    /// The configured tenants, in no particular order.
    pub fn tenants(&self) -> impl Iterator<Item = &Arc<TenantPolicy>> {
        self.tenants.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_apply_per_tenant_and_defaults_fill_the_rest() {
        let p = Policy::new(Schedule {
            usage: 400,
            ..Schedule::default()
        })
        .tenant(
            "eu-bank",
            TenantConfig {
                region: Some("eu".into()),
                retention: ScheduleOverride {
                    billing: Some(3650),
                    ..Default::default()
                },
                ..Default::default()
            },
        );
        let t = p.get(Some("eu-bank"));
        assert_eq!(t.region.as_deref(), Some("eu"));
        assert_eq!(t.schedule.days(Class::Billing), 3650);
        assert_eq!(t.schedule.days(Class::Usage), 400);
        assert_eq!(t.schedule.days(Class::Content), 0);
        assert_eq!(t.training, Consent::OptOut);
        let other = p.get(Some("nobody"));
        assert!(other.name.is_none());
        assert_eq!(other.schedule.days(Class::Billing), 2555);
        assert!(Arc::ptr_eq(other, p.get(None)));
    }

    #[test]
    fn tenant_config_rejects_unknown_keys_and_bad_consent() {
        assert!(toml::from_str::<TenantConfig>("trainig = \"opt-in\"").is_err());
        assert!(toml::from_str::<TenantConfig>("training = \"yes\"").is_err());
        assert!(toml::from_str::<TenantConfig>("retention = { usage = -1 }").is_err());
        let c: TenantConfig =
            toml::from_str("training = \"opt-in\"\nallow = [\"ops@acme.io\"]").unwrap();
        assert_eq!(c.training, Some(Consent::OptIn));
    }
}
