//! Desired against live: normalisation, field differences, severity, fingerprints.

use std::collections::BTreeMap;

use mc_core::LiveObject;
use serde::Serialize;
use serde_json::Value;
use sha2::Digest as _;

use crate::desired::DesiredObject;

/// Where an object is: kind, namespace (or module), name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ObjectId {
    /// Kind (`Deployment`, `aws_s3_bucket`).
    pub kind: String,
    /// Namespace or module.
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
}

impl ObjectId {
    /// The id of a live or desired object.
    pub fn of(o: &LiveObject) -> Self {
        ObjectId {
            kind: o.kind.clone(),
            namespace: o.namespace.clone(),
            name: o.name.clone(),
        }
    }
}

impl std::fmt::Display for ObjectId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{}/{}", self.kind, ns, self.name),
            None => write!(f, "{}/{}", self.kind, self.name),
        }
    }
}

/// One field that differs. `path` is a JSON pointer into the desired object
/// (`/spec/replicas`, `/spec/template/spec/containers/0/image`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldDiff {
    /// Where.
    pub path: String,
    /// The desired value.
    pub desired: Value,
    /// The live value (`null` when the field is missing live).
    pub live: Value,
}

/// What kind of drift.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    /// Desired, but not live (deleted by hand, never applied).
    Missing,
    /// Live differs from desired in these fields.
    Modified {
        /// The fields.
        fields: Vec<FieldDiff>,
    },
}

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Security- or availability-relevant (RBAC, network policy, secrets, images,
    /// security contexts, a missing object): page, and never auto-patch.
    Critical,
    /// Anything else (replicas, labels, resources).
    Warning,
}

impl Severity {
    /// `critical` or `warning`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
        }
    }
}

/// A drifted object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable key of this drift (the source, the object, the differing fields and
    /// their live values): the same drift has the same fingerprint, scan after scan.
    pub fingerprint: String,
    /// The live source (`kube:prod`).
    pub source: String,
    /// The object.
    pub object: ObjectId,
    /// What differs.
    #[serde(flatten)]
    pub change: Change,
    /// How bad.
    pub severity: Severity,
}

/// A field to leave out of comparisons, like Argo CD's `ignoreDifferences`: a JSON
/// pointer prefix, for one kind or every kind. `*` matches one path segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathRule {
    /// The kind, or `None` for all.
    pub kind: Option<String>,
    /// The pointer prefix (`/spec/replicas`, `/spec/template/spec/containers/*/image`).
    pub path: String,
}

impl PathRule {
    /// A rule for `kind` (or every kind with `None`) and `path`.
    pub fn new(kind: Option<&str>, path: &str) -> Self {
        PathRule {
            kind: kind.map(str::to_string),
            path: path.to_string(),
        }
    }

    fn matches(&self, kind: &str, path: &str) -> bool {
        if self.kind.as_deref().is_some_and(|k| k != kind) {
            return false;
        }
        let mut want = self.path.split('/');
        let mut have = path.split('/');
        loop {
            match (want.next(), have.next()) {
                (None, _) => return true,
                (Some(_), None) => return false,
                (Some(w), Some(h)) if w == "*" || w == h => {}
                _ => return false,
            }
        }
    }
}

/// What to compare and how to rate it.
#[derive(Debug, Clone)]
pub struct DiffRules {
    /// Fields left out (server-managed ones are always left out).
    pub ignore: Vec<PathRule>,
    /// Kinds whose every drift is critical.
    pub critical_kinds: Vec<String>,
    /// Fields whose drift is critical in any kind.
    pub critical_paths: Vec<PathRule>,
}

impl Default for DiffRules {
    fn default() -> Self {
        DiffRules {
            ignore: Vec::new(),
            critical_kinds: [
                "Role",
                "ClusterRole",
                "RoleBinding",
                "ClusterRoleBinding",
                "NetworkPolicy",
                "Secret",
                "ServiceAccount",
                "PodSecurityPolicy",
                "aws_iam_role",
                "aws_iam_policy",
                "aws_iam_role_policy",
                "aws_security_group",
                "aws_security_group_rule",
                "aws_s3_bucket_policy",
                "aws_s3_bucket_public_access_block",
                "aws_kms_key",
            ]
            .into_iter()
            .map(str::to_string)
            .collect(),
            critical_paths: [
                "/spec/template/spec/containers/*/image",
                "/spec/template/spec/containers/*/securityContext",
                "/spec/template/spec/initContainers/*/image",
                "/spec/template/spec/securityContext",
                "/spec/template/spec/hostNetwork",
                "/spec/template/spec/hostPID",
                "/spec/template/spec/serviceAccountName",
                "/spec/template/spec/volumes",
                "/ingress",
                "/egress",
                "/policy",
            ]
            .into_iter()
            .map(|p| PathRule::new(None, p))
            .collect(),
        }
    }
}

