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

/// A loopback port that was free a moment ago: the kernel picked it for a bind to port 0 and
/// the socket was closed again. Another process may still take it before the caller binds,
/// which is why in-process servers keep their listener instead.
pub fn free_port() -> Result<u16> {
    loop {
        let listener = TcpListener::bind("127.0.0.1:0")
            .map_err(Error::io("binding 127.0.0.1:0 to find a free port"))?;
        let port = listener
            .local_addr()
            .map_err(Error::io("reading the address of a bound socket"))?
            .port();
        let fresh = HANDED_OUT
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(port);
        if fresh {
            return Ok(port);
        }
    }
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
    }
}
