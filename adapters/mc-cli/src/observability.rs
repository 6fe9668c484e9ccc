//! The Prometheus exporter of `mc serve`: `/metrics`, with histogram buckets that
//! contain the SLO thresholds the alert rules use (`deploy/prometheus/mc-rules.yaml`):
//! 800 ms for actions, 45 s for evidence packs.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Buckets of `mc_action_latency_ms` (ms); 800 is the SLO threshold (spec §5.8).
pub const ACTION_BUCKETS: &[f64] = &[
    5.0, 10.0, 25.0, 50.0, 100.0, 200.0, 400.0, 800.0, 1600.0, 5000.0,
];

/// Buckets of `mc_evidence_pack_ms` (ms); 45,000 is the pack SLO (spec §1 A2).
pub const PACK_BUCKETS: &[f64] = &[1000.0, 5000.0, 15000.0, 30000.0, 45000.0, 60000.0, 120000.0];

/// Installs the process-wide recorder; `None` when one is already installed.
pub fn install() -> Option<PrometheusHandle> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full("mc_action_latency_ms".into()), ACTION_BUCKETS)
        .ok()?
        .set_buckets_for_metric(Matcher::Full("mc_evidence_pack_ms".into()), PACK_BUCKETS)
        .ok()?
        .install_recorder()
        .ok()
}
