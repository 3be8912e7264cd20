//! Port assignment for a local plan: consecutive ports from a first port, or free loopback
//! ports when the first port is 0 (tests running many stacks side by side).

use std::net::{IpAddr, SocketAddr};

use super::PlanOptions;

/// Hands out ports in order, skipping the gateway's own.
pub(super) struct PortAllocator {
    host: IpAddr,
    next: u32,
    reserved: [u16; 2],
    exhausted: bool,
}

impl PortAllocator {
    pub(super) fn new(options: &PlanOptions) -> Self {
        Self {
            host: options.host,
            next: u32::from(options.first_port),
            reserved: [options.listener_port, options.admin_port],
            exhausted: false,
        }
    }

    pub(super) fn next(&mut self, problems: &mut Vec<String>) -> SocketAddr {
        if self.next == 0 {
            return match crate::ports::free_port() {
                Ok(port) if !self.reserved.contains(&port) => SocketAddr::new(self.host, port),
                Ok(_) => self.next_free(problems),
                Err(err) => {
                    problems.push(format!("no free port: {err}"));
                    SocketAddr::new(self.host, 0)
                }
            };
        }
        loop {
            let Ok(port) = u16::try_from(self.next) else {
                if !self.exhausted {
                    self.exhausted = true;
                    problems.push(
                        "not enough ports above the first port for every process: lower the \
                         first port or the replica counts"
                            .to_owned(),
                    );
                }
                return SocketAddr::new(self.host, 0);
            };
            self.next += 1;
            if !self.reserved.contains(&port) {
                return SocketAddr::new(self.host, port);
            }
        }
    }

    /// `count` consecutive ports: a data-parallel simulator listens on `--port` + rank.
    pub(super) fn consecutive(
        &mut self,
        count: usize,
        problems: &mut Vec<String>,
    ) -> Vec<SocketAddr> {
        if self.next != 0 || count <= 1 {
            return (0..count).map(|_| self.next(problems)).collect();
        }
        // Free-port mode: find a free port whose successors are free too.
        for _ in 0..64 {
            let first = self.next(problems);
            let Some(last) = first
                .port()
                .checked_add(u16::try_from(count - 1).unwrap_or(0))
            else {
                continue;
            };
            let rest: Vec<SocketAddr> = (first.port() + 1..=last)
                .map(|port| SocketAddr::new(self.host, port))
                .collect();
            let free = rest.iter().all(|addr| {
                !self.reserved.contains(&addr.port()) && std::net::TcpListener::bind(addr).is_ok()
            });
            if free {
                return std::iter::once(first).chain(rest).collect();
            }
        }
        problems.push(format!("found no {count} consecutive free ports"));
        vec![SocketAddr::new(self.host, 0); count]
    }

    /// Another free port, after [`crate::ports::free_port`] offered a reserved one.
    fn next_free(&mut self, problems: &mut Vec<String>) -> SocketAddr {
        match crate::ports::free_port() {
            Ok(port) => SocketAddr::new(self.host, port),
            Err(err) => {
                problems.push(format!("no free port: {err}"));
                SocketAddr::new(self.host, 0)
            }
        }
    }
}
