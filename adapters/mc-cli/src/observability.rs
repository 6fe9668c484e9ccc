//! The Prometheus exporter of `mc serve`: `/metrics`, with every metric of
//! [`mc_core::telemetry::METRICS`] described (`# HELP` lines) and the histograms'
//! buckets taken from the catalogue, so that they contain the SLO thresholds the
//! alert rules select (`deploy/prometheus/mc-rules.yaml`): 800 ms for actions, 45 s
//! for evidence packs.

use mc_core::telemetry::{METRICS, MetricKind};
use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Installs the process-wide recorder and describes the catalogue's metrics;
/// `None` when a recorder is already installed.
pub fn install() -> Option<PrometheusHandle> {
    let mut builder = PrometheusBuilder::new();
    for m in METRICS.iter().filter(|m| m.kind == MetricKind::Histogram) {
        builder = builder
            .set_buckets_for_metric(Matcher::Full(m.name.into()), m.buckets)
            .ok()?;
    }
    let handle = builder.install_recorder().ok()?;
    for m in METRICS {
        let unit = match m.unit {
            "milliseconds" => Unit::Milliseconds,
            "seconds" => Unit::Seconds,
            _ => Unit::Count,
        };
        match m.kind {
            MetricKind::Counter => describe_counter!(m.name, unit, m.help),
            MetricKind::Gauge => describe_gauge!(m.name, unit, m.help),
            MetricKind::Histogram => describe_histogram!(m.name, unit, m.help),
        }
    }
    Some(handle)
}

/// `GET /metrics`: the recorder's Prometheus text format.
pub fn metrics_router<S: Clone + Send + Sync + 'static>(
    handle: PrometheusHandle,
) -> axum::Router<S> {
    axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || std::future::ready(handle.render())),
    )
}

/// Serves `/metrics` (Prometheus text format) on `addr` for a long-running command
/// (`mc drift watch`, `mc egress proxy`); must run inside a tokio runtime. Returns
/// the address bound (`addr` may ask for port 0).
///
/// # Errors
/// A recorder is already installed in this process, or `addr` cannot be bound.
pub async fn serve_metrics(addr: std::net::SocketAddr) -> anyhow::Result<std::net::SocketAddr> {
    let handle =
        install().ok_or_else(|| anyhow::anyhow!("a metrics recorder is already installed"))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("binding --metrics-listen {addr}: {e}"))?;
    let bound = listener.local_addr()?;
    let app = metrics_router(handle);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("metrics endpoint stopped: {e}");
        }
    });
    Ok(bound)
}
