//! mc-kube against wiremock serving the Kubernetes API's shapes (no API server
//! installs here; DEPENDENCIES.md): live objects, a Helm release Secret, and drift
//! between them; the egress NetworkPolicy.

use std::collections::BTreeMap;
use std::io::Write as _;

use base64::Engine as _;
use mc_core::{DriftSource, StoreError};
use mc_drift::{Change, DiffRules, find_drift};
use mc_kube::{KubeDriftSource, ProxyEndpoint, egress_network_policy, helm_release_desired};
use serde_json::json;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const MANIFEST: &str = "---\n# Source: web/templates/deployment.yaml\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  labels:\n    app: web\nspec:\n  replicas: 3\n  template:\n    spec:\n      containers:\n        - name: app\n          image: registry.example.com/web:1.4.2\n---\n# Source: web/templates/service.yaml\napiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  ports:\n    - name: http\n      port: 80\n";

/// A Helm 3 release Secret: data.release = base64(base64(gzip(json))) on the wire.
fn release_secret(version: u64, status: &str, manifest: &str) -> serde_json::Value {
    let rel = json!({"name": "web", "namespace": "prod", "version": version,
        "info": {"status": status}, "manifest": manifest, "chart": {"metadata": {"name": "web"}}});
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&serde_json::to_vec(&rel).unwrap()).unwrap();
    let helm_b64 = base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap());
    let wire = base64::engine::general_purpose::STANDARD.encode(helm_b64);
    json!({
        "metadata": {"name": format!("sh.helm.release.v1.web.v{version}"), "namespace": "prod",
            "labels": {"owner": "helm", "name": "web", "status": status, "version": version.to_string()}},
        "type": "helm.sh/release.v1",
        "data": {"release": wire}
    })
}

async fn client(server: &MockServer) -> kube::Client {
    let config = kube::Config::new(server.uri().parse().unwrap());
    kube::Client::try_from(config).unwrap()
}

#[tokio::test]
async fn helm_desired_against_live_objects_finds_the_drift() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/namespaces/prod/secrets"))
        .and(query_param(
            "labelSelector",
            "owner=helm,name=web,status=deployed",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "apiVersion": "v1", "kind": "SecretList", "metadata": {"resourceVersion": "1"},
            "items": [release_secret(6, "deployed", "kind: Deployment\nmetadata: {name: old}\n"),
                      release_secret(7, "deployed", MANIFEST)]
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/apis/apps/v1/namespaces/prod/deployments"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "apiVersion": "apps/v1", "kind": "DeploymentList", "metadata": {"resourceVersion": "9"},
            "items": [{
                "metadata": {"name": "web", "namespace": "prod", "uid": "6b1c", "resourceVersion": "991",
                    "labels": {"app": "web"}, "managedFields": [{"manager": "kubectl"}]},
                "spec": {"replicas": 5, "revisionHistoryLimit": 10, "template": {"spec": {"containers": [
                    {"name": "app", "image": "registry.example.com/web:1.4.2", "imagePullPolicy": "IfNotPresent"}]}}},
                "status": {"readyReplicas": 5}
            }]
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/namespaces/prod/services"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "apiVersion": "v1", "kind": "ServiceList", "metadata": {"resourceVersion": "9"}, "items": []
        })))
        .mount(&server)
        .await;
    let client = client(&server).await;
    let desired = helm_release_desired(&client, "prod", "web").await.unwrap();
    assert_eq!(desired.len(), 2, "the latest deployed revision (7) is read");
    assert_eq!(desired[0].object.namespace.as_deref(), Some("prod"));
    let source = KubeDriftSource::new(client, "kube:prod", Some("prod"))
        .with_kind("apps", "v1", "Deployment")
        .with_kind("", "v1", "Service");
    let live = source.snapshot().await.unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].body["kind"], "Deployment");
    let findings = find_drift(source.name(), &desired, &live, &DiffRules::default());
    assert_eq!(findings.len(), 2, "{findings:?}");
    let deploy = findings
        .iter()
        .find(|f| f.object.kind == "Deployment")
        .unwrap();
    match &deploy.change {
        Change::Modified { fields } => {
            assert_eq!(fields.len(), 1, "{fields:?}");
            assert_eq!(fields[0].path, "/spec/replicas");
        }
        other => panic!("{other:?}"),
    }
    let svc = findings
        .iter()
        .find(|f| f.object.kind == "Service")
        .unwrap();
    assert_eq!(svc.change, Change::Missing);
    server.verify().await;
}

#[tokio::test]
async fn api_errors_are_typed() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/apis/apps/v1/namespaces/prod/deployments"))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({
            "kind": "Status", "apiVersion": "v1", "status": "Failure",
            "message": "deployments.apps is forbidden: User \"system:serviceaccount:mc:drift\" cannot list resource \"deployments\"",
            "reason": "Forbidden", "code": 403
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/namespaces/prod/secrets"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "apiVersion": "v1", "kind": "SecretList", "metadata": {}, "items": []
        })))
        .mount(&server)
        .await;
    let client = client(&server).await;
    let source = KubeDriftSource::new(client.clone(), "kube:prod", Some("prod")).with_kind(
        "apps",
        "v1",
        "Deployment",
    );
    // (5xx answers are retried by the client with back-off before they surface as
    // `Unavailable`; a refusal surfaces at once.)
    let e = source.snapshot().await.unwrap_err();
    assert!(
        matches!(&e, StoreError::Backend(m) if m.contains("403") && m.contains("forbidden")),
        "{e:?}"
    );
    assert!(matches!(
        helm_release_desired(&client, "prod", "web").await,
        Err(StoreError::InvalidInput { .. })
    ));
    assert!(mc_kube::decode_helm_release(b"not base64!").is_err());
}

#[test]
fn the_egress_policy_allows_only_the_proxy() {
    let labels = BTreeMap::from([("mc.io/task".to_string(), "fetch".to_string())]);
    let np = egress_network_policy(
        "mc-egress-fetch",
        "runners",
        &labels,
        &ProxyEndpoint::Cidr("10.0.0.2/32".into()),
        3128,
    );
    let v = serde_json::to_value(&np).unwrap();
    assert_eq!(v["spec"]["policyTypes"], json!(["Egress"]));
    assert_eq!(
        v["spec"]["podSelector"]["matchLabels"]["mc.io/task"],
        "fetch"
    );
    let egress = v["spec"]["egress"].as_array().unwrap();
    assert_eq!(egress.len(), 1, "one way out");
    assert_eq!(egress[0]["to"][0]["ipBlock"]["cidr"], "10.0.0.2/32");
    assert_eq!(
        egress[0]["ports"],
        json!([{"protocol": "TCP", "port": 3128}])
    );
    // No DNS, no SMTP: nothing else is listed.
    let text = serde_json::to_string(&v).unwrap();
    assert!(!text.contains("53") && !text.contains("\"UDP\""), "{text}");
    let yaml = yaml_serde::to_string(&np).unwrap();
    assert!(yaml.contains("kind: NetworkPolicy"), "{yaml}");
}
