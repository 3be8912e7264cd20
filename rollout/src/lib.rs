//! Rollout controller: metric-gated canary weights on HTTPRoutes.
