//! # mc-kube — the Kubernetes adapter
//!
//! - [`KubeDriftSource`]: `mc_core::DriftSource` over the API server — lists the
//!   configured kinds (in one namespace or cluster-wide) as live objects for
//!   `mc-drift`.
//! - [`helm_release_desired`]: the desired state of a Helm 3 release, read from its
//!   release Secret (`sh.helm.release.v1.{name}.v{revision}`, label `owner=helm`): the
//!   rendered manifest of the latest deployed revision, as `mc-drift` desired objects.
//! - [`egress_network_policy`]: the NetworkPolicy that confines a task's pods to the
//!   egress proxy (no other egress, no DNS: the proxy resolves for the task).
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = kube::Client::try_default().await?;
//! let live = mc_kube::KubeDriftSource::new(client.clone(), "kube:prod", Some("prod"))
//!     .with_kind("apps", "v1", "Deployment")
//!     .with_kind("", "v1", "Service");
//! let desired = mc_kube::helm_release_desired(&client, "prod", "web").await?;
//! # let _ = (live, desired); Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::collections::BTreeMap;
use std::io::Read as _;

use base64::Engine as _;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, DynamicObject, ListParams};
use kube::core::{ApiResource, GroupVersionKind};
use mc_core::{DriftSource, LiveObject, StoreError};
use mc_drift::DesiredObject;

/// Kubernetes errors as store errors: transport failures and 5xx/429 are
/// `Unavailable` (retry later), the rest `Backend`.
fn store_err(what: &str, e: &kube::Error) -> StoreError {
    match e {
        kube::Error::Api(s) if s.code >= 500 || s.code == 429 => {
            StoreError::Unavailable(format!("{what}: {} {}", s.code, s.message))
        }
        kube::Error::Api(s) => StoreError::Backend(format!("{what}: {} {}", s.code, s.message)),
        other => StoreError::Unavailable(format!("{what}: {other}")),
    }
}

/// Live objects of some kinds, read from the API server.
#[derive(Clone)]
pub struct KubeDriftSource {
    client: kube::Client,
    name: String,
    namespace: Option<String>,
    kinds: Vec<ApiResource>,
}

impl std::fmt::Debug for KubeDriftSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeDriftSource")
            .field("name", &self.name)
            .field("namespace", &self.namespace)
            .field(
                "kinds",
                &self.kinds.iter().map(|k| &k.kind).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl KubeDriftSource {
    /// A source called `name` (`kube:prod`) reading `namespace`, or every namespace
    /// with `None`. Add kinds with [`KubeDriftSource::with_kind`].
    pub fn new(client: kube::Client, name: &str, namespace: Option<&str>) -> Self {
        KubeDriftSource {
            client,
            name: name.to_string(),
            namespace: namespace.map(str::to_string),
            kinds: Vec::new(),
        }
    }

    /// Reads objects of `group/version` `kind` too (`""` is the core group).
    #[must_use]
    pub fn with_kind(mut self, group: &str, version: &str, kind: &str) -> Self {
        self.kinds
            .push(ApiResource::from_gvk(&GroupVersionKind::gvk(
                group, version, kind,
            )));
        self
    }
}

#[async_trait::async_trait]
impl DriftSource for KubeDriftSource {
    fn name(&self) -> &str {
        &self.name
    }

    async fn snapshot(&self) -> Result<Vec<LiveObject>, StoreError> {
        let mut out = Vec::new();
        for ar in &self.kinds {
            let api: Api<DynamicObject> = match &self.namespace {
                Some(ns) => Api::namespaced_with(self.client.clone(), ns, ar),
                None => Api::all_with(self.client.clone(), ar),
            };
            let list = api
                .list(&ListParams::default())
                .await
                .map_err(|e| store_err(&format!("listing {}", ar.plural), &e))?;
            for obj in list.items {
                let name = obj.metadata.name.clone().unwrap_or_default();
                let namespace = obj.metadata.namespace.clone();
                let mut body = serde_json::to_value(&obj)
                    .map_err(|e| StoreError::Backend(format!("{}/{name}: {e}", ar.kind)))?;
                // List items carry no kind or apiVersion; the desired objects do.
                body["kind"] = ar.kind.clone().into();
                body["apiVersion"] = ar.api_version.clone().into();
                out.push(LiveObject {
                    kind: ar.kind.clone(),
                    namespace,
                    name,
                    body,
                });
            }
        }
        Ok(out)
    }
}

/// Decodes Helm 3's release encoding: base64 text of gzip'd JSON (inside the Secret's
/// own base64, which the API client has already removed).
///
/// # Errors
/// [`StoreError::Corrupt`] naming what did not decode.
pub fn decode_helm_release(data: &[u8]) -> Result<serde_json::Value, StoreError> {
    let bad = |what: &str, e: &dyn std::fmt::Display| {
        StoreError::Corrupt(format!("helm release: {what}: {e}"))
    };
    let gz = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|e| bad("base64", &e))?;
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .take(64 * 1024 * 1024)
        .read_to_end(&mut json)
        .map_err(|e| bad("gzip", &e))?;
    serde_json::from_slice(&json).map_err(|e| bad("json", &e))
}

