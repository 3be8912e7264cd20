//! `cargo xtask up --smoke`: a mixed sample load through the running gateway — every model
//! name the pools serve (base models and adapters), every InferenceObjective and none,
//! chat and text completions, streamed and not — then a table of where each model's requests
//! went and how they fared.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use switchyard_local::client::HttpClient;
use switchyard_local::running::RunningStack;

use super::banner::OBJECTIVE_HEADER;

/// Requests in flight at once.
const CONCURRENCY: usize = 8;
/// The simulator names the replica that answered in this response header.
const POD_HEADER: &str = "x-inference-pod";
/// Tokens asked for per request: enough to stream several chunks, few enough to be quick.
const MAX_TOKENS: u32 = 16;

/// One request of the load.
#[derive(Clone, Debug)]
struct Planned {
    model: String,
    objective: Option<String>,
    stream: bool,
    chat: bool,
}

/// How one request went.
#[derive(Clone, Debug)]
struct Outcome {
    model: String,
    objective: Option<String>,
    /// The HTTP status, or 0 when no response arrived.
    status: u16,
    /// The answering replica, from [`POD_HEADER`].
    replica: Option<String>,
    latency: Duration,
    /// Why the request counts as failed, if it does.
    problem: Option<String>,
}

/// Every outcome and the replica → pool map to group them by.
pub struct Report {
    outcomes: Vec<Outcome>,
    pool_of_replica: HashMap<String, String>,
}

/// Sends `requests` requests through `running`'s gateway, [`CONCURRENCY`] at a time.
pub async fn run(running: &RunningStack, requests: usize) -> Result<Report> {
    let plan = plan_load(running, requests);
    println!(
        "\nsmoke: {} requests, {CONCURRENCY} at a time, through {}",
        plan.len(),
        running.url("/")
    );
    let plan = Arc::new(plan);
    let next = Arc::new(AtomicUsize::new(0));
    let client = HttpClient::new();
    let base = running.url("/");
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENCY {
        let (plan, next, client, base) = (plan.clone(), next.clone(), client.clone(), base.clone());
        workers.spawn(async move {
            let mut outcomes = Vec::new();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(request) = plan.get(index) else {
                    break;
                };
                outcomes.push(send(&client, &base, request).await);
            }
            outcomes
        });
    }
    let mut outcomes = Vec::new();
    while let Some(done) = workers.join_next().await {
        outcomes.extend(done.context("a smoke worker panicked")?);
    }
    let mut pool_of_replica = HashMap::new();
    for pool in &running.stack.plan.pools {
        for sim in &pool.simulators {
            // switchyard-sim names its engines `<name prefix>-<rank>`.
            for rank in 0..sim.endpoints.len() {
                pool_of_replica.insert(format!("{}-{rank}", sim.name), pool.pool.name.clone());
            }
        }
    }
    Ok(Report {
        outcomes,
        pool_of_replica,
    })
}

/// Round-robin over models, then objectives (and no objective), alternating chat and text
/// completions, every third request streamed.
fn plan_load(running: &RunningStack, requests: usize) -> Vec<Planned> {
    let stack = &running.stack;
    let mut models: Vec<String> = Vec::new();
    let mut objectives: Vec<Option<String>> = Vec::new();
    for pool in &stack.plan.pools {
        for model in &pool.model_names {
            if !models.contains(model) {
                models.push(model.clone());
            }
        }
        for objective in stack.manifests.objectives_of(&pool.pool) {
            let name = objective.metadata.name.clone();
            if name.is_some() && !objectives.contains(&name) {
                objectives.push(name);
            }
        }
    }
    objectives.push(None);
    if models.is_empty() {
        return Vec::new();
    }
    (0..requests)
        .map(|i| Planned {
            model: models[i % models.len()].clone(),
            objective: objectives[(i / models.len()) % objectives.len()].clone(),
            stream: i % 3 == 0,
            chat: i % 2 == 0,
        })
        .collect()
}

