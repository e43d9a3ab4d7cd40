//! The sidecar's configuration file (TOML). Every option is documented in
//! `examples/veilgate.toml`; unknown keys are errors.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::engine::Action;
use crate::provider::Provider;

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where clients connect.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Health, readiness and metrics; never the proxy port.
    #[serde(default = "default_admin")]
    pub admin_listen: SocketAddr,
    /// Upstream used when no route matches.
    #[serde(default)]
    pub default_upstream: Option<String>,
    /// Clients may pick an upstream by name with the `x-veilgate-upstream` header.
    #[serde(default = "yes")]
    pub upstream_header: bool,
    /// Seconds in-flight requests get to finish after SIGTERM.
    #[serde(default = "default_drain")]
    pub drain_secs: u64,
    /// Re-read this file when it changes (SIGHUP always reloads).
    #[serde(default = "yes")]
    pub watch: bool,
    #[serde(default, rename = "upstream")]
    pub upstreams: Vec<UpstreamConfig>,
    #[serde(default, rename = "route")]
    pub routes: Vec<RouteConfig>,
    #[serde(default)]
    pub redact: RedactConfig,
    #[serde(default)]
    pub auth: AuthConfig,
    /// Days each class of record may be kept (`usage`, `security`, `billing`,
    /// `training`, `content`); stamped on every span, log record and metric.
    #[serde(default)]
    pub retention: crate::policy::Schedule,
    /// Per-tenant overrides: `[tenants.acme]` with `actions`, `allow`, `training`,
    /// `region`, `retention`.
    #[serde(default)]
    pub tenants: BTreeMap<String, crate::policy::TenantConfig>,
    /// Training opt-out rules and the capture sink for opted-in tenants.
    #[serde(default)]
    pub training: TrainingConfig,
}

/// `[training]`: what opted-out requests may not do, and the capture of opted-in ones.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingConfig {
    /// Endpoints refused for opted-out requests besides fine-tuning jobs (path prefixes
    /// from `/v1`; only requests that create: POST, PUT, PATCH).
    #[serde(default = "default_refuse_paths")]
    pub refuse_paths: Vec<String>,
    /// Upload purposes (`/v1/files`, `/v1/uploads`) refused for opted-out requests.
    #[serde(default = "default_refuse_purposes")]
    pub refuse_file_purposes: Vec<String>,
    /// Extra flags upstreams can name in `training_flags` (`store` and
    /// `data_collection` are built in).
    #[serde(default, rename = "flag")]
    pub flags: Vec<crate::training::Flag>,
    /// The capture sink; absent: nothing is captured.
    #[serde(default)]
    pub capture: Option<CaptureConfig>,
}

impl Default for TrainingConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults deserialize")
    }
}

impl TrainingConfig {
    /// A flag by name: the configured ones, then the built-in ones.
    pub fn flag(&self, name: &str) -> Option<crate::training::Flag> {
        self.flags
            .iter()
            .cloned()
            .chain(crate::training::Flag::builtin())
            .find(|f| f.name == name)
    }
}

/// `[training.capture]`: already-redacted exchanges of opted-in tenants, as JSON lines.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptureConfig {
    /// The JSONL file (its directory must exist); rotated files get `.<secs>.<n>`.
    pub path: PathBuf,
    /// Rotate before the file would grow past this many bytes.
    #[serde(default = "default_capture_max_bytes")]
    pub max_bytes: u64,
    /// Records queued for the writer; when full, records are dropped and counted.
    #[serde(default = "default_capture_queue")]
    pub queue: usize,
    /// Larger requests or answers (bytes) are not captured.
    #[serde(default = "default_capture_record")]
    pub max_record_bytes: usize,
    /// Environment variable holding the key of the tenant hash...
    #[serde(default = "default_capture_key_env")]
    pub key_env: String,
    /// ...or this file (wins). Without either, a random key per process (tenant hashes
    /// then change on restart).
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}

fn default_refuse_paths() -> Vec<String> {
    ["/v1/evals", "/v1/feedback", "/v1/datasets"]
        .map(String::from)
        .to_vec()
}
fn default_refuse_purposes() -> Vec<String> {
    vec!["fine-tune".into()]
}
fn default_capture_max_bytes() -> u64 {
    64 << 20
}
fn default_capture_queue() -> usize {
    1024
}
fn default_capture_record() -> usize {
    4 << 20
}
fn default_capture_key_env() -> String {
    "VEILGATE_CAPTURE_KEY".into()
}

