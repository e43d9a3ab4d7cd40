use std::sync::Arc;

use tower::Layer;

use super::{Config, Redact};
use crate::engine::{Action, Engine, Key, Redactor, ResponsePolicy};
use crate::provider::Provider;

/// Applies [`Redact`] to a service: PII and secrets are removed from request bodies and
/// restored (or redacted) in response bodies. See the [module docs](super).
#[derive(Debug, Clone)]
pub struct RedactLayer {
    config: Arc<Config>,
}

impl RedactLayer {
    /// A layer over the built-in filters with their default actions and a random
    /// pseudonym key (set one with [`RedactLayer::key`] to share tokens across replicas).
    ///
    /// # Panics
    /// Never in practice: the built-in filters are checked by the test suite.
    pub fn new() -> Self {
        let engine = Engine::builtin().expect("the built-in filters compile");
        Self::with_engine(Arc::new(engine))
    }

    /// A layer over a compiled engine (your own filters).
    pub fn with_engine(engine: Arc<Engine>) -> Self {
        Self::with_redactor(Redactor::new(engine))
    }

    /// A layer over a configured redactor (engine, actions, key, tenant).
    pub fn with_redactor(redactor: Redactor) -> Self {
        RedactLayer {
            config: Arc::new(Config::new(redactor)),
        }
    }

    fn map(mut self, f: impl FnOnce(&mut Config)) -> Self {
        f(Arc::make_mut(&mut self.config));
        self
    }

    /// Sets the action for every entity (per-entity actions still win).
    pub fn action(self, action: Action) -> Self {
        self.map(|c| c.redactor = c.redactor.clone().with_action(action))
    }

    /// Sets the action for one entity (`"EMAIL"`, `"PERSON"`, ...).
    pub fn entity_action(self, entity: &str, action: Action) -> Self {
        self.map(|c| c.redactor = c.redactor.clone().with_entity_action(entity, action))
    }

    /// Sets the key behind pseudonyms and hashes.
    pub fn key(self, key: Key) -> Self {
        self.map(|c| c.redactor = c.redactor.clone().with_key(key))
    }

    /// Per-tenant overrides: each tenant the policy names gets its actions per entity (over
    /// the layer's) and its allow-list; the tenant comes from the api_key layer's
    /// [`KeyContext`](crate::api_key::KeyContext) or a host-set
    /// [`Tenant`](crate::api_key::Tenant).
    pub fn policy(self, policy: Arc<crate::policy::Policy>) -> Self {
        self.map(|c| c.policy = Some(policy))
    }

    /// Sets how answers are treated (restore, redact what the model produced).
    pub fn response_policy(self, policy: ResponsePolicy) -> Self {
        self.map(|c| c.redactor = c.redactor.clone().with_response_policy(policy))
    }

    /// Whether request bodies are scanned (default: yes).
    pub fn requests(self, on: bool) -> Self {
        self.map(|c| c.request = on)
    }

    /// Whether response bodies are processed (default: yes).
    pub fn responses(self, on: bool) -> Self {
        self.map(|c| c.response = on)
    }

    /// Largest body, after decoding, that is scanned (default 16 MiB); larger request
    /// bodies get 413, larger JSON answers 502.
    pub fn body_limit(self, bytes: usize) -> Self {
        self.map(|c| c.body_limit = bytes)
    }

    /// Forward request bodies that cannot be scanned (unknown encoding, invalid JSON or
    /// UTF-8, too large) instead of refusing them. Off by default: fail closed.
    pub fn fail_open_requests(self, on: bool) -> Self {
        self.map(|c| c.fail_open_request = on)
    }

    /// Pass answers that cannot be processed through unchanged instead of replacing them
    /// with an error. Off by default: fail closed.
    pub fn fail_open_responses(self, on: bool) -> Self {
        self.map(|c| c.fail_open_response = on)
    }

    /// Treat every request as this provider's instead of detecting it from the path.
    pub fn provider(self, provider: Provider) -> Self {
        self.map(|c| c.provider = Some(provider))
    }

    /// Reports detections and refusals (counts and codes only) to `observer`.
    pub fn observer(self, observer: Arc<dyn super::Observer>) -> Self {
        self.map(|c| c.observer = Some(observer))
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }
}

impl Default for RedactLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> Layer<S> for RedactLayer {
    type Service = Redact<S>;

