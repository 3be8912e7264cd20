//! Command-line groups the binaries share, flattened into each one's clap parser (as
//! linkerd's policy controller flattens kubert's groups).
//!
//! Each group carries the EPP's names and defaults. A binary whose flags differ only in their
//! default or environment variable keeps its spelling by adjusting the flattened argument, e.g.
//! BBR's ports:
//!
//! ```ignore
//! #[command(mut_arg("grpc_port", |a| a.env("BBR_GRPC_PORT").default_value("9004")))]
//! ```
//!
//! so every flag a chart renders keeps its name, default and environment variable.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::error::{Error, Result};
use crate::log::{self, LogFormat, level_for_verbosity};

/// `--log-format` and upstream's `-v`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct LogArgs {
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,

    /// Verbosity like upstream's `-v`: 0–1 info, 2–3 debug, 4+ trace (RUST_LOG overrides).
    #[arg(short = 'v', long = "v", default_value_t = 0)]
    pub verbosity: u8,
}

impl LogArgs {
    /// Installs the process-wide logger these flags ask for.
    pub fn init(&self) {
        log::init(self.log_format, level_for_verbosity(self.verbosity));
    }
}

/// The three listeners of an ext_proc server: gRPC, gRPC health and `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct ServeArgs {
    /// Address the listeners bind to.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::UNSPECIFIED))]
    pub bind_address: IpAddr,

    /// gRPC port of the ext_proc service.
    #[arg(long, default_value_t = 9002)]
    pub grpc_port: u16,

    /// gRPC port of the grpc.health.v1 service (kubelet and Envoy health checks).
    #[arg(long, default_value_t = 9003)]
    pub grpc_health_port: u16,

    /// HTTP port of the Prometheus `/metrics` endpoint.
    #[arg(long, default_value_t = 9090)]
    pub metrics_port: u16,
}

impl ServeArgs {
    /// The gRPC, health and metrics addresses, checked to be distinct (port 0, "any free
    /// port", may repeat).
    pub fn addresses(&self) -> Result<[SocketAddr; 3]> {
        let ports = [self.grpc_port, self.grpc_health_port, self.metrics_port];
        for (i, a) in ports.iter().enumerate() {
            if *a != 0 && ports.iter().skip(i + 1).any(|b| b == a) {
                return Err(Error::Flag {
                    flag: "--grpc-port/--grpc-health-port/--metrics-port",
                    reason: format!("port {a} is used twice; give each listener its own port"),
                });
            }
        }
        Ok(ports.map(|port| SocketAddr::new(self.bind_address, port)))
    }
}

#[cfg(test)]
mod tests;
