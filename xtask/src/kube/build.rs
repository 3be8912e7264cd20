//! The control plane's binaries built from Go modules and cached outside the clone.
//!
//! Each binary has a wrapper module under `xtask/go/<name>/` whose committed `go.mod` and
//! `go.sum` pin every module (kube-apiserver's also `replace`s each `k8s.io/*` staging module
//! with its published `v0.X.Y`, since `k8s.io/kubernetes` itself requires `v0.0.0`). A build
//! lands in `~/.cache/switchyard/kube/<name>-<version>-<key>/`, where the key hashes
//! `go.mod`, `go.sum` and `go version`: a changed pin rebuilds, anything else reuses. The
//! Gateway API CRDs are copied the same way from the `sigs.k8s.io/gateway-api` module.
//! Finally `target/tools/kube/` links to all of them; the harness reads that directory.

use std::fs::{self, File};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

/// One binary built from a wrapper module.
struct GoBinary {
    /// Executable name, and the wrapper module's directory under `xtask/go/`.
    name: &'static str,
    /// The main package.
    package: &'static str,
    /// The pinned version (must appear in the wrapper's go.mod).
    version: &'static str,
    /// The module whose version that is.
    module: &'static str,
    /// `-ldflags` for `go build`: the version stamps a release build sets (kube-apiserver
    /// otherwise reports v0.0.0, and Helm refuses charts whose `kubeVersion` that fails).
    ldflags: &'static str,
    /// Arguments that make it print its version, and what the output must contain.
    version_args: &'static [&'static str],
    expect: &'static str,
}

/// What `cargo xtask kube build` builds.
const BINARIES: &[GoBinary] = &[
    GoBinary {
        name: "kube-apiserver",
        package: "k8s.io/kubernetes/cmd/kube-apiserver",
        version: "v1.37.2",
        module: "k8s.io/kubernetes",
        ldflags: "-X k8s.io/component-base/version.gitVersion=v1.37.2 \
                  -X k8s.io/component-base/version.gitMajor=1 \
                  -X k8s.io/component-base/version.gitMinor=37 \
                  -X k8s.io/component-base/version.gitTreeState=clean",
        version_args: &["--version"],
        expect: "Kubernetes v1.37.2",
    },
    GoBinary {
        name: "etcd",
        package: "go.etcd.io/etcd/server/v3",
        version: "v3.6.16",
        module: "go.etcd.io/etcd/server/v3",
        ldflags: "",
        version_args: &["--version"],
        expect: "etcd Version: 3.6.16",
    },
    GoBinary {
        name: "helm",
        package: "helm.sh/helm/v4/cmd/helm",
        version: "v4.3.2",
        module: "helm.sh/helm/v4",
        ldflags: "-X helm.sh/helm/v4/internal/version.version=v4.3.2",
        version_args: &["version", "--short"],
        expect: "v4.3.2",
    },
];

/// The Gateway API module and the directory of its standard-channel CRDs.
const GATEWAY_API_MODULE: &str = "sigs.k8s.io/gateway-api";
const GATEWAY_API_VERSION: &str = "v1.6.3";
const GATEWAY_API_CRD_DIR: &str = "config/crd/standard";

/// What a build produced: the directory the harness reads and a line per artifact.
pub struct Built {
    /// `target/tools/kube/`.
    pub dir: PathBuf,
    /// `name version: path (cached | built in Ns)`.
    pub lines: Vec<String>,
}

/// Builds (or finds cached) every binary and the CRDs, and links them into
/// `target/tools/kube/`.
pub fn build_all(root: &Path) -> Result<Built> {
    let go = find_go()?;
    let go_version = output(Command::new(&go).arg("version"))?;
    let cache = cache_root()?;
    let _lock = lock_cache(&cache)?;
    let link_dir = super::link_dir(root);
    fs::create_dir_all(&link_dir).with_context(|| format!("creating {}", link_dir.display()))?;
    let mut lines = Vec::new();
    for binary in BINARIES {
        let (path, how) = ensure_binary(root, &go, &go_version, &cache, binary)?;
        link(&path, &link_dir.join(binary.name))?;
        lines.push(format!(
            "{} {}: {} ({how})",
            binary.name,
            binary.version,
            path.display()
        ));
    }

    let module_dir = root.join("xtask").join("go").join("gateway-api");
    let key = module_key(
        &module_dir,
        GATEWAY_API_MODULE,
        GATEWAY_API_VERSION,
        &go_version,
    )?;
    let entry = cache.join(format!("gateway-api-crds-{GATEWAY_API_VERSION}-{key}"));
    let how = if entry.is_dir() {
        "cached"
    } else {
        copy_gateway_crds(&go, &module_dir, &entry)?;
        "copied"
    };
    link(&entry, &link_dir.join("gateway-api-crds"))?;
    lines.push(format!(
        "gateway-api standard CRDs {GATEWAY_API_VERSION}: {} ({how})",
        entry.display()
    ));
    Ok(Built {
        dir: link_dir,
        lines,
    })
}

