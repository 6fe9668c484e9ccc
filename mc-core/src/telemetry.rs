//! The metric catalogue: every metric Maestro Conductor emits, with its kind, unit,
//! labels, help text and (for histograms) the bucket bounds an exporter should use.
//!
//! The crates that emit a metric take its name from here; `mc serve` describes every
//! entry to its Prometheus exporter (the `# HELP` lines) and sets the histogram
//! buckets from it; and the workspace's dashboard test checks every query of the
//! Grafana dashboards (`deploy/grafana/`) and of the alert rules
//! (`deploy/prometheus/mc-rules.yaml`) against it — a metric or label that is not
//! here, or a `le` bound that is not a bucket, fails the build instead of drawing an
//! empty panel.
//!
//! Labels never carry a tenant, an execution id or any other unbounded value: one
//! series per label combination must stay cheap for Prometheus.
//!
//! ```
//! use mc_core::telemetry::{self, MetricKind};
//!
//! let latency = telemetry::by_name("mc_action_latency_ms").unwrap();
//! assert_eq!(latency.kind, MetricKind::Histogram);
//! assert!(latency.buckets.contains(&800.0)); // the SLO threshold is a bucket bound
//! assert_eq!(latency.labels, ["action", "outcome"]);
//! ```

/// What kind of series a metric is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// Only ever increases; exported with the name as given (ends in `_total`).
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// Observations in buckets; exported as `NAME_bucket{le=…}`, `NAME_sum` and
    /// `NAME_count`.
    Histogram,
}

/// One metric of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricSpec {
    /// The exported name.
    pub name: &'static str,
    /// Counter, gauge or histogram.
    pub kind: MetricKind,
    /// The unit, as a word (`milliseconds`, `count`).
    pub unit: &'static str,
    /// The label names every series carries, in a fixed order.
    pub labels: &'static [&'static str],
    /// One sentence for the exporter's `# HELP` line.
    pub help: &'static str,
    /// Histogram bucket upper bounds (ascending); empty for counters and gauges.
    pub buckets: &'static [f64],
}

/// `mc_action_latency_ms`: round trip of a console action (spec §6, SLO
/// `action_latency`: p95 < 800 ms). Labels: `action` (`cancel` | `retry` | `replay`),
/// `outcome` (`accepted`, `replayed` or the refusal's error code).
pub const ACTION_LATENCY: MetricSpec = MetricSpec {
    name: "mc_action_latency_ms",
    kind: MetricKind::Histogram,
    unit: "milliseconds",
    labels: &["action", "outcome"],
    help: "Round trip of a console action (cancel, retry, replay) by outcome, in milliseconds.",
    // 800 ms is the SLO threshold (spec §5.8); the alert rules select le="800".
    buckets: &[
        5.0, 10.0, 25.0, 50.0, 100.0, 200.0, 400.0, 800.0, 1600.0, 5000.0,
    ],
};

/// `mc_action_rollbacks_total`: times the rollback watch turned a tenant's console
/// writes off (MC-SRE-1161).
pub const ACTION_ROLLBACKS: MetricSpec = MetricSpec {
    name: "mc_action_rollbacks_total",
    kind: MetricKind::Counter,
    unit: "count",
    labels: &[],
    help: "Automatic rollbacks: console writes turned off for a tenant after bad retries or replays.",
    buckets: &[],
};

/// `mc_evidence_pack_ms`: time to build one disclosure pack (spec §1 A2: p95 < 45 s).
pub const EVIDENCE_PACK: MetricSpec = MetricSpec {
    name: "mc_evidence_pack_ms",
    kind: MetricKind::Histogram,
    unit: "milliseconds",
    labels: &[],
    help: "Time to build one evidence pack (fetch, redact, hash, compress, sign), in milliseconds.",
    // 45,000 ms is the pack target (spec §1 A2).
    buckets: &[1000.0, 5000.0, 15000.0, 30000.0, 45000.0, 60000.0, 120000.0],
};

/// `mc_drift_findings_total`: drift findings that were not open at the detector's
/// previous scan (new drift, or drift that came back), by `severity` (`critical` |
/// `warning`).
pub const DRIFT_FINDINGS: MetricSpec = MetricSpec {
    name: "mc_drift_findings_total",
    kind: MetricKind::Counter,
    unit: "count",
    labels: &["severity"],
    help: "Config drift findings that appeared since the detector's previous scan, by severity.",
    buckets: &[],
};

/// `mc_drift_last_scan_timestamp_seconds`: when the detector last completed a
/// comparison (Unix seconds); the "drift detection stopped" alert watches it.
pub const DRIFT_LAST_SCAN: MetricSpec = MetricSpec {
    name: "mc_drift_last_scan_timestamp_seconds",
    kind: MetricKind::Gauge,
    unit: "seconds",
    labels: &[],
    help: "Unix time of the drift detector's last completed comparison.",
    buckets: &[],
};

/// `mc_drift_open_findings`: findings open after the last scan, by `severity` (the
/// "drift > 0 critical" alert).
pub const DRIFT_OPEN: MetricSpec = MetricSpec {
    name: "mc_drift_open_findings",
    kind: MetricKind::Gauge,
    unit: "count",
    labels: &["severity"],
    help: "Config drift findings open after the last scan, by severity.",
    buckets: &[],
};

/// `mc_egress_block_total`: calls the egress policy blocked (or, in shadow mode,
/// would have blocked), by `mode` (`enforce` | `shadow`) and `reason` (the deny
/// reason's code).
pub const EGRESS_BLOCKS: MetricSpec = MetricSpec {
    name: "mc_egress_block_total",
    kind: MetricKind::Counter,
    unit: "count",
    labels: &["mode", "reason"],
    help: "Outbound calls the egress policy blocked (enforce) or would have blocked (shadow), by reason.",
    buckets: &[],
};