/// API keys: how presented keys are identified, and gateway-key mode.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Environment variable holding the pepper for key ids (`kid_...`).
    #[serde(default)]
    pub pepper_env: Option<String>,
    /// File holding the pepper (wins over `pepper_env`). Without either, a random
    /// pepper per process: key ids then change on restart.
    #[serde(default)]
    pub pepper_file: Option<PathBuf>,
    /// Gateway-key mode: clients must present one of these keys (stored as SHA-256 hex
    /// only; mint with `veilgate keys new`).
    #[serde(default, rename = "gateway_key")]
    pub gateway_keys: Vec<crate::api_key::GatewayKey>,
    /// Tenant by key id (`kid_...`, as logs show it).
    #[serde(default)]
    pub key_tenants: BTreeMap<String, String>,
    /// A request header naming the tenant, trusted only when set here (for a gateway
    /// behind something that sets it; never for clients on the open network). Values
    /// other than 1-128 of `A-Z a-z 0-9 - _ . :` are ignored.
    #[serde(default)]
    pub tenant_header: Option<String>,
    /// The tenant when nothing else names one.
    #[serde(default = "default_tenant")]
    pub default_tenant: String,
}

impl Default for AuthConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults deserialize")
    }
}

fn default_tenant() -> String {
    "default".into()
}

/// One upstream API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    pub name: String,
    /// `openai`, `anthropic` or `generic`: error shapes and where content lives.
    #[serde(default = "default_provider")]
    pub provider: ProviderName,
    /// `https://api.openai.com` (a path prefix is kept: `https://host/openai`).
    pub base_url: String,
    /// Free-form region label (`eu`, `us`), used by residency routing.
    #[serde(default)]
    pub region: Option<String>,
    /// Whether the provider may train on data sent to it: such an upstream never gets
    /// an opted-out request.
    #[serde(default)]
    pub trains_on_data: bool,
    /// Flags set in the JSON bodies of opted-out requests to this upstream (names from
    /// `[[training.flag]]` or built in: `store`, `data_collection`). Default: `["store"]`
    /// for `openai` upstreams, none for the others.
    #[serde(default)]
    pub training_flags: Option<Vec<String>>,
    #[serde(default = "default_connect_ms")]
    pub connect_timeout_ms: u64,
    /// Until the response headers arrive.
    #[serde(default = "default_response_ms")]
    pub response_timeout_ms: u64,
    /// Longest silence between two body frames of an answer.
    #[serde(default = "default_idle_ms")]
    pub idle_timeout_ms: u64,
    /// Extra PEM CA certificates trusted for this upstream (besides the bundled roots).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The upstream's real API key, injected into every request to it (replacing the
    /// client's): from this environment variable...
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// ...or this file (wins).
    #[serde(default)]
    pub api_key_file: Option<PathBuf>,
    /// The header that carries the injected key: `authorization` (`Bearer ...`),
    /// `x-api-key` or `api-key` (Azure OpenAI). Unset: `x-api-key` for Anthropic,
    /// `api-key` for `*.openai.azure.com` and `*.cognitiveservices.azure.com`, else
    /// `authorization`.
    #[serde(default)]
    pub api_key_header: Option<String>,
}

/// `openai` | `anthropic` | `generic`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderName {
    Openai,
    Anthropic,
    Generic,
}

impl From<ProviderName> for Provider {
    fn from(p: ProviderName) -> Provider {
        match p {
            ProviderName::Openai => Provider::OpenAi,
            ProviderName::Anthropic => Provider::Anthropic,
            ProviderName::Generic => Provider::Generic,
        }
    }
}

/// Requests whose path starts with `path_prefix` go to `upstream`, or to the first
/// eligible of `upstreams` (residency, training opt-out).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    pub path_prefix: String,
    /// One upstream; when a tenant's region or opt-out rules it out, the other upstreams
    /// of the same provider kind are tried, in file order.
    #[serde(default)]
    pub upstream: Option<String>,
    /// Candidates in order of preference; only these are tried.
    #[serde(default)]
    pub upstreams: Vec<String>,
}

impl RouteConfig {
    /// The upstream names this route lists.
    pub fn names(&self) -> Vec<&str> {
        match &self.upstream {
            Some(u) => vec![u.as_str()],
            None => self.upstreams.iter().map(String::as_str).collect(),
        }
    }
}

