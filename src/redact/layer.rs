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

/// The composed privacy stack. Today it is the redact layer; the key, retention and
/// training layers join it as they land, so a stack built on `PrivacyLayer` picks them up.
#[derive(Debug, Clone, Default)]
pub struct PrivacyLayer {
    redact: RedactLayer,
}

impl PrivacyLayer {
    /// The default stack (built-in filters).
    pub fn new() -> Self {
        Self::default()
    }

    /// Configures the redact part.
    pub fn redact(mut self, f: impl FnOnce(RedactLayer) -> RedactLayer) -> Self {
        self.redact = f(self.redact);
        self
    }
}

impl<S> Layer<S> for PrivacyLayer {
    type Service = Redact<S>;

    fn layer(&self, inner: S) -> Redact<S> {
        self.redact.layer(inner)
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
