use std::collections::HashMap;
use std::sync::Arc;

use tower::Layer;

use super::rules::DEFAULT_REFUSED;
use super::{Flag, Training};
use crate::policy::Policy;
use crate::provider::Provider;

/// Applies [`Training`] to a service: opted-out requests are kept away from training
/// endpoints and flagged against storage. See the [module docs](super).
#[derive(Debug, Clone)]
pub struct TrainingLayer {
    pub(crate) config: Arc<Config>,
}

/// The training layer's settings (see the builder methods of [`TrainingLayer`]).
#[derive(Debug, Clone)]
pub struct Config {
    pub policy: Arc<Policy>,
    /// Extra training endpoints refused for opted-out requests (path prefixes).
    pub refuse_paths: Vec<String>,
    /// Upload purposes refused for opted-out requests.
    pub refuse_file_purposes: Vec<String>,
    /// Flags per provider, when no [`UpstreamFlags`](super::UpstreamFlags) says otherwise.
    pub flags: HashMap<Provider, Arc<[Flag]>>,
    /// Largest body read to rewrite flags or find an upload's purpose.
    pub body_limit: usize,
    /// Told about refusals (status and code only).
    pub observer: Option<Arc<dyn crate::redact::Observer>>,
}

impl TrainingLayer {
    /// The default rules under `policy`: OpenAI's `store` flag for OpenAI-shaped
    /// requests, evals, feedback and dataset endpoints refused besides fine-tuning,
    /// `fine-tune` uploads refused.
    pub fn new(policy: Arc<Policy>) -> Self {
        let mut flags: HashMap<Provider, Arc<[Flag]>> = HashMap::new();
        flags.insert(Provider::OpenAi, vec![Flag::store()].into());
        TrainingLayer {
            config: Arc::new(Config {
                policy,
                refuse_paths: DEFAULT_REFUSED.iter().map(|s| s.to_string()).collect(),
                refuse_file_purposes: vec!["fine-tune".into()],
                flags,
                body_limit: crate::redact::DEFAULT_BODY_LIMIT,
                observer: None,
            }),
        }
    }

    /// The tenants' policy (training consent per tenant).
    pub fn policy(self, policy: Arc<Policy>) -> Self {
        self.map(|c| c.policy = policy)
    }

    fn map(mut self, f: impl FnOnce(&mut Config)) -> Self {
        f(Arc::make_mut(&mut self.config));
        self
    }

    /// Training endpoints refused for opted-out requests besides fine-tuning jobs
    /// (always refused): path prefixes such as `/v1/evals` (replaces the defaults:
    /// `/v1/evals`, `/v1/feedback`, `/v1/datasets`).
    pub fn refuse_paths<I: IntoIterator<Item = S>, S: Into<String>>(self, paths: I) -> Self {
        let paths = paths.into_iter().map(Into::into).collect();
        self.map(|c| c.refuse_paths = paths)
    }

    /// Upload `purpose` values refused for opted-out requests (default: `fine-tune`).
    pub fn refuse_file_purposes<I: IntoIterator<Item = S>, S: Into<String>>(
        self,
        purposes: I,
    ) -> Self {
        let purposes = purposes.into_iter().map(Into::into).collect();
        self.map(|c| c.refuse_file_purposes = purposes)
    }

    /// The flags set in opted-out requests of `provider` (default: OpenAI `store`).
    pub fn flags(self, provider: Provider, flags: Vec<Flag>) -> Self {
        self.map(|c| {
            c.flags.insert(provider, flags.into());
        })
    }

    /// Largest body (decoded) read to set flags or find an upload's purpose (default
    /// 16 MiB); larger ones that need it are refused with 413.
    pub fn body_limit(self, bytes: usize) -> Self {
        self.map(|c| c.body_limit = bytes)
    }

    /// Reports refusals (direction, status and `veilgate_*` code) to `observer`, as the
    /// redact layer does.
    pub fn observer(self, observer: Arc<dyn crate::redact::Observer>) -> Self {
        self.map(|c| c.observer = Some(observer))
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }
}

impl Default for TrainingLayer {
    /// The default rules under the default policy (every tenant opted out).
    fn default() -> Self {
        TrainingLayer::new(Arc::new(Policy::default()))
    }
}

impl<S> Layer<S> for TrainingLayer {
    type Service = Training<S>;

    fn layer(&self, inner: S) -> Training<S> {
        Training::from_parts(inner, self.config.clone())
    }
}