impl UpstreamConfig {
    /// The flag names set for opted-out requests to this upstream.
    pub fn flag_names(&self) -> Vec<String> {
        match (&self.training_flags, self.provider) {
            (Some(f), _) => f.clone(),
            (None, ProviderName::Openai) => vec!["store".into()],
            (None, _) => Vec::new(),
        }
    }
}

/// The redaction policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedactConfig {
    /// Action for every entity unless `entities` says otherwise; unset: each filter's own.
    #[serde(default = "default_action")]
    pub action: Option<Action>,
    /// Action per entity (`EMAIL = "hash"`).
    #[serde(default)]
    pub entities: BTreeMap<String, Action>,
    /// Extra filter files or directories.
    #[serde(default)]
    pub filters: Vec<PathBuf>,
    /// Values never redacted (exact, case-insensitive).
    #[serde(default)]
    pub allow: Vec<String>,
    /// Environment variable holding the pseudonym key.
    #[serde(default = "default_key_env")]
    pub key_env: String,
    /// File holding the pseudonym key (wins over `key_env`).
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    #[serde(default = "default_body_limit")]
    pub body_limit: usize,
    #[serde(default = "yes")]
    pub requests: bool,
    #[serde(default = "yes")]
    pub responses: bool,
    #[serde(default)]
    pub fail_open_requests: bool,
    #[serde(default)]
    pub fail_open_responses: bool,
    /// Restore pseudonyms in answers.
    #[serde(default = "yes")]
    pub restore: bool,
    /// Action for PII the model produced; `"none"` leaves answers unscanned.
    #[serde(default = "default_response_action")]
    pub response_action: String,
    /// Entities not scanned in answers.
    #[serde(default = "default_response_skip")]
    pub response_skip: Vec<String>,
}

impl Default for RedactConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults deserialize")
    }
}

fn yes() -> bool {
    true
}
fn default_listen() -> SocketAddr {
    "127.0.0.1:8080".parse().expect("literal")
}
fn default_admin() -> SocketAddr {
    "127.0.0.1:9090".parse().expect("literal")
}
fn default_drain() -> u64 {
    30
}
fn default_provider() -> ProviderName {
    ProviderName::Openai
}
fn default_connect_ms() -> u64 {
    10_000
}
fn default_response_ms() -> u64 {
    600_000
}
fn default_idle_ms() -> u64 {
    300_000
}
fn default_action() -> Option<Action> {
    Some(Action::Pseudonymize)
}
fn default_key_env() -> String {
    "VEILGATE_KEY".into()
}
fn default_body_limit() -> usize {
    crate::redact::DEFAULT_BODY_LIMIT
}
fn default_response_action() -> String {
    "redact".into()
}
fn default_response_skip() -> Vec<String> {
    vec!["PERSON".into()]
}

impl UpstreamConfig {
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }
    pub fn response_timeout(&self) -> Duration {
        Duration::from_millis(self.response_timeout_ms)
    }
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }
}

