use std::sync::Arc;

use tower::Layer;

use super::service::Retention;
use crate::policy::Policy;

/// Adds the retention middleware (see the [module docs](super)).
#[derive(Debug, Clone, Default)]
pub struct RetentionLayer {
    policy: Arc<Policy>,
}

impl RetentionLayer {
    /// Records under `policy`'s schedules (the tenant's, or the defaults).
    pub fn new(policy: Arc<Policy>) -> Self {
        RetentionLayer { policy }
    }

    /// The policy in force.
    pub fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }
}

impl<S> Layer<S> for RetentionLayer {
    type Service = Retention<S>;

    fn layer(&self, inner: S) -> Retention<S> {
        Retention::new(inner, self.policy.clone())
    }
}
