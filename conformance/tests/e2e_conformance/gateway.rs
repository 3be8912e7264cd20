//! One local gateway per test, started exactly as `cargo xtask up` starts it
//! ([`RunningStack::start`] on a [`LocalStack`]): real simulator replicas, the real BBR and
//! endpoint pickers, the real Envoy — all on free loopback ports, so tests run side by side.
//! The binaries come from `SWITCHYARD_BIN_DIR` (exported by `cargo xtask test`), else from the
//! target directory this test was built into.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use switchyard_conformance::client::{HttpClient, HttpResponse};
use switchyard_conformance::envoy;
use switchyard_conformance::ports;
use switchyard_local::plan::PlanOptions;
use switchyard_local::running::{RunningStack, StackOptions};
use switchyard_local::stack::LocalStack;

/// Where `cargo xtask test` says the binaries are.
pub const BIN_DIR_ENV: &str = "SWITCHYARD_BIN_DIR";
/// The simulator names the replica that answered in this header.
pub const POD_HEADER: &str = "x-inference-pod";
/// The conformance header the picker's `header-based-testing-filter` honours.
pub const TEST_SELECTION_HEADER: &str = "test-epp-endpoint-selection";
/// The header upstream's `destination-endpoint-served-verifier` answers with.
pub const SERVED_ENDPOINT_HEADER: &str = "x-conformance-test-served-endpoint";
/// An EndpointPickerConfig with upstream's two conformance plugins (as upstream's
/// `conformance-plugins.yaml`) and a queue scorer: only a picker started with it honours
/// [`TEST_SELECTION_HEADER`] and reports the served endpoint in [`SERVED_ENDPOINT_HEADER`].
pub const TESTING_PICKER_CONFIG: &str = "apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: header-based-testing-filter
- type: destination-endpoint-served-verifier
- type: queue-scorer
- type: max-score-picker
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: header-based-testing-filter
  - pluginRef: queue-scorer
  - pluginRef: max-score-picker
";

/// One pool of the test gateway.
pub struct Pool {
    pub name: &'static str,
    pub model: &'static str,
    pub replicas: u16,
    pub target_ports: usize,
    pub fail_open: bool,
    pub adapters: &'static [&'static str],
    pub simulator_args: &'static [&'static str],
    pub picker_args: Vec<String>,
}

impl Pool {
    /// A FailClose pool of `replicas` one-port replicas answering at full speed.
    pub fn new(name: &'static str, model: &'static str, replicas: u16) -> Self {
        Self {
            name,
            model,
            replicas,
            target_ports: 1,
            fail_open: false,
            adapters: &[],
            simulator_args: &["--time-scale", "0"],
            picker_args: Vec::new(),
        }
    }

    fn manifest(&self) -> String {
        let ports: Vec<String> = (0..self.target_ports)
            .map(|i| format!("{{number: {}}}", 8000 + i))
            .collect();
        format!(
            "apiVersion: inference.networking.k8s.io/v1\nkind: InferencePool\n\
             metadata: {{name: {name}}}\nspec:\n  targetPorts: [{ports}]\n  selector:\n    \
             matchLabels: {{app: {name}}}\n  endpointPickerRef:\n    name: {name}-epp\n    \
             port: {{number: 9002}}\n    failureMode: {mode}\n---\n",
            name = self.name,
            ports = ports.join(", "),
            mode = if self.fail_open {
                "FailOpen"
            } else {
                "FailClose"
            },
        )
    }

    fn endpoints_entry(&self) -> Value {
        json!({
            "name": self.name,
            "replicas": self.replicas,
            "model": self.model,
            "adapters": self.adapters,
            "simulatorArgs": self.simulator_args,
            "pickerArgs": self.picker_args,
        })
    }
}