/// Helm alone (for `cargo xtask charts`, which needs no API server): its cached path.
pub fn helm(root: &Path) -> Result<PathBuf> {
    let go = find_go()?;
    let go_version = output(Command::new(&go).arg("version"))?;
    let cache = cache_root()?;
    let _lock = lock_cache(&cache)?;
    let binary = BINARIES
        .iter()
        .find(|b| b.name == "helm")
        .context("helm is missing from the build table")?;
    let (path, how) = ensure_binary(root, &go, &go_version, &cache, binary)?;
    println!("helm {}: {} ({how})", binary.version, path.display());
    Ok(path)
}

/// Holds the cache lock: two worktrees building at once would race on one entry.
fn lock_cache(cache: &Path) -> Result<File> {
    fs::create_dir_all(cache).with_context(|| format!("creating {}", cache.display()))?;
    let lock_path = cache.join(".lock");
    let lock = File::create(&lock_path)
        .with_context(|| format!("creating lock file {}", lock_path.display()))?;
    lock.lock()
        .with_context(|| format!("locking {}", lock_path.display()))?;
    Ok(lock)
}

/// The cached binary, built first when its entry is missing; and whether it was.
fn ensure_binary(
    root: &Path,
    go: &Path,
    go_version: &str,
    cache: &Path,
    binary: &GoBinary,
) -> Result<(PathBuf, String)> {
    let module_dir = root.join("xtask").join("go").join(binary.name);
    let key = module_key(
        &module_dir,
        binary.module,
        binary.version,
        &format!("{go_version} {} {}", binary.package, binary.ldflags),
    )?;
    let entry = cache.join(format!("{}-{}-{key}", binary.name, binary.version));
    let path = entry.join(binary.name);
    let how = if path.is_file() {
        "cached".to_owned()
    } else {
        let seconds = go_build(go, &module_dir, binary, &entry)?;
        format!("built in {seconds:.0}s")
    };
    check_version(&path, binary)?;
    Ok((path, how))
}

/// `go` from PATH, else the standard install location; a clear error without it.
fn find_go() -> Result<PathBuf> {
    for candidate in [PathBuf::from("go"), PathBuf::from("/usr/local/go/bin/go")] {
        match Command::new(&candidate).arg("version").output() {
            Ok(out) if out.status.success() => return Ok(candidate),
            _ => continue,
        }
    }
    bail!(
        "the Go toolchain (1.26 or newer) is needed to build the test control plane \
         (kube-apiserver, etcd, helm) from the Go modules pinned in xtask/go/: install Go \
         and put `go` on PATH (or at /usr/local/go/bin/go), with the Go module proxy reachable, \
         then rerun `cargo xtask kube build`"
    )
}

/// `~/.cache/switchyard/kube` (or under `$XDG_CACHE_HOME`).
fn cache_root() -> Result<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .context("neither XDG_CACHE_HOME nor HOME is set; the build cache needs one")?;
    Ok(base.join("switchyard").join("kube"))
}

/// A hash of the wrapper's go.mod, go.sum and the Go version; also checks that go.mod pins
/// `module` at `version`, so the table above and the module cannot drift apart.
fn module_key(module_dir: &Path, module: &str, version: &str, go_version: &str) -> Result<String> {
    let read = |name: &str| {
        let path = module_dir.join(name);
        fs::read(&path)
            .with_context(|| format!("reading {} (the committed wrapper module)", path.display()))
    };
    let go_mod = read("go.mod")?;
    let go_sum = read("go.sum")?;
    let pinned = format!("{module} {version}");
    if !String::from_utf8_lossy(&go_mod).contains(&pinned) {
        bail!(
            "{}/go.mod does not require `{pinned}`; update the table in xtask/src/kube/build.rs \
             or the wrapper module so they agree",
            module_dir.display()
        );
    }
    let mut hash = Fnv::new();
    for part in [
        &go_mod[..],
        b"\0",
        &go_sum[..],
        b"\0",
        go_version.as_bytes(),
    ] {
        hash.write(part);
    }
    Ok(format!("{:016x}", hash.finish()))
}