/// `mc_egress_tunnels_open`: tunnels and relayed requests the egress proxy holds open.
pub const EGRESS_TUNNELS_OPEN: MetricSpec = MetricSpec {
    name: "mc_egress_tunnels_open",
    kind: MetricKind::Gauge,
    unit: "count",
    labels: &[],
    help: "Tunnels and relayed requests the egress proxy holds open.",
    buckets: &[],
};

/// `mc_egress_tunnels_closed_total`: tunnels and relayed requests closed, by `reason`
/// (`done`: both sides finished; `idle`; `lifetime`: the maximum lifetime; `revoked`:
/// the task's credential was revoked).
pub const EGRESS_TUNNELS_CLOSED: MetricSpec = MetricSpec {
    name: "mc_egress_tunnels_closed_total",
    kind: MetricKind::Counter,
    unit: "count",
    labels: &["reason"],
    help: "Tunnels and relayed requests the egress proxy closed, by reason (done, idle, lifetime, revoked).",
    buckets: &[],
};

/// `mc_lifecycle_deleted_total`: objects the TTL janitor deleted, by `kind` (`logs`,
/// …; the kinds of the retention rules).
pub const LIFECYCLE_DELETED: MetricSpec = MetricSpec {
    name: "mc_lifecycle_deleted_total",
    kind: MetricKind::Counter,
    unit: "count",
    labels: &["kind"],
    help: "Objects the TTL janitor deleted after their retention, by kind.",
    buckets: &[],
};

/// Every metric Maestro Conductor emits.
pub const METRICS: &[MetricSpec] = &[
    ACTION_LATENCY,
    ACTION_ROLLBACKS,
    EVIDENCE_PACK,
    DRIFT_FINDINGS,
    DRIFT_OPEN,
    DRIFT_LAST_SCAN,
    EGRESS_BLOCKS,
    EGRESS_TUNNELS_OPEN,
    EGRESS_TUNNELS_CLOSED,
    LIFECYCLE_DELETED,
];

/// The catalogue entry named `name` (the metric's own name, not a histogram's
/// `_bucket`/`_sum`/`_count` series).
pub fn by_name(name: &str) -> Option<&'static MetricSpec> {
    METRICS.iter().find(|m| m.name == name)
}

/// The catalogue entry behind an exported series name, and which part of it the
/// series is: `mc_evidence_pack_ms_bucket` is [`EVIDENCE_PACK`]'s
/// [`Series::Bucket`]; a counter or gauge is its own [`Series::Value`]. `None` for a
/// name that is not ours, or a histogram's bare name (Prometheus exports none).
pub fn series(name: &str) -> Option<(&'static MetricSpec, Series)> {
    if let Some(m) = by_name(name) {
        return (m.kind != MetricKind::Histogram).then_some((m, Series::Value));
    }
    for (suffix, part) in [
        ("_bucket", Series::Bucket),
        ("_sum", Series::Sum),
        ("_count", Series::Count),
    ] {
        if let Some(base) = name.strip_suffix(suffix)
            && let Some(m) = by_name(base)
            && m.kind == MetricKind::Histogram
        {
            return Some((m, part));
        }
    }
    None
}

/// Which exported series of a metric a name denotes (see [`series`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Series {
    /// A counter's or gauge's value.
    Value,
    /// A histogram's cumulative buckets (carry the extra label `le`).
    Bucket,
    /// A histogram's sum of observations.
    Sum,
    /// A histogram's count of observations.
    Count,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_prometheus_names_and_counters_end_in_total() {
        let mut seen = std::collections::HashSet::new();
        for m in METRICS {
            assert!(seen.insert(m.name), "{} listed twice", m.name);
            assert!(m.name.starts_with("mc_"), "{}", m.name);
            assert!(
                m.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{}",
                m.name
            );
            assert_eq!(
                m.kind == MetricKind::Counter,
                m.name.ends_with("_total"),
                "{}: counters and only counters end in _total",
                m.name
            );
            assert!(!m.help.is_empty() && m.help.ends_with('.'), "{}", m.name);
            for l in m.labels {
                assert!(!["le", "tenant", "execution", "job", "instance"].contains(l));
            }
        }
    }

    #[test]
    fn histograms_have_ascending_buckets_and_the_others_none() {
        for m in METRICS {
            match m.kind {
                MetricKind::Histogram => {
                    assert!(!m.buckets.is_empty(), "{}", m.name);
                    assert!(m.buckets.windows(2).all(|w| w[0] < w[1]), "{}", m.name);
                }
                _ => assert!(m.buckets.is_empty(), "{}", m.name),
            }
        }
        assert!(ACTION_LATENCY.buckets.contains(&800.0));
        assert!(EVIDENCE_PACK.buckets.contains(&45000.0));
    }

    #[test]
    fn series_names_resolve_to_their_metric() {
        assert_eq!(
            series("mc_evidence_pack_ms_bucket"),
            Some((&EVIDENCE_PACK, Series::Bucket))
        );
        assert_eq!(
            series("mc_action_latency_ms_count").map(|s| s.1),
            Some(Series::Count)
        );
        assert_eq!(
            series("mc_egress_block_total"),
            Some((&EGRESS_BLOCKS, Series::Value))
        );
        assert_eq!(series("mc_evidence_pack_ms"), None);
        assert_eq!(series("mc_egress_block_total_count"), None);
        assert_eq!(series("mc_drift_findings"), None);
        assert_eq!(series("up"), None);
    }
}
