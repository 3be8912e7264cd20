//! `switchyard-kube-plane DIR BIN_DIR`: starts etcd and kube-apiserver in the background with
//! the harness's code, writes `DIR/pids`, and prints how to use the control plane.
//!
//! `cargo xtask kube up` runs it after building the workspace's binaries; it is a binary of
//! this crate rather than code linked into xtask so that xtask does not pull rustls and kube
//! into its own dependency graph (the two graphs would then keep rebuilding each other's
//! copies of ring, rustls and tonic).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use switchyard_conformance::kube::{self, KubeBins};

/// The file in the state directory holding both pids (read by `cargo xtask kube down`).
const PIDS_FILE: &str = "pids";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(dir), Some(bin_dir)) = (args.next(), args.next()) else {
        eprintln!("usage: switchyard-kube-plane STATE_DIR BIN_DIR (run `cargo xtask kube up`)");
        return ExitCode::FAILURE;
    };
    let (dir, bin_dir) = (PathBuf::from(dir), PathBuf::from(bin_dir));
    match up(&dir, &bin_dir).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:?}");
            ExitCode::FAILURE
        }
    }
}

async fn up(dir: &std::path::Path, bin_dir: &std::path::Path) -> kube::Result<()> {
    let bins = KubeBins::in_dir(bin_dir)?;
    let started = Instant::now();
    let plane = kube::start_detached(&bins, dir).await?;
    let pids = dir.join(PIDS_FILE);
    std::fs::write(
        &pids,
        format!("{}\n{}\n", plane.apiserver_pid, plane.etcd_pid),
    )
    .map_err(kube::Error::io(format!("writing {}", pids.display())))?;
    let kubeconfig = plane.layout.kubeconfig.display();
    println!(
        "control plane ready in {:.1}s at {} (/readyz after {:.1}s, then {} CRDs Established; \
         logs in {})",
        started.elapsed().as_secs_f64(),
        plane.layout.url(),
        plane.apiserver_ready.as_secs_f64(),
        plane.crds.len(),
        dir.join("logs").display()
    );
    println!("  export KUBECONFIG={kubeconfig}");
    println!("  {}/helm list -A", bin_dir.display());
    println!(
        "  KUBECONFIG={kubeconfig} target/debug/switchyard-epp --pool-name ...   # every binary reads KUBECONFIG"
    );
    println!(
        "  cargo xtask kube down --dir {}   # stops both and removes the state",
        dir.display()
    );
    Ok(())
}
