//! Loopback ports.
//!
//! Servers the harness runs in-process bind `127.0.0.1:0` and keep their listener, so they
//! never race for a port; Envoy binds port 0 too and the harness asks its admin API which port
//! it got. [`free_port`] is for the remaining case: a port another process must be told
//! before it starts (a child server, or a deliberately dead ext_proc address).

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::process::ChildProcess;

/// Ports handed out by this process, so two calls never return the same one even if the
/// kernel offers it twice.
static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// How often [`wait_for_tcp`] retries a refused connection.
const CONNECT_RETRY: Duration = Duration::from_millis(20);

/// Lowest port [`free_port`] hands out: above the well-known and common service ports.
const LOWEST_PORT: u16 = 10_000;

/// Where the kernel's ephemeral range starts when `/proc` does not say (Linux's default).
const DEFAULT_EPHEMERAL_START: u16 = 32_768;

/// How many random candidates [`free_port`] tries before giving up.
const ATTEMPTS: usize = 1_000;

/// A loopback port that was free a moment ago and that another process is unlikely to take
/// before the caller's child binds it.
///
/// Binding port 0 would be simpler but hands out ports from the kernel's ephemeral range, the
/// same range every outgoing connection on the machine (Envoy's upstream connections, test
/// clients, other test processes) draws its source port from — so one of those could grab it
/// in the gap before the child binds. Ports are therefore drawn at random from below the
/// ephemeral range, which only explicit binds use; the randomness keeps concurrent test
/// processes (nextest runs one per test) from trying the same sequence.
pub fn free_port() -> Result<u16> {
    let ceiling = ephemeral_range_start().max(LOWEST_PORT + 1_000);
    for _ in 0..ATTEMPTS {
        let port = rand::random_range(LOWEST_PORT..ceiling);
        if TcpListener::bind(("127.0.0.1", port)).is_err() {
            continue;
        }
        let fresh = HANDED_OUT
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(port);
        if fresh {
            return Ok(port);
        }
    }
    Err(Error::io("finding a free loopback port")(
        std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            format!("{ATTEMPTS} random ports in {LOWEST_PORT}..{ceiling} were all taken"),
        ),
    ))
}

/// First port of the kernel's ephemeral range (`/proc/sys/net/ipv4/ip_local_port_range`).
fn ephemeral_range_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse().ok())
        .unwrap_or(DEFAULT_EPHEMERAL_START)
}

/// A loopback address on a [`free_port`].
pub fn free_addr() -> Result<SocketAddr> {
    Ok(SocketAddr::from(([127, 0, 0, 1], free_port()?)))
}

/// Waits until `addr` accepts TCP connections, failing early with the child's log if `child`
/// exits first, and with [`Error::NotReady`] after `timeout`.
pub async fn wait_for_tcp(
    child: &mut ChildProcess,
    addr: SocketAddr,
    timeout: Duration,
) -> Result<()> {
    let started = Instant::now();
    loop {
        child.fail_if_exited()?;
        let attempt = tokio::time::timeout(CONNECT_RETRY, tokio::net::TcpStream::connect(addr));
        if let Ok(Ok(_)) = attempt.await {
            return Ok(());
        }
        if started.elapsed() > timeout {
            return Err(Error::NotReady {
                name: child.name().to_owned(),
                pid: child.pid(),
                waited: timeout,
                what: format!("nothing accepted TCP connections on {addr}"),
                log: child.log_path().to_path_buf(),
                tail: child.log_tail(crate::process::TAIL_LINES),
            });
        }
        tokio::time::sleep(CONNECT_RETRY).await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn free_ports_are_distinct_and_bindable() {
        let ports: BTreeSet<u16> = (0..20).map(|_| free_port().unwrap()).collect();
        assert_eq!(ports.len(), 20);
        let port = *ports.iter().next().unwrap();
        TcpListener::bind(("127.0.0.1", port)).unwrap();
        assert!(
            ports
                .iter()
                .all(|&port| port >= LOWEST_PORT && port < ephemeral_range_start())
        );
    }
}