/// Fields the API server or the provider writes: never drift.
const SERVER_FIELDS: &[&str] = &[
    "/metadata/uid",
    "/metadata/resourceVersion",
    "/metadata/generation",
    "/metadata/creationTimestamp",
    "/metadata/managedFields",
    "/metadata/selfLink",
    "/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration",
    "/metadata/annotations/deployment.kubernetes.io~1revision",
    "/status",
];

fn escape(seg: &str) -> String {
    seg.replace('~', "~0").replace('/', "~1")
}

/// Compares one desired object with its live counterpart: every field the desired
/// object sets must have the same value live; fields only live (defaults the server
/// filled in) are not drift. List items that are objects with a `name` are matched by
/// name (containers, ports, env), others by position.
pub fn diff_object(desired: &Value, live: &Value, kind: &str, rules: &DiffRules) -> Vec<FieldDiff> {
    let mut out = Vec::new();
    walk(desired, Some(live), String::new(), kind, rules, &mut out);
    out
}

fn ignored(path: &str, kind: &str, rules: &DiffRules) -> bool {
    SERVER_FIELDS
        .iter()
        .any(|p| PathRule::new(None, p).matches(kind, path))
        || rules.ignore.iter().any(|r| r.matches(kind, path))
}

fn walk(
    desired: &Value,
    live: Option<&Value>,
    path: String,
    kind: &str,
    rules: &DiffRules,
    out: &mut Vec<FieldDiff>,
) {
    if !path.is_empty() && ignored(&path, kind, rules) {
        return;
    }
    match (desired, live) {
        (Value::Object(d), Some(Value::Object(l))) => {
            for (k, dv) in d {
                walk(
                    dv,
                    l.get(k),
                    format!("{path}/{}", escape(k)),
                    kind,
                    rules,
                    out,
                );
            }
        }
        (Value::Array(d), Some(Value::Array(l))) => {
            let named = |v: &Value| v.get("name").and_then(Value::as_str).map(str::to_string);
            let by_name = d.iter().all(|v| named(v).is_some());
            for (i, dv) in d.iter().enumerate() {
                let lv = if by_name {
                    l.iter().find(|x| named(x) == named(dv))
                } else {
                    l.get(i)
                };
                walk(dv, lv, format!("{path}/{i}"), kind, rules, out);
            }
            if !by_name && l.len() > d.len() {
                out.push(FieldDiff {
                    path,
                    desired: desired.clone(),
                    live: live.cloned().unwrap_or(Value::Null),
                });
            }
        }
        (d, Some(l)) if same_scalar(d, l) => {}
        (d, l) => out.push(FieldDiff {
            path,
            desired: d.clone(),
            live: l.cloned().unwrap_or(Value::Null),
        }),
    }
}

/// Equal, treating `1` and `1.0` alike and a number and its string form alike
/// (`"80"` vs `80` in ports and quantities written either way).
fn same_scalar(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Number(n), Value::String(s)) | (Value::String(s), Value::Number(n)) => {
            s.parse::<f64>().ok() == n.as_f64()
        }
        _ => a == b,
    }
}

/// Compares desired objects with a live snapshot and returns the findings, sorted by
/// object. Live objects nothing desires are not findings (other tools own them).
pub fn find_drift(
    source: &str,
    desired: &[DesiredObject],
    live: &[LiveObject],
    rules: &DiffRules,
) -> Vec<Finding> {
    let live_by_id: BTreeMap<ObjectId, &LiveObject> =
        live.iter().map(|o| (ObjectId::of(o), o)).collect();
    let mut out = Vec::new();
    for d in desired {
        let id = ObjectId::of(&d.object);
        let change = match live_by_id.get(&id) {
            None => Change::Missing,
            Some(l) => {
                let fields = diff_object(&d.object.body, &l.body, &id.kind, rules);
                if fields.is_empty() {
                    continue;
                }
                Change::Modified { fields }
            }
        };
        let severity = severity(&id, &change, rules);
        out.push(Finding {
            fingerprint: fingerprint(source, &id, &change),
            source: source.to_string(),
            object: id,
            change,
            severity,
        });
    }
    out.sort_by(|a, b| a.object.cmp(&b.object));
    out
}

