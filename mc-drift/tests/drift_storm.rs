//! Spec §8 "drift storm": inject misconfigurations, the detector pages on the critical
//! ones, the bot proposes one PR per drift (labelled by risk, never twice), a human
//! merges one — and the merged patch makes that drift disappear.

use std::collections::BTreeMap;
use std::sync::Arc;

use mc_core::{
    Flag, FlagStore, LiveObject, MemoryChangeProposer, MemoryDriftSource, MemoryFlagStore,
    MemoryPager, SystemClock, TenantId,
};
use mc_drift::{
    Change, DetectorParts, DiffRules, DriftDetector, LABEL_AUTO, LABEL_REVIEW, Severity,
    from_kube_yaml,
};
use serde_json::json;

const FILE: &str = "deploy/prod.yaml";
const MANIFESTS: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: prod
spec:
  replicas: 3
  template:
    spec:
      containers:
        - name: app
          image: registry.example.com/web:1.4.2
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: web-egress
  namespace: prod
spec:
  podSelector: {}
  policyTypes: [Egress]
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: prod
spec:
  ports:
    - name: http
      port: 80
";

fn live(objs: &[mc_drift::DesiredObject]) -> Vec<LiveObject> {
    objs.iter().map(|d| d.object.clone()).collect()
}

fn with(mut o: LiveObject, f: impl FnOnce(&mut serde_json::Value)) -> LiveObject {
    f(&mut o.body);
    o
}

#[tokio::test]
async fn a_drift_storm_is_paged_proposed_once_and_merging_fixes_it() {
    let desired = from_kube_yaml(FILE, MANIFESTS).unwrap();
    let files = BTreeMap::from([(FILE.to_string(), MANIFESTS.to_string())]);
    let source = Arc::new(MemoryDriftSource::new("kube:prod"));
    let pager = Arc::new(MemoryPager::new());
    let proposer = Arc::new(MemoryChangeProposer::new());
    let flags = Arc::new(MemoryFlagStore::new());
    let tenant = TenantId::new("acme").unwrap();
    let detector = DriftDetector::new(
        tenant.clone(),
        "prod",
        DetectorParts {
            source: source.clone(),
            pager: pager.clone(),
            proposer: proposer.clone(),
            flags: flags.clone(),
            clock: Arc::new(SystemClock),
        },
        DiffRules::default(),
    );

    // In sync (with server-filled fields live): nothing.
    let mut in_sync = live(&desired);
    for o in &mut in_sync {
        o.body["metadata"]["uid"] = json!("1234");
        o.body["status"] = json!({"observedGeneration": 7});
    }
    source.set(in_sync.clone());
    let r = detector.scan(&desired, &files).await.unwrap();
    assert!(r.findings.is_empty(), "{:?}", r.findings);

    // The storm: replicas scaled by hand, the image swapped, the network policy opened,
    // the service deleted.
    let storm = vec![
        with(in_sync[0].clone(), |b| {
            b["spec"]["replicas"] = json!(5);
        }),
        with(in_sync[1].clone(), |b| {
            b["spec"]["policyTypes"] = json!(["Ingress"]);
        }),
    ];
    let mut storm_img = storm.clone();
    storm_img[0].body["spec"]["template"]["spec"]["containers"][0]["image"] =
        json!("docker.io/evil/web:latest");
    source.set(storm_img);
    let r = detector.scan(&desired, &files).await.unwrap();
    assert_eq!(r.findings.len(), 3, "{:?}", r.findings);
    assert_eq!(r.new_findings, 3, "all three appeared with this scan");
    let by_kind: BTreeMap<&str, &mc_drift::Finding> = r
        .findings
        .iter()
        .map(|f| (f.object.kind.as_str(), f))
        .collect();
    assert_eq!(by_kind["Service"].change, Change::Missing);
    assert!(r.findings.iter().all(|f| f.severity == Severity::Critical));
    assert_eq!(r.paged, 3);
    assert!(
        r.pr_bot_off && r.proposed.is_empty(),
        "the bot is off by default"
    );

    // Replicas only (a warning): turn the bot on.
    source.set(storm.clone());
    flags
        .set(&tenant, Flag::DriftPrBotEnabled, true)
        .await
        .unwrap();
    let r = detector.scan(&desired, &files).await.unwrap();
    assert_eq!(r.findings.len(), 3);
    assert_eq!(r.proposed.len(), 3);
    let proposals = proposer.proposals();
    let web = proposals
        .iter()
        .find(|(p, _)| p.title.contains("Deployment/prod/web"))
        .map(|(p, _)| p.clone())
        .unwrap();
    assert_eq!(web.labels, vec![LABEL_AUTO.to_string()]);
    assert!(
        web.body.contains("| `/spec/replicas` | `3` | `5` |"),
        "{}",
        web.body
    );
    assert!(
        web.body.contains("-  replicas: 3") && web.body.contains("+  replicas: 5"),
        "{}",
        web.body
    );
    assert!(web.body.contains("Requires human approval"));
    let np = proposals
        .iter()
        .find(|(p, _)| p.title.contains("NetworkPolicy"))
        .unwrap();
    assert_eq!(np.0.labels, vec![LABEL_REVIEW.to_string()]);

    // Scanning again opens nothing twice and pages nothing twice.
    let r = detector.scan(&desired, &files).await.unwrap();
    assert!(r.proposed.is_empty());
    assert_eq!(r.already_proposed, 3);
    assert_eq!(r.new_findings, 0, "still open, not new");
    // Critical drifts page once (the unchanged network policy and service are the
    // same fingerprints); the replicas-only warning does not page.
    assert_eq!(pager.pages().len(), 3);

    // A human merges the replicas proposal: with its file as the desired state, that
    // drift is gone and the others remain.
    let (path, text) = &web.files[0];
    assert_eq!(path, FILE);
    let merged = from_kube_yaml(FILE, text).unwrap();
    assert_eq!(merged.len(), 3, "the other documents are kept:\n{text}");
    let files = BTreeMap::from([(FILE.to_string(), text.clone())]);
    proposer.close(&web.fingerprint);
    let r = detector.scan(&merged, &files).await.unwrap();
    assert_eq!(r.findings.len(), 2, "{:?}", r.findings);
    assert!(r.findings.iter().all(|f| f.object.kind != "Deployment"));

    // Re-synced: clean.
    source.set(live(&merged));
    let r = detector.scan(&merged, &files).await.unwrap();
    assert!(r.findings.is_empty());
    assert_eq!(r.new_findings, 0);
}