/// A configuration problem, located in the file when possible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        if let Some(k) = &self.key {
            write!(f, ": {k}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// The built-in defaults: listen on 127.0.0.1:8080, `/v1/messages` to Anthropic,
    /// everything else to OpenAI, pseudonymize requests and restore answers.
    pub fn builtin() -> Config {
        Config::parse("builtin", BUILTIN).expect("the built-in config is valid")
    }

    /// Reads and validates a file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.display().to_string(),
            line: None,
            key: None,
            message: e.to_string(),
        })?;
        Config::parse(&path.display().to_string(), &text)
    }

    /// Parses and validates TOML text; errors carry the line and key.
    pub fn parse(file: &str, text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            let key = e
                .span()
                .map(|s| text[s.clone()].trim().to_string())
                .filter(|k| !k.is_empty() && k.len() < 80);
            ConfigError {
                file: file.into(),
                line,
                key,
                message: e.message().to_string(),
            }
        })?;
        config.validate(file, text)?;
        Ok(config)
    }

    pub(crate) fn validate(&self, file: &str, text: &str) -> Result<(), ConfigError> {
        let err = |needle: &str, key: &str, message: String| ConfigError {
            file: file.into(),
            line: text
                .find(needle)
                .map(|i| text[..i].matches('\n').count() + 1),
            key: Some(key.into()),
            message,
        };
        if self.upstreams.is_empty() {
            return Err(err(
                "[[upstream]]",
                "upstream",
                "at least one [[upstream]] is needed".into(),
            ));
        }
        let mut names = std::collections::HashSet::new();
        for u in &self.upstreams {
            if !names.insert(u.name.as_str()) {
                return Err(err(
                    &format!("\"{}\"", u.name),
                    "upstream.name",
                    format!("duplicate upstream {:?}", u.name),
                ));
            }
            match u.base_url.parse::<http::Uri>() {
                Ok(uri)
                    if matches!(uri.scheme_str(), Some("http" | "https"))
                        && uri.host().is_some() => {}
                _ => {
                    return Err(err(
                        &u.base_url,
                        "upstream.base_url",
                        format!("{:?} is not an http:// or https:// URL", u.base_url),
                    ));
                }
            }
            if let Some(h) = &u.api_key_header {
                if !["authorization", "x-api-key", "api-key"].contains(&h.as_str()) {
                    return Err(err(
                        "api_key_header",
                        "upstream.api_key_header",
                        format!("{h:?}: expected authorization, x-api-key or api-key"),
                    ));
                }
            }
            if u.connect_timeout_ms == 0 || u.response_timeout_ms == 0 || u.idle_timeout_ms == 0 {
                return Err(err(
                    &u.name,
                    "upstream.*_timeout_ms",
                    "timeouts must be positive".into(),
                ));
            }
        }
        let known = |n: &str| self.upstreams.iter().any(|u| u.name == n);
        for r in &self.routes {
            if r.upstream.is_some() != r.upstreams.is_empty() {
                return Err(err(
                    &r.path_prefix,
                    "route.upstream",
                    "a route needs `upstream` or `upstreams` (not both)".into(),
                ));
            }
            if let Some(n) = r.names().into_iter().find(|n| !known(n)) {
                return Err(err(
                    &r.path_prefix,
                    "route.upstream",
                    format!("no upstream named {n:?}"),
                ));
            }
            if !r.path_prefix.starts_with('/') {
                return Err(err(
                    &r.path_prefix,
                    "route.path_prefix",
                    "must start with '/'".into(),
                ));
            }
        }
        if let Some(d) = &self.default_upstream {
            if !known(d) {
                return Err(err(
                    "default_upstream",
                    "default_upstream",
                    format!("no upstream named {d:?}"),
                ));
            }
        }
        if self.redact.response_action != "none"
            && self.redact.response_action.parse::<Action>().is_err()
        {
            return Err(err(
                "response_action",
                "redact.response_action",
                format!(
                    "{:?}: expected redact, mask, hash, pseudonymize, block or none",
                    self.redact.response_action
                ),
            ));
        }
        if let Some(h) = &self.auth.tenant_header {
            if http::HeaderName::from_bytes(h.as_bytes()).is_err() {
                return Err(err(
                    "tenant_header",
                    "auth.tenant_header",
                    format!("{h:?} is not a header name"),
                ));
            }
        }
        for k in &self.auth.gateway_keys {
            if let Err(e) = k.check() {
                return Err(err(
                    "gateway_key",
                    "auth.gateway_key.sha256_hex",
                    e.to_string(),
                ));
            }
        }
        let schedules = std::iter::once(("retention".to_string(), self.retention)).chain(
            self.tenants.iter().map(|(n, t)| {
                (
                    format!("tenants.{n}.retention"),
                    self.retention.with(&t.retention),
                )
            }),
        );
        for (key, sc) in schedules {
            if crate::policy::Class::ALL
                .iter()
                .any(|c| sc.days(*c) > 36_500)
            {
                return Err(err(
                    "retention",
                    &key,
                    "retention days above 36,500 (100 years) are not a schedule".into(),
                ));
            }
        }
        for (name, t) in &self.tenants {
            if let Some(e) = t.actions.keys().find(|e| e.is_empty() || e.contains(' ')) {
                return Err(err(
                    &format!("[tenants.{name}"),
                    &format!("tenants.{name}.actions"),
                    format!("{e:?} is not an entity name"),
                ));
            }
        }
        for (name, t) in &self.tenants {
            if let Some(region) = &t.region {
                if !self.upstreams.iter().any(|u| {
                    u.region
                        .as_deref()
                        .is_some_and(|r| r.eq_ignore_ascii_case(region))
                }) {
                    return Err(err(
                        &format!("[tenants.{name}"),
                        &format!("tenants.{name}.region"),
                        format!(
                            "no upstream has region {region:?}: this tenant could never be served"
                        ),
                    ));
                }
            }
        }
        self.validate_training(&err)?;
        if self.redact.body_limit == 0 {
            return Err(err(
                "body_limit",
                "redact.body_limit",
                "must be positive".into(),
            ));
        }
        Ok(())
    }

    fn validate_training(
        &self,
        err: &dyn Fn(&str, &str, String) -> ConfigError,
    ) -> Result<(), ConfigError> {
        let t = &self.training;
        if let Some(p) = t.refuse_paths.iter().find(|p| !p.starts_with('/')) {
            return Err(err(
                "refuse_paths",
                "training.refuse_paths",
                format!("{p:?} must start with '/'"),
            ));
        }
        let mut names = std::collections::HashSet::new();
        for f in &t.flags {
            let bad_pointer = !f.pointer.starts_with('/')
                || f.pointer.split('/').skip(1).any(str::is_empty)
                || f.pointer.contains('~');
            let problem = if f.name.is_empty() {
                Some("a flag needs a name".to_string())
            } else if !names.insert(f.name.as_str())
                || crate::training::Flag::builtin()
                    .iter()
                    .any(|b| b.name == f.name)
            {
                Some(format!(
                    "duplicate flag {:?} (store and data_collection are built in)",
                    f.name
                ))
            } else if bad_pointer {
                Some(format!("{:?} is not a JSON pointer like /a/b", f.pointer))
            } else if f.endpoints.is_empty() || f.endpoints.iter().any(|e| !e.starts_with('/')) {
                Some("endpoints must be path endings starting with '/'".to_string())
            } else {
                None
            };
            if let Some(m) = problem {
                return Err(err(&format!("\"{}\"", f.name), "training.flag", m));
            }
        }
        for u in &self.upstreams {
            if let Some(n) = u.flag_names().iter().find(|n| t.flag(n).is_none()) {
                return Err(err(
                    "training_flags",
                    "upstream.training_flags",
                    format!("no training flag named {n:?} (upstream {:?})", u.name),
                ));
            }
        }
        if let Some(c) = &t.capture {
            if c.max_bytes == 0 || c.queue == 0 || c.max_record_bytes == 0 {
                return Err(err(
                    "[training.capture]",
                    "training.capture",
                    "max_bytes, queue and max_record_bytes must be positive".into(),
                ));
            }
            if c.path.as_os_str().is_empty() {
                return Err(err(
                    "[training.capture]",
                    "training.capture.path",
                    "a path is needed".into(),
                ));
            }
        }
        Ok(())
    }

    /// The tenants' policy this file describes.
    pub fn policy(&self) -> crate::policy::Policy {
        self.tenants.iter().fold(
            crate::policy::Policy::new(self.retention),
            |p, (name, t)| p.tenant(name, t.clone()),
        )
    }

    /// The upstream by name.
    pub fn upstream(&self, name: &str) -> Option<&UpstreamConfig> {
        self.upstreams.iter().find(|u| u.name == name)
    }
}

