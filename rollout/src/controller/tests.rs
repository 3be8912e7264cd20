//! `reconcile` against kube-rs's mock service (tower-test): each test lists
//! the exact calls the apiserver must see — method, path, query, body — and
//! answers them like the apiserver would. A missing call, an extra call or a
//! different body fails the test.

mod epp_source;
pub(crate) mod fixtures;
mod model_split;
mod scenarios;
mod write_order;