/// The desired objects of Helm release `release` in `namespace`: the rendered manifest
/// of its latest revision with status `deployed`.
///
/// # Errors
/// [`StoreError::InvalidInput`] when no deployed revision exists, the API's errors, and
/// [`StoreError::Corrupt`] for a release that does not decode or parse.
pub async fn helm_release_desired(
    client: &kube::Client,
    namespace: &str,
    release: &str,
) -> Result<Vec<DesiredObject>, StoreError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let selector = format!("owner=helm,name={release},status=deployed");
    let secrets = api
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| store_err("listing helm release secrets", &e))?;
    let mut best: Option<(u64, serde_json::Value)> = None;
    for s in secrets.items {
        let Some(data) = s.data.as_ref().and_then(|d| d.get("release")) else {
            continue;
        };
        let rel = decode_helm_release(&data.0)?;
        let version = rel.get("version").and_then(|v| v.as_u64()).unwrap_or(0);
        if best.as_ref().is_none_or(|(v, _)| version > *v) {
            best = Some((version, rel));
        }
    }
    let Some((version, rel)) = best else {
        return Err(StoreError::InvalidInput {
            field: "helm release",
            reason: format!("no deployed revision of {namespace}/{release}"),
        });
    };
    let manifest = rel.get("manifest").and_then(|m| m.as_str()).unwrap_or("");
    let origin = format!("helm:{namespace}/{release}@{version}");
    let mut objs = mc_drift::from_kube_yaml(&origin, manifest)
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    for o in &mut objs {
        // Helm leaves the namespace out of namespaced objects it installs into the
        // release's namespace; the live objects have it.
        if o.object.namespace.is_none() && !cluster_scoped(&o.object.kind) {
            o.object.namespace = Some(namespace.to_string());
            o.object.body["metadata"]["namespace"] = namespace.into();
        }
        // Not a file in a repository: proposals carry the evidence only.
        o.origin = None;
    }
    Ok(objs)
}

fn cluster_scoped(kind: &str) -> bool {
    matches!(
        kind,
        "Namespace"
            | "ClusterRole"
            | "ClusterRoleBinding"
            | "CustomResourceDefinition"
            | "PersistentVolume"
            | "StorageClass"
            | "PriorityClass"
            | "ValidatingWebhookConfiguration"
            | "MutatingWebhookConfiguration"
    )
}

/// Where the egress proxy is, for [`egress_network_policy`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyEndpoint {
    /// Pods matching these labels in the namespace matching these labels.
    Pods {
        /// The proxy pods' labels.
        pod_labels: BTreeMap<String, String>,
        /// The proxy namespace's labels (`kubernetes.io/metadata.name: mc-system`).
        namespace_labels: BTreeMap<String, String>,
    },
    /// A fixed address range (`10.0.0.2/32`).
    Cidr(String),
}

/// The NetworkPolicy that leaves a task's pods (selected by `task_labels` in
/// `namespace`) exactly one way out: TCP to the egress proxy on `port`. Everything
/// else — other hosts, other ports, DNS on 53, SMTP — is denied by Kubernetes before
/// it leaves the node; the proxy then enforces the task's allowlist.
pub fn egress_network_policy(
    name: &str,
    namespace: &str,
    task_labels: &BTreeMap<String, String>,
    proxy: &ProxyEndpoint,
    port: u16,
) -> NetworkPolicy {
    let to = match proxy {
        ProxyEndpoint::Pods {
            pod_labels,
            namespace_labels,
        } => serde_json::json!({
            "podSelector": { "matchLabels": pod_labels },
            "namespaceSelector": { "matchLabels": namespace_labels },
        }),
        ProxyEndpoint::Cidr(cidr) => serde_json::json!({ "ipBlock": { "cidr": cidr } }),
    };
    let v = serde_json::json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": { "app.kubernetes.io/managed-by": "mc-egress" },
        },
        "spec": {
            "podSelector": { "matchLabels": task_labels },
            "policyTypes": ["Egress"],
            "egress": [{ "to": [to], "ports": [{ "protocol": "TCP", "port": port }] }],
        },
    });
    // The value is built above in NetworkPolicy's own shape.
    serde_json::from_value(v).unwrap_or_default()
}