/// A rule: matches (`header` = value on X-Gateway-Model-Name, or an exact path) and
/// weighted pool names (a name without a pool manifest is a dangling reference).
pub struct Rule {
    pub matches: Match,
    pub backends: Vec<(&'static str, u32)>,
}

/// How a rule matches.
pub enum Match {
    /// `X-Gateway-Base-Model-Name` equals this (set by BBR from the body's model).
    BaseModel(&'static str),
    /// The path is exactly this.
    Path(&'static str),
}

fn route_manifest(rules: &[Rule]) -> String {
    let mut text = String::from(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: route}\n\
         spec:\n  parentRefs: [{name: gw}]\n  rules:\n",
    );
    for rule in rules {
        match rule.matches {
            Match::BaseModel(model) => text.push_str(&format!(
                "  - matches:\n    - headers: [{{type: Exact, name: X-Gateway-Base-Model-Name, \
                 value: {model:?}}}]\n"
            )),
            Match::Path(path) => text.push_str(&format!(
                "  - matches:\n    - path: {{type: Exact, value: {path:?}}}\n"
            )),
        }
        text.push_str("    backendRefs:\n");
        for (pool, weight) in &rule.backends {
            text.push_str(&format!(
                "    - {{group: inference.networking.k8s.io, kind: InferencePool, name: {pool}, \
                 weight: {weight}}}\n"
            ));
        }
    }
    text
}

/// A running test gateway.
pub struct Gateway {
    pub running: RunningStack,
    pub client: HttpClient,
    /// Replica name (`x-inference-pod`) → pool name.
    pub pool_of_replica: BTreeMap<String, String>,
    _dir: tempfile::TempDir,
}

impl Gateway {
    /// Writes the manifests and endpoints file of `pools` and `rules` and starts everything.
    pub async fn start(pools: &[Pool], rules: &[Rule]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut manifests: String = "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\n\
             metadata: {name: gw}\nspec:\n  gatewayClassName: envoy\n  listeners: [{name: http, \
             protocol: HTTP, port: 80}]\n---\n"
            .to_owned();
        for pool in pools {
            manifests.push_str(&pool.manifest());
        }
        manifests.push_str(&route_manifest(rules));
        std::fs::write(dir.path().join("manifests.yaml"), manifests).unwrap();
        let entries: Vec<Value> = pools.iter().map(Pool::endpoints_entry).collect();
        let endpoints = json!({
            "apiVersion": "local.switchyard.dev/v1alpha1",
            "kind": "LocalEndpoints",
            "pools": entries,
        });
        std::fs::write(
            dir.path().join("local-endpoints.yaml"),
            serde_json::to_string_pretty(&endpoints).unwrap(),
        )
        .unwrap();
        // A port picked for a child can still be taken by another process before the child
        // binds it; that (and only that) is worth a fresh set of ports and another start.
        let mut attempt = 1;
        let (stack_plan, running) = loop {
            let plan_options = PlanOptions {
                listener_port: ports::free_port().unwrap(),
                admin_port: ports::free_port().unwrap(),
                first_port: 0,
                ..PlanOptions::default()
            };
            let stack = LocalStack::load(dir.path(), &plan_options).unwrap();
            let plan = stack.plan.clone();
            let options = StackOptions {
                binaries: binaries_dir(),
                envoy: envoy::locate().unwrap(),
                run_dir: dir.path().join(format!("run-{attempt}")),
                start_timeout: Duration::from_secs(30),
            };
            match RunningStack::start(stack, &options, |_, _| {}).await {
                Ok(running) => break (plan, running),
                Err(error) if attempt < 3 && error.to_string().contains("in use") => {
                    eprintln!("stack start attempt {attempt} lost a port race, retrying: {error}");
                    attempt += 1;
                }
                Err(error) => panic!("starting the local stack: {error}"),
            }
        };
        let mut pool_of_replica = BTreeMap::new();
        for pool in &stack_plan.pools {
            for sim in &pool.simulators {
                for rank in 0..sim.endpoints.len() {
                    pool_of_replica.insert(format!("{}-{rank}", sim.name), pool.pool.name.clone());
                }
            }
        }
        Self {
            running,
            client: HttpClient::new(),
            pool_of_replica,
            _dir: dir,
        }
    }

    /// `POST /v1/chat/completions` for `model`, with `headers`.
    pub async fn chat(&self, model: &str, headers: &[(&str, &str)]) -> HttpResponse {
        self.chat_prompt(model, "Hello there", headers).await
    }

    /// `POST /v1/chat/completions` for `model` with one user message.
    pub async fn chat_prompt(
        &self,
        model: &str,
        prompt: &str,
        headers: &[(&str, &str)],
    ) -> HttpResponse {
        let body = json!({
            "model": model,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": 2,
        });
        self.post("/v1/chat/completions", headers, body.to_string())
            .await
    }

    /// `POST path` with a JSON content type.
    pub async fn post(&self, path: &str, headers: &[(&str, &str)], body: String) -> HttpResponse {
        let mut all = vec![("content-type", "application/json")];
        all.extend_from_slice(headers);
        self.client
            .post(&self.running.url(path), &all, body)
            .await
            .unwrap()
    }

    /// The replica that answered, if one did.
    pub fn replica<'a>(&self, response: &'a HttpResponse) -> Option<&'a str> {
        response.header(POD_HEADER)
    }

    /// The pool of the replica that answered, if one did.
    pub fn pool(&self, response: &HttpResponse) -> Option<String> {
        self.replica(response)
            .and_then(|r| self.pool_of_replica.get(r))
            .cloned()
    }

    /// Every endpoint of `pool`, with its replica name, in plan order.
    pub fn endpoints(&self, pool: &str) -> Vec<(String, SocketAddr)> {
        let plan = &self.running.stack.plan;
        plan.pools
            .iter()
            .filter(|p| p.pool.name == pool)
            .flat_map(|p| p.simulators.iter())
            .flat_map(|sim| {
                sim.endpoints
                    .iter()
                    .enumerate()
                    .map(move |(rank, addr)| (format!("{}-{rank}", sim.name), *addr))
            })
            .collect()
    }

    /// Stops the picker of `pool` (its process keeps its place; [`RunningStack::restart`]
    /// brings it back).
    pub fn stop_picker(&mut self, pool: &str) {
        let process = self.running.process_mut(&format!("epp-{pool}")).unwrap();
        process.child.stop().unwrap();
    }

    /// The last lines of Envoy's log, for assertion messages.
    pub fn envoy_log(&self) -> String {
        self.running.envoy.log_tail(20)
    }
}

/// The directory holding `switchyard-sim`, `switchyard-bbr` and `switchyard-epp`.
pub fn binaries_dir() -> PathBuf {
    let dir = match std::env::var_os(BIN_DIR_ENV).filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        // target/<profile>/deps/e2e_conformance-<hash> → target/<profile>
        None => std::env::current_exe()
            .unwrap()
            .parent()
            .and_then(|deps| deps.parent())
            .unwrap()
            .to_path_buf(),
    };
    for binary in ["switchyard-sim", "switchyard-bbr", "switchyard-epp"] {
        assert!(
            dir.join(binary).is_file(),
            "{} is missing: run `cargo build -p switchyard-sim -p switchyard-bbr -p \
             switchyard-epp --bins` (cargo xtask test does) or set {BIN_DIR_ENV}",
            dir.join(binary).display()
        );
    }
    dir
}