/// The defaults `veilgate proxy` runs with when no file is given.
pub const BUILTIN: &str = r#"
[[upstream]]
name = "openai"
provider = "openai"
base_url = "https://api.openai.com"

[[upstream]]
name = "anthropic"
provider = "anthropic"
base_url = "https://api.anthropic.com"

[[route]]
path_prefix = "/v1/messages"
upstream = "anthropic"
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_defaults() {
        let c = Config::builtin();
        assert_eq!(c.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(c.upstreams.len(), 2);
        assert_eq!(c.redact.action, Some(Action::Pseudonymize));
        assert!(c.redact.restore && c.redact.requests && c.redact.responses);
    }

    #[test]
    fn errors_name_line_and_key() {
        let e = Config::parse("x.toml", "listen = \"127.0.0.1:1\"\nbogus = 3\n").unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
        assert!(e.to_string().contains("bogus"), "{e}");
        let e = Config::parse(
            "x.toml",
            "[[upstream]]\nname = \"a\"\nbase_url = \"ftp://x\"\n",
        )
        .unwrap_err();
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(3), Some("upstream.base_url")),
            "{e}"
        );
        let e = Config::parse(
            "x.toml",
            "[[upstream]]\nname = \"a\"\nbase_url = \"http://x\"\n[[route]]\npath_prefix = \"/v1\"\nupstream = \"b\"\n",
        )
        .unwrap_err();
        assert!(e.message.contains("no upstream named \"b\""), "{e}");
        let e = Config::parse("x.toml", "[redact]\naction = \"obliterate\"\n").unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
    }
}