async fn send(client: &HttpClient, base: &str, request: &Planned) -> Outcome {
    let (path, body) = if request.chat {
        let body = serde_json::json!({
            "model": request.model,
            "messages": [{"role": "user", "content": "Say something about switchyards."}],
            "max_tokens": MAX_TOKENS,
            "stream": request.stream,
        });
        ("v1/chat/completions", body)
    } else {
        let body = serde_json::json!({
            "model": request.model,
            "prompt": "A switchyard is",
            "max_tokens": MAX_TOKENS,
            "stream": request.stream,
        });
        ("v1/completions", body)
    };
    let mut headers = vec![("content-type", "application/json")];
    if let Some(objective) = &request.objective {
        headers.push((OBJECTIVE_HEADER, objective.as_str()));
    }
    let started = Instant::now();
    let response = client
        .post(&format!("{base}{path}"), &headers, body.to_string())
        .await;
    let latency = started.elapsed();
    let mut outcome = Outcome {
        model: request.model.clone(),
        objective: request.objective.clone(),
        status: 0,
        replica: None,
        latency,
        problem: None,
    };
    match response {
        Err(err) => outcome.problem = Some(err.to_string()),
        Ok(response) => {
            outcome.status = response.status.as_u16();
            outcome.replica = response.header(POD_HEADER).map(str::to_owned);
            let text = response.text();
            outcome.problem = if !response.status.is_success() {
                Some(format!("{}: {}", response.status, text.trim()))
            } else if request.stream && !text.contains("data: [DONE]") {
                Some("the stream did not end with `data: [DONE]`".to_owned())
            } else if outcome.replica.is_none() {
                Some(format!("no {POD_HEADER} header: not answered by a replica"))
            } else {
                None
            };
        }
    }
    outcome
}

// === impl Report ===

impl Report {
    pub fn total(&self) -> usize {
        self.outcomes.len()
    }

    pub fn failed(&self) -> usize {
        self.outcomes.iter().filter(|o| o.problem.is_some()).count()
    }

    pub fn all_succeeded(&self) -> bool {
        self.failed() == 0 && !self.outcomes.is_empty()
    }

    /// The table: one row per model and pool, then one per objective, then the first few
    /// failures.
    pub fn table(&self) -> String {
        let mut rows: BTreeMap<(String, String), Vec<&Outcome>> = BTreeMap::new();
        for outcome in &self.outcomes {
            let pool = outcome
                .replica
                .as_ref()
                .and_then(|r| self.pool_of_replica.get(r))
                .cloned()
                .unwrap_or_else(|| "-".to_owned());
            rows.entry((outcome.model.clone(), pool))
                .or_default()
                .push(outcome);
        }
        let mut out = format!(
            "{:<34} {:<22} {:<34} {:<12} {:>7} {:>7}\n",
            "model", "pool", "replicas (requests)", "status", "p50", "p99"
        );
        for ((model, pool), outcomes) in &rows {
            out.push_str(&format!(
                "{:<34} {:<22} {:<34} {:<12} {:>7} {:>7}\n",
                model,
                pool,
                replica_counts(outcomes),
                status_counts(outcomes),
                millis(percentile(outcomes, 0.50)),
                millis(percentile(outcomes, 0.99)),
            ));
        }
        let mut by_objective: BTreeMap<String, Vec<&Outcome>> = BTreeMap::new();
        for outcome in &self.outcomes {
            let name = outcome.objective.as_deref().unwrap_or("(none)").to_owned();
            by_objective.entry(name).or_default().push(outcome);
        }
        out.push_str(&format!(
            "\n{:<34} {:<12} {:>7} {:>7}\n",
            "objective", "status", "p50", "p99"
        ));
        for (objective, outcomes) in &by_objective {
            out.push_str(&format!(
                "{:<34} {:<12} {:>7} {:>7}\n",
                objective,
                status_counts(outcomes),
                millis(percentile(outcomes, 0.50)),
                millis(percentile(outcomes, 0.99)),
            ));
        }
        let failures: Vec<String> = self
            .outcomes
            .iter()
            .filter_map(|o| o.problem.as_ref().map(|p| format!("  {}: {p}", o.model)))
            .take(5)
            .collect();
        if !failures.is_empty() {
            out.push_str(&format!("\nfirst failures:\n{}\n", failures.join("\n")));
        }
        out
    }
}

