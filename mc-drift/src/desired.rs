//! The desired state: rendered Kubernetes manifests (a Helm release's manifest, a
//! directory of YAML) and Terraform state.

use mc_core::LiveObject;
use serde_json::Value;

use crate::DriftError;

/// Where a desired object was read from, so a proposal can patch that file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The file's path in the repository.
    pub path: String,
    /// The YAML document's index in the file (0-based).
    pub doc: usize,
}

/// A desired object and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredObject {
    /// The object.
    pub object: LiveObject,
    /// Its file, when it came from one the repository holds.
    pub origin: Option<Origin>,
}

/// Reads a multi-document YAML file of Kubernetes objects (`helm template` output, a
/// release's manifest, a kustomize build). Empty documents are skipped; every other
/// document needs `kind` and `metadata.name`.
///
/// ```
/// let objs = mc_drift::from_kube_yaml("deploy/web.yaml", "
/// apiVersion: apps/v1
/// kind: Deployment
/// metadata: { name: web, namespace: prod }
/// spec: { replicas: 3 }
/// ").unwrap();
/// assert_eq!(objs[0].object.name, "web");
/// ```
///
/// # Errors
/// [`DriftError::Manifest`] naming the file and the document.
pub fn from_kube_yaml(path: &str, text: &str) -> Result<Vec<DesiredObject>, DriftError> {
    let mut out = Vec::new();
    for (doc, de) in yaml_serde::Deserializer::from_str(text).enumerate() {
        let bad = |reason: String| DriftError::Manifest {
            file: path.to_string(),
            doc,
            reason,
        };
        let v: Value = serde::Deserialize::deserialize(de).map_err(|e| bad(e.to_string()))?;
        if v.is_null() {
            continue;
        }
        let object = kube_object(v).map_err(bad)?;
        out.push(DesiredObject {
            object,
            origin: Some(Origin {
                path: path.to_string(),
                doc,
            }),
        });
    }
    Ok(out)
}

/// One Kubernetes object (a parsed document, or an item of a `List`) as a
/// [`LiveObject`]: kind from `kind`, name and namespace from `metadata`.
///
/// # Errors
/// The reason, when `kind` or `metadata.name` is missing.
pub fn kube_object(v: Value) -> Result<LiveObject, String> {
    let kind = v
        .get("kind")
        .and_then(Value::as_str)
        .ok_or("no kind")?
        .to_string();
    let meta = v.get("metadata");
    let name = meta
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .ok_or("no metadata.name")?
        .to_string();
    let namespace = meta
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok(LiveObject {
        kind,
        namespace,
        name,
        body: v,
    })
}

/// Reads Terraform state (format version 4): every managed resource instance becomes
/// an object with kind = resource type, namespace = module (`None` at the root),
/// name = `name` or `name[key]`, body = its attributes.
///
/// # Errors
/// [`DriftError::Manifest`] when the JSON is not version-4 state.
pub fn from_terraform_state(text: &str) -> Result<Vec<DesiredObject>, DriftError> {
    let bad = |reason: String| DriftError::Manifest {
        file: "terraform state".into(),
        doc: 0,
        reason,
    };
    let v: Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    if v.get("version").and_then(Value::as_u64) != Some(4) {
        return Err(bad("not Terraform state version 4".into()));
    }
    let mut out = Vec::new();
    for r in v
        .get("resources")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("no resources".into()))?
    {
        if r.get("mode").and_then(Value::as_str) != Some("managed") {
            continue;
        }
        let (Some(kind), Some(name)) = (
            r.get("type").and_then(Value::as_str),
            r.get("name").and_then(Value::as_str),
        ) else {
            return Err(bad("a resource without type or name".into()));
        };
        let module = r.get("module").and_then(Value::as_str).map(str::to_string);
        for inst in r
            .get("instances")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = match inst.get("index_key") {
                Some(Value::String(k)) => format!("{name}[\"{k}\"]"),
                Some(Value::Number(k)) => format!("{name}[{k}]"),
                _ => name.to_string(),
            };
            out.push(DesiredObject {
                object: LiveObject {
                    kind: kind.to_string(),
                    namespace: module.clone(),
                    name,
                    body: inst.get("attributes").cloned().unwrap_or(Value::Null),
                },
                origin: None,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn multi_document_files() {
        let text = "---\napiVersion: v1\nkind: Service\nmetadata: {name: web}\n---\n---\nkind: Deployment\nmetadata: {name: web, namespace: prod}\n";
        let objs = from_kube_yaml("a.yaml", text).unwrap();
        assert_eq!(objs.len(), 2);
        assert_eq!(objs[1].origin.as_ref().unwrap().doc, 2);
        assert_eq!(objs[1].object.namespace.as_deref(), Some("prod"));
        let e = from_kube_yaml("b.yaml", "kind: X\nmetadata: {}\n").unwrap_err();
        assert!(
            e.to_string().contains("b.yaml") && e.to_string().contains("metadata.name"),
            "{e}"
        );
    }

    #[test]
    fn terraform_state_instances() {
        let state = r#"{"version":4,"resources":[
          {"mode":"managed","type":"aws_s3_bucket","name":"logs","instances":[{"attributes":{"bucket":"acme-logs","acl":"private"}}]},
          {"mode":"managed","type":"aws_iam_role","name":"r","module":"module.iam","instances":[
             {"index_key":"ci","attributes":{"name":"ci"}},{"index_key":0,"attributes":{"name":"z"}}]},
          {"mode":"data","type":"aws_caller_identity","name":"me","instances":[{}]}]}"#;
        let objs = from_terraform_state(state).unwrap();
        let names: Vec<_> = objs.iter().map(|o| o.object.name.as_str()).collect();
        assert_eq!(names, ["logs", "r[\"ci\"]", "r[0]"]);
        assert_eq!(objs[1].object.namespace.as_deref(), Some("module.iam"));
        assert!(from_terraform_state(r#"{"version":3}"#).is_err());
    }

    proptest! {
        #[test]
        fn readers_never_panic(s in "\\PC{0,200}") {
            let _ = from_kube_yaml("f.yaml", &s);
            let _ = from_terraform_state(&s);
        }
    }
}
