use std::sync::Arc;

use tower::Layer;

use super::{ApiKey, GatewayKey, Pepper, ProviderKey, Tenant};
use crate::provider::Provider;

/// Applies [`ApiKey`] to a service: key ids, sensitive auth headers and, in gateway-key
/// mode, verification and provider-key injection. See the [module docs](super).
#[derive(Debug, Clone)]
pub struct ApiKeyLayer {
    pub(crate) config: Arc<Config>,
}

/// The layer's settings. `Debug` shows no secret.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub pepper: Pepper,
    /// `Some` in gateway-key mode (an empty list refuses every request).
    pub gateway: Option<Vec<Accepted>>,
    pub provider_key: Option<ProviderKey>,
    pub provider: Option<Provider>,
    pub provider_key_header: Option<http::HeaderName>,
    /// Key id -> tenant (step 3 of the resolution order).
    pub key_tenants: std::collections::HashMap<String, Tenant>,
    /// A request header naming the tenant, trusted only when configured (step 4).
    pub tenant_header: Option<http::HeaderName>,
    /// The tenant when nothing else names one (step 5).
    pub default_tenant: Option<Tenant>,
}

/// A gateway key ready for comparison.
#[derive(Debug, Clone)]
pub(crate) struct Accepted {
    pub digest: [u8; 32],
    pub tenant: Option<Tenant>,
}

impl ApiKeyLayer {
    /// A layer that computes key ids under `pepper` and never refuses a request.
    pub fn new(pepper: Pepper) -> Self {
        ApiKeyLayer {
            config: Arc::new(Config {
                pepper,
                gateway: None,
                provider_key: None,
                provider: None,
                provider_key_header: None,
                key_tenants: Default::default(),
                tenant_header: None,
                default_tenant: None,
            }),
        }
    }

    fn map(mut self, f: impl FnOnce(&mut Config)) -> Self {
        f(Arc::make_mut(&mut self.config));
        self
    }

    /// Turns on gateway-key mode: only these keys are accepted (an empty list refuses
    /// everything). Check each with [`GatewayKey::check`] first to handle bad hashes.
    ///
    /// # Panics
    /// If a `sha256_hex` is not 64 hex digits.
    pub fn gateway_keys(self, keys: Vec<GatewayKey>) -> Self {
        let accepted = keys
            .iter()
            .map(|k| Accepted {
                digest: k.digest().unwrap_or_else(|e| panic!("{e}")),
                tenant: k.tenant.as_deref().map(Tenant::from),
            })
            .collect();
        self.map(|c| c.gateway = Some(accepted))
    }

    /// The upstream's key, injected in place of a verified gateway key. Without it, the
    /// gateway key is removed and nothing is injected.
    pub fn provider_key(self, key: ProviderKey) -> Self {
        self.map(|c| c.provider_key = Some(key))
    }

    /// Maps key ids (`kid_...`, see [`KeyId`](super::KeyId)) to tenants.
    pub fn key_tenants<I, K, T>(self, map: I) -> Self
    where
        I: IntoIterator<Item = (K, T)>,
        K: Into<String>,
        T: AsRef<str>,
    {
        let map = map
            .into_iter()
            .map(|(k, t)| (k.into(), Tenant::from(t.as_ref())))
            .collect();
        self.map(|c| c.key_tenants = map)
    }

    /// Trusts this request header to name the tenant (only behind something that sets
    /// it, never for clients on the open network). Without it the header is ignored.
    pub fn trusted_tenant_header(self, name: http::HeaderName) -> Self {
        self.map(|c| c.tenant_header = Some(name))
    }

    /// The tenant of requests nothing else assigns one to.
    pub fn default_tenant(self, tenant: &str) -> Self {
        self.map(|c| c.default_tenant = Some(Tenant::from(tenant)))
    }

    /// Injects the provider key in this header instead of the provider's usual one
    /// (`Authorization: Bearer` for OpenAI-style APIs, `x-api-key` for Anthropic): e.g.
    /// `api-key` for Azure OpenAI. The value is the bare key, or `Bearer <key>` when the
    /// header is `authorization`.
    pub fn provider_key_header(self, name: http::HeaderName) -> Self {
        self.map(|c| c.provider_key_header = Some(name))
    }

    /// Treat every request as this provider's (error shape, header the provider key goes
    /// in) instead of detecting it from the path and headers.
    pub fn provider(self, provider: Provider) -> Self {
        self.map(|c| c.provider = Some(provider))
    }
}

impl<S> Layer<S> for ApiKeyLayer {
    type Service = ApiKey<S>;

    fn layer(&self, inner: S) -> ApiKey<S> {
        ApiKey::from_parts(inner, self.config.clone())
    }
}