    fn layer(&self, inner: S) -> Redact<S> {
        let mut config = self.config.clone();
        if config.policy.is_some() {
            Arc::make_mut(&mut config).compile_tenants();
        }
        Redact::from_parts(inner, config)
    }
}

/// The composed privacy stack, in the sidecar's order: retention (records), api_key (key
/// ids, tenants, gateway keys), training (opt-out: refused training endpoints, provider
/// flags, `x-veilgate-training`), redact. One [`Policy`](crate::policy::Policy) feeds the
/// retention schedule, the training consent and the per-tenant redaction overrides.
/// A training capture ([`CaptureLayer`](crate::training::CaptureLayer)) goes inside it,
/// next to the inner service.
///
/// ```
/// use std::sync::Arc;
/// use veilgate::api_key::{ApiKeyLayer, Pepper};
/// use veilgate::policy::{Policy, Schedule};
/// use veilgate::redact::PrivacyLayer;
///
/// let layer = PrivacyLayer::new()
///     .policy(Arc::new(Policy::new(Schedule::default())))
///     .api_key(ApiKeyLayer::new(Pepper::new(*b"a pepper from a secret store....")))
///     .redact(|r| r.body_limit(4 << 20));
/// # let _ = layer;
/// ```
#[derive(Debug, Clone)]
pub struct PrivacyLayer {
    retention: crate::retention::RetentionLayer,
    api_key: crate::api_key::ApiKeyLayer,
    training: crate::training::TrainingLayer,
    redact: RedactLayer,
}

impl Default for PrivacyLayer {
    fn default() -> Self {
        PrivacyLayer {
            retention: Default::default(),
            // Key ids under a per-process pepper until one is configured.
            api_key: crate::api_key::ApiKeyLayer::new(crate::api_key::Pepper::new(
                Key::random_bytes().to_vec(),
            )),
            training: crate::training::TrainingLayer::default(),
            redact: RedactLayer::default(),
        }
    }
}

impl PrivacyLayer {
    /// The default stack: built-in filters, default retention schedule, no tenants.
    pub fn new() -> Self {
        Self::default()
    }

    /// The tenants' policy: retention schedules and redaction overrides.
    pub fn policy(mut self, policy: Arc<crate::policy::Policy>) -> Self {
        self.retention = crate::retention::RetentionLayer::new(policy.clone());
        self.training = self.training.policy(policy.clone());
        self.redact = self.redact.policy(policy);
        self
    }

    /// Configures the training part (refused endpoints, flags per provider).
    pub fn training(
        mut self,
        f: impl FnOnce(crate::training::TrainingLayer) -> crate::training::TrainingLayer,
    ) -> Self {
        self.training = f(self.training);
        self
    }

    /// The api_key part (pepper, gateway keys, tenant resolution).
    pub fn api_key(mut self, layer: crate::api_key::ApiKeyLayer) -> Self {
        self.api_key = layer;
        self
    }

    /// Configures the redact part.
    pub fn redact(mut self, f: impl FnOnce(RedactLayer) -> RedactLayer) -> Self {
        self.redact = f(self.redact);
        self
    }
}

impl<S> Layer<S> for PrivacyLayer {
    type Service =
        crate::retention::Retention<crate::api_key::ApiKey<crate::training::Training<Redact<S>>>>;

    fn layer(&self, inner: S) -> Self::Service {
        self.retention.layer(
            self.api_key
                .layer(self.training.layer(self.redact.layer(inner))),
        )
    }
}

/// `ServiceBuilder` methods for veilgate's layers.
pub trait ServiceBuilderExt<L> {
    /// Adds a [`RedactLayer`].
    fn redact(
        self,
        layer: RedactLayer,
    ) -> tower::ServiceBuilder<tower::layer::util::Stack<RedactLayer, L>>;
    /// Adds the [`PrivacyLayer`] stack.
    fn privacy(
        self,
        layer: PrivacyLayer,
    ) -> tower::ServiceBuilder<tower::layer::util::Stack<PrivacyLayer, L>>;
}

impl<L> ServiceBuilderExt<L> for tower::ServiceBuilder<L> {
    fn redact(
        self,
        layer: RedactLayer,
    ) -> tower::ServiceBuilder<tower::layer::util::Stack<RedactLayer, L>> {
        self.layer(layer)
    }

    fn privacy(
        self,
        layer: PrivacyLayer,
    ) -> tower::ServiceBuilder<tower::layer::util::Stack<PrivacyLayer, L>> {
        self.layer(layer)
    }
}