/// `CGO_ENABLED=0 go build -o <entry>/<name> <package>` in the wrapper module; returns the
/// seconds it took, printed once and kept beside the binary.
fn go_build(go: &Path, module_dir: &Path, binary: &GoBinary, entry: &Path) -> Result<f64> {
    println!(
        "{} {}: building from {} (a first build takes minutes; kube-apiserver about 20 on two busy cores)",
        binary.name,
        binary.version,
        module_dir.display()
    );
    let started = Instant::now();
    let partial = entry.with_extension("partial");
    fs::create_dir_all(&partial).with_context(|| format!("creating {}", partial.display()))?;
    let status = Command::new(go)
        .current_dir(module_dir)
        .env("CGO_ENABLED", "0")
        // The committed go.sum is the pin: a build must not rewrite it or fetch other versions.
        .env("GOFLAGS", "-mod=readonly")
        .env("GOTOOLCHAIN", "local")
        .args(["build", "-ldflags", binary.ldflags, "-o"])
        .arg(partial.join(binary.name))
        .arg(binary.package)
        .status()
        .context("running go build")?;
    if !status.success() {
        bail!(
            "`go build {}` in {} failed ({status}); the Go module proxy must be reachable for \
             the first build",
            binary.package,
            module_dir.display()
        );
    }
    let seconds = started.elapsed().as_secs_f64();
    fs::write(partial.join("build-seconds"), format!("{seconds:.1}\n"))
        .context("recording the build time")?;
    remove_if_present(entry)?;
    fs::rename(&partial, entry)
        .with_context(|| format!("moving {} into place", partial.display()))?;
    println!("{} {}: built in {seconds:.1}s", binary.name, binary.version);
    Ok(seconds)
}

fn copy_gateway_crds(go: &Path, module_dir: &Path, entry: &Path) -> Result<()> {
    let mut download = Command::new(go);
    download
        .current_dir(module_dir)
        .env("GOFLAGS", "-mod=readonly")
        .env("GOTOOLCHAIN", "local")
        .args(["mod", "download", "-json", GATEWAY_API_MODULE]);
    let json = output(&mut download)?;
    let info: serde_json::Value =
        serde_json::from_str(&json).context("reading `go mod download -json`")?;
    let source = info
        .get("Dir")
        .and_then(serde_json::Value::as_str)
        .map(|dir| Path::new(dir).join(GATEWAY_API_CRD_DIR))
        .context("`go mod download -json` printed no Dir")?;
    let partial = entry.with_extension("partial");
    remove_if_present(&partial)?;
    fs::create_dir_all(&partial).with_context(|| format!("creating {}", partial.display()))?;
    let mut copied = 0;
    for file in fs::read_dir(&source).with_context(|| format!("reading {}", source.display()))? {
        let path = file?.path();
        if path.extension().is_some_and(|ext| ext == "yaml") {
            let name = path.file_name().context("a file without a name")?;
            fs::copy(&path, partial.join(name))
                .with_context(|| format!("copying {}", path.display()))?;
            copied += 1;
        }
    }
    if copied == 0 {
        bail!("no CRD files in {}", source.display());
    }
    fs::rename(&partial, entry).with_context(|| format!("moving {} into place", partial.display()))
}

fn check_version(path: &Path, binary: &GoBinary) -> Result<()> {
    let printed = output(Command::new(path).args(binary.version_args))?;
    if !printed.contains(binary.expect) {
        bail!(
            "{} does not report {} (`{}` printed: {}); delete it to rebuild",
            path.display(),
            binary.expect,
            binary.version_args.join(" "),
            printed.trim()
        );
    }
    Ok(())
}

/// Points `at` to `target` (a symlink), replacing what was there.
fn link(target: &Path, at: &Path) -> Result<()> {
    remove_if_present(at)?;
    std::os::unix::fs::symlink(target, at)
        .with_context(|| format!("linking {} -> {}", at.display(), target.display()))
}

fn remove_if_present(path: &Path) -> Result<()> {
    let result = match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(err) if err.kind() == ErrorKind::NotFound => return Ok(()),
        Err(err) => Err(err),
    };
    result.with_context(|| format!("removing {}", path.display()))
}

fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("running {:?}", cmd.get_program()))?;
    if !out.status.success() {
        bail!(
            "{:?} {:?} failed ({}): {}",
            cmd.get_program(),
            cmd.get_args().collect::<Vec<_>>(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

/// 64-bit FNV-1a: a cache key that stays the same across Rust releases (std's hasher may
/// not), with no dependency for it.
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_changes_with_go_sum_and_checks_the_pin() {
        let dir = std::env::temp_dir().join(format!("xtask-kube-key-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("temp dir");
        fs::write(dir.join("go.mod"), "require example.com/m v1.2.3\n").expect("go.mod");
        fs::write(dir.join("go.sum"), "a\n").expect("go.sum");
        let first = module_key(&dir, "example.com/m", "v1.2.3", "go1.26").expect("key");
        fs::write(dir.join("go.sum"), "b\n").expect("go.sum");
        let second = module_key(&dir, "example.com/m", "v1.2.3", "go1.26").expect("key");
        assert_ne!(first, second, "a go.sum change must rebuild");
        let err = module_key(&dir, "example.com/m", "v9.9.9", "go1.26").expect_err("drift");
        assert!(err.to_string().contains("does not require"), "{err}");
        fs::remove_dir_all(&dir).expect("cleanup");
    }
}
