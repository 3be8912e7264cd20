//! The EPP's own scheduler over the fleet, as it runs in production: metrics published as a
//! scrape once per 50 ms window (the default `--refresh-metrics-interval`), requests sent
//! since a scrape counted through the endpoints' load counters, the prompt hashed into the
//! approximate prefix index from its text, and each request's [`Reservation`] held until it
//! finishes.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchyard_epp::datastore::{Endpoint, EndpointMetrics, PoolSnapshot, Reservation, Scrape};
use switchyard_epp::scheduling::{RequestView, Scheduler, SchedulerConfig};
use switchyard_sim::engine::Micros;
use switchyard_sim::fleet::{Admit, Arrival, ReplicaView, RequestResult, Router};

use super::SCRAPE_US;
use crate::error::{Error, Result};

/// The model name requests without an adapter target.
pub const BASE_MODEL: &str = "base";

/// Added to replica `i`'s scraped KV usage, times `i`, so that exactly equal replicas are
/// told apart by index rather than by the picker's unseeded random tie-break, and every run
/// repeats exactly. 100× below one KV block of difference, it never outweighs a real one.
const TIE_NUDGE: f64 = 1e-8;

/// The EPP's scheduler as a fleet router.
pub struct EppRouter {
    scheduler: Scheduler,
    snapshot: PoolSnapshot,
    /// Fleet index of each snapshot endpoint (the snapshot sorts endpoints by name).
    replica_of: HashMap<SocketAddr, usize>,
    /// Snapshot position of each fleet replica.
    position_of: Vec<usize>,
    window: Option<Micros>,
    reservations: HashMap<u64, Reservation>,
    epoch: Instant,
    text: String,
}

impl EppRouter {
    /// The scheduler configured by `yaml` (an EndpointPickerConfig), or the shipped default
    /// profile when `None`, over `replicas` endpoints.
    pub fn new(policy: &str, yaml: Option<&str>, replicas: usize) -> Result<Self> {
        let config = match yaml {
            Some(text) => SchedulerConfig::from_yaml(text)
                .map_err(|e| Error::Policy(policy.into(), e.to_string()))?,
            None => SchedulerConfig::default(),
        };
        let address = |i: usize| {
            let [hi, lo] = (i as u16).to_be_bytes();
            SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, hi, lo)), 8000)
        };
        let endpoints: Vec<Endpoint> = (0..replicas)
            .map(|i| {
                let name = format!("sim-{i:04}");
                Endpoint::new(&format!("{name}-rank-0"), &name, address(i))
            })
            .collect();
        let replica_of: HashMap<SocketAddr, usize> =
            (0..replicas).map(|i| (address(i), i)).collect();
        let mut position_of = vec![0; replicas];
        for (pos, e) in endpoints.iter().enumerate() {
            if let Some(&i) = replica_of.get(&e.address) {
                position_of[i] = pos;
            }
        }
        Ok(Self {
            scheduler: Scheduler::new(config),
            snapshot: PoolSnapshot {
                endpoints,
                ..PoolSnapshot::default()
            },
            replica_of,
            position_of,
            window: None,
            reservations: HashMap::new(),
            epoch: Instant::now(),
            text: String::new(),
        })
    }

    fn instant(&self, now: Micros) -> Instant {
        self.epoch + Duration::from_micros(now)
    }

    /// Publishes the fleet's load numbers as a scrape, once per window. The fleet refreshes
    /// its views at the first event of each window, before the router runs, so no request
    /// goes out between the fleet's snapshot and this one: the dispatch mark is exact.
    fn refresh(&mut self, now: Micros, replicas: &[ReplicaView<'_>]) {
        let window = now / SCRAPE_US;
        if self.window == Some(window) {
            return;
        }
        self.window = Some(window);
        let at = self.instant(now);
        let endpoints = &self.snapshot.endpoints;
        let scrapes: Vec<Scrape<'_>> = replicas
            .iter()
            .filter_map(|r| {
                let endpoint = endpoints.get(*self.position_of.get(r.index)?)?;
                let engine = r.engine();
                let names =
                    |v: Vec<&str>| -> Arc<[Box<str>]> { v.into_iter().map(Box::from).collect() };
                Some(Scrape {
                    endpoint: &endpoint.name,
                    metrics: EndpointMetrics {
                        waiting_queue: r.load.waiting as u32,
                        running: r.load.running as u32,
                        kv_cache_usage: (r.load.kv_usage + TIE_NUDGE * r.index as f64).min(1.0),
                        active_loras: names(engine.running_loras()),
                        waiting_loras: names(engine.waiting_loras()),
                        max_loras: Some(engine.config().max_loras as u32),
                        cache_block_size: Some(engine.config().block_size as u32),
                        cache_num_blocks: Some(engine.config().num_gpu_blocks as u64),
                    },
                    scraped_at: at,
                    dispatch_mark: endpoint.load.mark_scrape_start(),
                })
            })
            .collect();
        self.snapshot = self.snapshot.with_metrics(scrapes);
    }

    /// The scheduler's pick for arrival `id`, reserving load on it until it finishes.
    fn pick_at(
        &mut self,
        now: Micros,
        id: u64,
        arrival: &Arrival,
        replicas: &[ReplicaView<'_>],
    ) -> Admit {
        self.refresh(now, replicas);
        // The prompt as text: four characters per token, as the EPP estimates tokens.
        self.text.clear();
        if let Some(tokens) = &arrival.tokens {
            self.text.reserve(tokens.len() * 4);
            for t in tokens.iter() {
                let _ = write!(self.text, "{:04x}", t & 0xffff);
            }
        }
        let request = RequestView {
            target_model: arrival.lora.as_deref().unwrap_or(BASE_MODEL),
            prompt: self.text.as_bytes(),
            cache_salt: "",
            subset: None,
            test_endpoint_selection: None,
            now: self.instant(now),
        };
        match self.scheduler.pick(&self.snapshot, &request) {
            Ok(pick) => {
                let replica = pick
                    .endpoints
                    .first()
                    .and_then(|a| self.replica_of.get(a))
                    .copied()
                    .unwrap_or(0);
                self.reservations.insert(id, pick.reservation);
                Admit::To(replica)
            }
            Err(no) => Admit::Refuse(no.http_status()),
        }
    }
}

impl Router for EppRouter {
    fn pick(&mut self, arrival: &Arrival, replicas: &[ReplicaView<'_>]) -> usize {
        let id = u64::MAX - self.reservations.len() as u64;
        match self.pick_at(arrival.at, id, arrival, replicas) {
            Admit::To(i) => i,
            _ => 0,
        }
    }

    fn admit(
        &mut self,
        now: Micros,
        id: u64,
        arrival: &Arrival,
        replicas: &[ReplicaView<'_>],
    ) -> Admit {
        self.pick_at(now, id, arrival, replicas)
    }

    fn on_finish(&mut self, result: &RequestResult) {
        self.reservations.remove(&result.index);
    }
}
