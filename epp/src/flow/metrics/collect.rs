//! [`FlowMetrics`] as a Prometheus collector: read at scrape time from the
//! actor's atomics, so registering costs the request path nothing.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

use super::{FlowMetrics, Histogram};
use crate::datastore::Datastore;
use crate::flow::Outcome;

/// Encodes the `flow_control_*` families for one pool.
#[derive(Debug)]
pub struct FlowCollector {
    metrics: Arc<FlowMetrics>,
    datastore: Arc<Datastore>,
}

impl FlowCollector {
    /// A collector over `metrics`, labelled with the datastore's pool name.
    pub fn new(metrics: Arc<FlowMetrics>, datastore: Arc<Datastore>) -> Self {
        Self { metrics, datastore }
    }
}

/// Per-bucket (non-cumulative) counts, as the encoder wants them.
fn buckets(histogram: &Histogram) -> (Vec<(f64, u64)>, u64) {
    let (cumulative, total) = histogram.cumulative();
    let mut previous = 0;
    let mut out: Vec<(f64, u64)> = histogram
        .bounds()
        .iter()
        .zip(cumulative)
        .map(|(bound, running)| {
            let count = running - previous;
            previous = running;
            (*bound, count)
        })
        .collect();
    out.push((f64::INFINITY, total - previous));
    (out, total)
}

impl Collector for FlowCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let m = &self.metrics;
        let pool = self.datastore.load().pool_name.to_string();

        let mut family = encoder.encode_descriptor(
            "flow_control_requests",
            "Requests that left flow control, by outcome",
            None,
            MetricType::Counter,
        )?;
        for outcome in Outcome::ALL {
            family
                .encode_family(&[("outcome", outcome.label())])?
                .encode_counter::<NoLabelSet, _, u64>(&m.count(outcome), None)?;
        }

        let mut family = encoder.encode_descriptor(
            "inference_extension_flow_control_request_queue_duration_seconds",
            "Time from enqueue to outcome, by outcome",
            None,
            MetricType::Histogram,
        )?;
        for outcome in Outcome::ALL {
            let histogram = &m.queue_duration[outcome.index()];
            let (per_bucket, count) = buckets(histogram);
            family
                .encode_family(&[
                    ("outcome", outcome.label()),
                    ("inference_pool", pool.as_str()),
                ])?
                .encode_histogram::<NoLabelSet>(
                    histogram.sum_seconds(),
                    count,
                    &per_bucket,
                    None,
                )?;
        }

        let flows = m.flows.load();
        for (name, help, bytes) in [
            (
                "inference_extension_flow_control_queue_size",
                "Requests queued, per flow",
                false,
            ),
            (
                "inference_extension_flow_control_queue_bytes",
                "Bytes queued, per flow",
                true,
            ),
        ] {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for flow in flows.iter() {
                let priority = flow.priority.to_string();
                let value = if bytes { flow.bytes } else { flow.requests };
                family
                    .encode_family(&[
                        ("fairness_id", &*flow.fairness_id),
                        ("priority", priority.as_str()),
                        ("inference_pool", pool.as_str()),
                    ])?
                    .encode_gauge(&value)?;
            }
        }

        let (per_bucket, count) = buckets(&m.dispatch_cycle);
        encoder
            .encode_descriptor(
                "inference_extension_flow_control_dispatch_cycle_duration_seconds",
                "Duration of one dispatch cycle of the flow-control actor",
                None,
                MetricType::Histogram,
            )?
            .encode_histogram::<NoLabelSet>(
                m.dispatch_cycle.sum_seconds(),
                count,
                &per_bucket,
                None,
            )?;

        encoder
            .encode_descriptor(
                "inference_extension_flow_control_pool_saturation",
                "Pool saturation the detector last reported (1 or more is saturated)",
                None,
                MetricType::Gauge,
            )?
            .encode_family(&[("inference_pool", pool.as_str())])?
            .encode_gauge(&m.pool_saturation())?;

        encoder
            .encode_descriptor(
                "flow_control_stale_endpoints",
                "Ready endpoints whose metrics were stale at the last observation",
                None,
                MetricType::Gauge,
            )?
            .encode_gauge(&m.stale_endpoints.load(std::sync::atomic::Ordering::Relaxed))?;

        encoder
            .encode_descriptor(
                "switchyard_epp_flow_control_degraded",
                "1 while flow control dispatches on stale endpoint metrics (every endpoint \
                 stale past the grace period), else 0",
                None,
                MetricType::Gauge,
            )?
            .encode_gauge(&m.degraded.load(std::sync::atomic::Ordering::Relaxed))?;
        Ok(())
    }
}