fn severity(id: &ObjectId, change: &Change, rules: &DiffRules) -> Severity {
    if rules.critical_kinds.iter().any(|k| k == &id.kind) {
        return Severity::Critical;
    }
    match change {
        Change::Missing => Severity::Critical,
        Change::Modified { fields } => {
            if fields.iter().any(|f| {
                rules
                    .critical_paths
                    .iter()
                    .any(|r| r.matches(&id.kind, &f.path))
            }) {
                Severity::Critical
            } else {
                Severity::Warning
            }
        }
    }
}

fn fingerprint(source: &str, id: &ObjectId, change: &Change) -> String {
    let mut h = sha2::Sha256::new();
    let v = serde_json::json!({ "source": source, "object": id, "change": change });
    let mut buf = Vec::new();
    mc_core::audit::write_canonical(&v, &mut buf);
    h.update(&buf);
    hex::encode(h.finalize())[..16].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn live_only_fields_and_server_fields_are_not_drift() {
        let d =
            json!({"metadata": {"name": "web", "labels": {"app": "web"}}, "spec": {"replicas": 3}});
        let l = json!({"metadata": {"name": "web", "labels": {"app": "web"}, "uid": "x",
                        "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}},
                       "spec": {"replicas": 3, "revisionHistoryLimit": 10}, "status": {"ready": 1}});
        assert!(diff_object(&d, &l, "Deployment", &DiffRules::default()).is_empty());
    }

    #[test]
    fn containers_match_by_name_and_paths_are_pointers() {
        let d = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "app", "image": "app:1.2"}, {"name": "side", "image": "side:1"}]}}}});
        let l = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "side", "image": "side:1"}, {"name": "app", "image": "app:1.3", "ports": []}]}}}});
        let f = diff_object(&d, &l, "Deployment", &DiffRules::default());
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].path, "/spec/template/spec/containers/0/image");
        assert_eq!(f[0].live, json!("app:1.3"));
    }

    #[test]
    fn ignore_rules_and_scalar_forms() {
        let d = json!({"spec": {"replicas": 3, "port": 80, "weight": 1}});
        let l = json!({"spec": {"replicas": 7, "port": "80", "weight": 1.0}});
        let mut rules = DiffRules::default();
        assert_eq!(diff_object(&d, &l, "Deployment", &rules).len(), 1);
        rules
            .ignore
            .push(PathRule::new(Some("Deployment"), "/spec/replicas"));
        assert!(diff_object(&d, &l, "Deployment", &rules).is_empty());
        assert_eq!(diff_object(&d, &l, "StatefulSet", &rules).len(), 1);
    }

    #[test]
    fn pointer_segments_are_escaped() {
        let d = json!({"metadata": {"annotations": {"a/b~c": "1"}}});
        let l = json!({"metadata": {"annotations": {"a/b~c": "2"}}});
        let f = diff_object(&d, &l, "X", &DiffRules::default());
        assert_eq!(f[0].path, "/metadata/annotations/a~1b~0c");
    }

    proptest! {
        #[test]
        fn an_object_never_drifts_from_itself_or_a_superset(
            keys in proptest::collection::vec("[a-z]{1,6}", 0..8),
            vals in proptest::collection::vec(any::<i32>(), 0..8),
        ) {
            let d: serde_json::Map<String, Value> = keys.iter().cloned().zip(vals.iter().map(|v| json!(v))).collect();
            let d = Value::Object(d);
            let mut l = d.clone();
            l.as_object_mut().unwrap().insert("extraLiveField".into(), json!(true));
            prop_assert!(diff_object(&d, &d, "K", &DiffRules::default()).is_empty());
            prop_assert!(diff_object(&d, &l, "K", &DiffRules::default()).is_empty());
        }
    }
}
