//! What `cargo xtask up` prints once everything is ready: the endpoints, the pools and
//! example requests.

use std::path::Path;

use switchyard_local::running::RunningStack;

/// The request header choosing an InferenceObjective.
pub const OBJECTIVE_HEADER: &str = "x-gateway-inference-objective";

pub fn print(root: &Path, running: &RunningStack) {
    let rel = |p: &Path| p.strip_prefix(root).unwrap_or(p).display().to_string();
    let plan = &running.stack.plan;
    let gateway = format!("http://{}", running.envoy.listener_addr());
    println!("\nSwitchyard local gateway is up\n");
    println!("endpoints:");
    println!(
        "  {:<30} {:<24} pid {}",
        "gateway (Envoy)",
        gateway,
        running.envoy.pid()
    );
    println!(
        "  {:<30} http://{}",
        "envoy admin",
        running.envoy.admin_addr()
    );
    println!(
        "  {:<30} {:<24} health {}, metrics http://{}/metrics",
        "bbr (gRPC ext_proc)", plan.bbr.grpc, plan.bbr.health, plan.bbr.metrics
    );
    for pool in &plan.pools {
        let picker = &pool.picker;
        println!(
            "  {:<30} {:<24} health {}, metrics http://{}/metrics",
            format!("epp {}", pool.pool.name),
            picker.grpc,
            picker.health,
            picker.metrics
        );
    }
    println!("\npools:");
    for pool in &plan.pools {
        // `FailOpen` / `FailClose`, as the manifest spells it.
        let failure = format!("{:?}", pool.failure_mode);
        let replicas: Vec<String> = pool
            .simulators
            .iter()
            .flat_map(|s| s.endpoints.iter().map(ToString::to_string))
            .collect();
        println!(
            "  {:<24} {} replica(s) {}  {}",
            pool.pool.name,
            pool.simulators.len(),
            replicas.join(" "),
            failure
        );
        println!("  {:<24} models: {}", "", pool.model_names.join(", "));
    }
    let first_adapter = plan
        .pools
        .iter()
        .flat_map(|p| p.model_names.iter().skip(1))
        .next();
    let models: Vec<&str> = plan
        .pools
        .iter()
        .filter_map(|p| p.model_names.first().map(String::as_str))
        .collect();
    println!("\ntry:");
    if let Some(model) = models.first() {
        println!(
            "  curl -s {gateway}/v1/chat/completions -H 'content-type: application/json' \\\n    \
             -H '{OBJECTIVE_HEADER}: interactive-chat' \\\n    \
             -d '{{\"model\":\"{model}\",\"messages\":[{{\"role\":\"user\",\"content\":\"Hello!\"}}],\"max_tokens\":20}}'"
        );
    }
    if let Some(adapter) = first_adapter {
        println!(
            "  curl -s {gateway}/v1/completions -H 'content-type: application/json' \\\n    \
             -d '{{\"model\":\"{adapter}\",\"prompt\":\"Rate this dish:\",\"max_tokens\":20}}'"
        );
    }
    if let Some(model) = models
        .iter()
        .find(|m| Some(*m) != models.first())
        .or(models.first())
    {
        println!(
            "  curl -sN {gateway}/v1/chat/completions -H 'content-type: application/json' \\\n    \
             -d '{{\"model\":\"{model}\",\"stream\":true,\"messages\":[{{\"role\":\"user\",\"content\":\"Count to five\"}}],\"max_tokens\":20}}'"
        );
    }
    println!(
        "\nthe response header x-inference-pod names the simulated replica that answered.\n\
         logs and generated configuration: {}/ (Envoy's routes: envoy/rds.json)\n\
         Ctrl-C stops everything.",
        rel(running.run_dir())
    );
}
