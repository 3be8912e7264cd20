//! The rollout controller's shape: a subcommand before the flags, a switch that turns
//! leader election off, HTTP probes.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{assert_one, container, policy_on, release};
use crate::charts::help::Flags;
use crate::charts::policy::{self, ChartRules};

/// `switchyard-rollout serve` style: a subcommand first, and a switch that turns election off.
fn rollout_binaries() -> BTreeMap<String, Flags> {
    let help = "\
Options:
      --admin-address <ADMIN_ADDRESS>
          Address of the admin API

      --leader-election-disabled
          Run the controller without leader election
";
    BTreeMap::from([(
        "switchyard-rollout".to_owned(),
        Flags::from_help(help).for_subcommand(Some("serve")),
    )])
}

/// A one-replica rollout-style release with an HTTP probe, and the edit that turns it into
/// a two-replica one.
fn rollout_release(replicas: i64) -> Vec<Value> {
    let mut docs = release(replicas);
    let c = container(&mut docs);
    c["image"] = json!("ghcr.io/switchyard/switchyard-rollout:0.1.0");
    let mut args = vec![json!("serve")];
    // The switch is followed by another flag, which must not be taken for its value.
    if replicas == 1 {
        args.push(json!("--leader-election-disabled"));
    }
    args.push(json!("--admin-address=0.0.0.0:9443"));
    c["args"] = json!(args);
    c["ports"] = json!([{"name": "http-admin", "containerPort": 9443}]);
    c["livenessProbe"] = json!({"httpGet": {"path": "/healthz", "port": "http-admin"}});
    c["readinessProbe"] = json!({"httpGet": {"path": "/healthz", "port": 9443}});
    // The Service and ServiceMonitor of the EPP-like release do not apply here.
    docs.retain(|d| !matches!(policy::kind(d), "Service" | "ServiceMonitor"));
    docs
}

fn check_rollout(docs: &[Value]) -> Vec<String> {
    policy::check(
        docs,
        &policy_on(),
        &rollout_binaries(),
        ChartRules::default(),
    )
}

#[test]
fn subcommand_and_inverted_election_switch_are_understood() {
    assert_eq!(check_rollout(&rollout_release(1)), Vec::<String>::new());
    assert_eq!(check_rollout(&rollout_release(2)), Vec::<String>::new());

    let mut docs = rollout_release(1);
    container(&mut docs)["args"] = json!(["--admin-address=0.0.0.0:9443"]);
    assert_one(
        &check_rollout(&docs),
        "the first arg must be the subcommand `serve`",
    );

    // Two replicas but election switched off.
    let mut docs = rollout_release(2);
    container(&mut docs)["args"]
        .as_array_mut()
        .unwrap()
        .push(json!("--leader-election-disabled"));
    assert_one(
        &check_rollout(&docs),
        "leader election is off (--leader-election-disabled set) with 2 replica(s)",
    );
}

#[test]
fn http_probe_must_hit_a_declared_port() {
    let mut docs = rollout_release(1);
    container(&mut docs)["readinessProbe"]["httpGet"]["port"] = json!("metrics");
    assert_one(
        &check_rollout(&docs),
        "readinessProbe probes port \"metrics\", which the container does not declare",
    );
}
