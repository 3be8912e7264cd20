//! Tests of flow control: the pure core, its config, the detectors, the
//! usage limit policies, the actor under paused time, and properties of the
//! core.

mod actor;
mod bounds;
mod config;
mod core;
mod headers;
mod overload;
mod props;
mod rejection;
mod saturation;
mod usage;

use std::sync::Arc;
use std::time::Duration;

use super::*;

pub(super) const OPEN: PoolState = PoolState {
    saturation: 0.0,
    has_endpoints: true,
};
pub(super) const FULL: PoolState = PoolState {
    saturation: 1.0,
    has_endpoints: true,
};
pub(super) const EMPTY: PoolState = PoolState {
    saturation: 1.0,
    has_endpoints: false,
};

pub(super) fn request(flow: &str, priority: i64, bytes: u64) -> FlowRequest {
    FlowRequest {
        fairness_id: flow.into(),
        priority,
        byte_size: bytes,
        ttl: None,
    }
}

pub(super) fn config(edit: impl FnOnce(&mut FlowControlConfig)) -> Arc<FlowControlConfig> {
    let mut config = FlowControlConfig {
        enabled: true,
        ..FlowControlConfig::default()
    };
    edit(&mut config);
    Arc::new(config)
}

pub(super) fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}
