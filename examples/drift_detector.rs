//! A host running the drift detector on the in-memory defaults: someone scales a
//! Deployment by hand; the scan finds it and the PR bot proposes the patch.
//!
//! `cargo run -p mc-examples --example drift_detector`

use std::collections::BTreeMap;
use std::sync::Arc;

use mc_core::*;
use mc_drift::{DetectorParts, DiffRules, DriftDetector, from_kube_yaml};

const MANIFEST: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: prod
spec:
  replicas: 3
";

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let desired = from_kube_yaml("deploy/web.yaml", MANIFEST)?;
    let files = BTreeMap::from([("deploy/web.yaml".to_string(), MANIFEST.to_string())]);
    let source = Arc::new(MemoryDriftSource::new("kube:prod"));
    let mut live = desired[0].object.clone();
    live.body["spec"]["replicas"] = 5.into(); // kubectl scale, by hand
    live.body["status"] = serde_json::json!({"readyReplicas": 5});
    source.set(vec![live]);

    let tenant = TenantId::new("acme")?;
    let flags = Arc::new(MemoryFlagStore::new());
    flags.set(&tenant, Flag::DriftPrBotEnabled, true).await?;
    let proposer = Arc::new(MemoryChangeProposer::new());
    let detector = DriftDetector::new(
        tenant,
        "prod",
        DetectorParts {
            source,
            pager: Arc::new(MemoryPager::new()),
            proposer: proposer.clone(),
            flags,
            clock: Arc::new(SystemClock),
        },
        DiffRules::default(),
    );
    let report = detector.scan(&desired, &files).await?;
    for f in &report.findings {
        println!("{} {} [{}]", f.severity.as_str(), f.object, f.fingerprint);
    }
    for (p, r) in proposer.proposals() {
        println!(
            "\nproposal #{} {} {:?}\n{}",
            r.number, p.title, p.labels, p.body
        );
    }
    Ok(())
}