/// `name×count` per replica, with the pool prefix shortened to `…-<pod>-<rank>`.
fn replica_counts(outcomes: &[&Outcome]) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for outcome in outcomes {
        *counts
            .entry(outcome.replica.as_deref().unwrap_or("none"))
            .or_default() += 1;
    }
    counts
        .iter()
        .map(|(replica, n)| {
            // `vllm-llama3-8b-0-0` → `0-0`: the pool column already names the pool.
            let short = replica
                .rsplitn(3, '-')
                .take(2)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("-");
            format!("{short}×{n}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn status_counts(outcomes: &[&Outcome]) -> String {
    let mut counts: BTreeMap<u16, usize> = BTreeMap::new();
    for outcome in outcomes {
        *counts.entry(outcome.status).or_default() += 1;
    }
    counts
        .iter()
        .map(|(status, n)| {
            if *status == 0 {
                format!("error×{n}")
            } else {
                format!("{status}×{n}")
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The nearest-rank percentile of the latencies.
fn percentile(outcomes: &[&Outcome], quantile: f64) -> Duration {
    let mut latencies: Vec<Duration> = outcomes.iter().map(|o| o.latency).collect();
    latencies.sort_unstable();
    if latencies.is_empty() {
        return Duration::ZERO;
    }
    // Nearest rank: the smallest value with at least `quantile` of the values at or below it.
    let rank = (quantile * latencies.len() as f64).ceil() as usize;
    latencies[rank.clamp(1, latencies.len()) - 1]
}

fn millis(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(status: u16, replica: Option<&str>, millis: u64) -> Outcome {
        Outcome {
            model: "m".to_owned(),
            objective: None,
            status,
            replica: replica.map(str::to_owned),
            latency: Duration::from_millis(millis),
            problem: (status != 200).then(|| format!("{status}")),
        }
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let outcomes: Vec<Outcome> = (1..=100).map(|ms| outcome(200, None, ms)).collect();
        let refs: Vec<&Outcome> = outcomes.iter().collect();
        assert_eq!(percentile(&refs, 0.50), Duration::from_millis(50));
        assert_eq!(percentile(&refs, 0.99), Duration::from_millis(99));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }

    #[test]
    fn counts_name_replicas_and_statuses() {
        let outcomes = [
            outcome(200, Some("pool-a-0-0"), 1),
            outcome(200, Some("pool-a-0-0"), 1),
            outcome(503, None, 1),
            outcome(0, Some("pool-a-1-0"), 1),
        ];
        let refs: Vec<&Outcome> = outcomes.iter().collect();
        assert_eq!(replica_counts(&refs), "none×1 0-0×2 1-0×1");
        assert_eq!(status_counts(&refs), "error×1 200×2 503×1");
    }

    #[test]
    fn one_failure_fails_the_smoke() {
        let report = Report {
            outcomes: vec![outcome(200, Some("p-0-0"), 1), outcome(429, None, 1)],
            pool_of_replica: HashMap::from([("p-0-0".to_owned(), "p".to_owned())]),
        };
        assert!(!report.all_succeeded());
        assert_eq!(report.failed(), 1);
        assert!(report.table().contains("first failures"));
        let empty = Report {
            outcomes: Vec::new(),
            pool_of_replica: HashMap::new(),
        };
        assert!(!empty.all_succeeded(), "no requests is not a success");
    }
}
