//! Remediation proposals: a pull request per finding that codifies the live state in
//! the desired manifests, with the evidence (diff, environment, time). Merging is
//! always a human's decision: merge to accept the live state, close and re-sync to
//! restore the desired one.

use std::collections::BTreeMap;

use mc_core::{ChangeProposal, LiveObject};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::desired::DesiredObject;
use crate::diff::{Change, Finding, Severity};

/// The label of a low-risk proposal (warnings).
pub const LABEL_AUTO: &str = "drift:auto";
/// The label of a proposal that needs a careful review (critical findings).
pub const LABEL_REVIEW: &str = "drift:needs-review";

/// Splits a multi-document YAML text at its `---` lines, the way the YAML reader
/// numbers documents (a leading `---` opens the first document).
fn split_docs(text: &str) -> Vec<String> {
    let mut docs = vec![String::new()];
    for line in text.split_inclusive('\n') {
        if line.trim_end() == "---" || line.starts_with("--- ") {
            docs.push(String::new());
        } else if let Some(d) = docs.last_mut() {
            d.push_str(line);
        }
    }
    if text.starts_with("---") && docs.first().is_some_and(|d| d.trim().is_empty()) {
        docs.remove(0);
    }
    docs
}

/// Sets `value` at JSON pointer `path` in `doc` (creating objects on the way);
/// `null` removes the field.
fn set_pointer(doc: &mut Value, path: &str, value: &Value) {
    let segs: Vec<String> = path
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect();
    let Some((last, parents)) = segs.split_last() else {
        *doc = value.clone();
        return;
    };
    let mut cur = doc;
    for s in parents {
        cur = match cur {
            Value::Object(m) => m
                .entry(s.clone())
                .or_insert_with(|| Value::Object(Default::default())),
            Value::Array(a) => match s.parse::<usize>().ok().and_then(|i| a.get_mut(i)) {
                Some(v) => v,
                None => return,
            },
            _ => return,
        };
    }
    match cur {
        Value::Object(m) if value.is_null() => {
            m.remove(last);
        }
        Value::Object(m) => {
            m.insert(last.clone(), value.clone());
        }
        Value::Array(a) => {
            if let Some(slot) = last.parse::<usize>().ok().and_then(|i| a.get_mut(i)) {
                *slot = value.clone();
            }
        }
        _ => {}
    }
}

/// The file as it would be with the finding codified: the drifted document rewritten
/// with the live values (or removed, for a missing object). `None` when the document
/// cannot be found again in the text.
fn patched_file(text: &str, desired: &DesiredObject, finding: &Finding) -> Option<String> {
    let origin = desired.origin.as_ref()?;
    let mut docs = split_docs(text);
    let original: Value = yaml_serde::from_str(docs.get(origin.doc)?).ok()?;
    if original.get("kind").and_then(Value::as_str) != Some(desired.object.kind.as_str()) {
        return None;
    }
    let new_doc = match &finding.change {
        Change::Missing => String::new(),
        Change::Modified { fields } => {
            let mut v = original;
            for f in fields {
                set_pointer(&mut v, &f.path, &f.live);
            }
            yaml_serde::to_string(&v).ok()?
        }
    };
    let removed = new_doc.is_empty();
    docs[origin.doc] = new_doc;
    let kept: Vec<&String> = docs
        .iter()
        .enumerate()
        .filter(|(i, _)| !(removed && *i == origin.doc))
        .map(|(_, d)| d)
        .collect();
    let mut out = String::new();
    for (i, d) in kept.iter().enumerate() {
        if i > 0 || text.starts_with("---") {
            out.push_str("---\n");
        }
        out.push_str(d);
        if !d.ends_with('\n') && !d.is_empty() {
            out.push('\n');
        }
    }
    Some(out)
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 120 {
        format!(
            "{}…",
            &s[..s.char_indices().nth(117).map_or(s.len(), |(i, _)| i)]
        )
    } else {
        s
    }
}

/// Builds the proposal for one finding.
///
/// `files` holds the repository's current text of the desired objects' files (by
/// path); when the drifted object's file is there, the proposal rewrites it, otherwise
/// (Terraform state, a file not given) it carries the evidence only. `env` names the
/// environment in the body.
pub fn proposal_for(
    finding: &Finding,
    desired: &DesiredObject,
    live: Option<&LiveObject>,
    files: &BTreeMap<String, String>,
    env: &str,
    detected_at: OffsetDateTime,
) -> ChangeProposal {
    let when = detected_at
        .format(&Rfc3339)
        .unwrap_or_else(|_| detected_at.to_string());
    let mut body = String::new();
    body.push_str(&format!(
        "Drift detected in **{env}** (source `{}`) at {when} on `{}`: **{}**.\n\n",
        finding.source,
        finding.object,
        finding.severity.as_str()
    ));
    match &finding.change {
        Change::Missing => body.push_str(
            "The object is desired but not live (deleted by hand, or never applied).\n\n",
        ),
        Change::Modified { fields } => {
            body.push_str("| field | desired | live |\n|---|---|---|\n");
            for f in fields {
                body.push_str(&format!(
                    "| `{}` | `{}` | `{}` |\n",
                    f.path,
                    short(&f.desired),
                    short(&f.live)
                ));
            }
            body.push('\n');
        }
    }
    let mut out_files = Vec::new();
    if let Some(origin) = &desired.origin
        && let Some(text) = files.get(&origin.path)
        && let Some(new_text) = patched_file(text, desired, finding)
    {
        let diff = similar::TextDiff::from_lines(text.as_str(), new_text.as_str())
            .unified_diff()
            .context_radius(3)
            .header(&format!("a/{}", origin.path), &format!("b/{}", origin.path))
            .to_string();
        body.push_str(&format!("```diff\n{diff}```\n\n"));
        out_files.push((origin.path.clone(), new_text));
    } else {
        body.push_str("No file in this repository holds the object as written; the diff above is the evidence.\n\n");
    }
    body.push_str(
        "**Requires human approval.** Merge to accept the live state into the desired \
         state; close to keep the desired state, and re-sync the environment to restore it.\n\n",
    );
    let evidence = serde_json::json!({
        "finding": finding,
        "env": env,
        "detectedAt": when,
        "live": live.map(|l| &l.body),
    });
    body.push_str(&format!(
        "<details><summary>Evidence</summary>\n\n```json\n{}\n```\n</details>\n",
        serde_json::to_string_pretty(&evidence).unwrap_or_default()
    ));
    let label = match finding.severity {
        Severity::Critical => LABEL_REVIEW,
        Severity::Warning => LABEL_AUTO,
    };
    ChangeProposal {
        fingerprint: finding.fingerprint.clone(),
        branch: format!("drift/{}", finding.fingerprint),
        title: format!(
            "drift({env}): {} {}",
            finding.object,
            match finding.change {
                Change::Missing => "is missing",
                Change::Modified { .. } => "differs from desired",
            }
        ),
        body,
        labels: vec![label.to_string()],
        files: out_files,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn documents_split_like_the_reader_counts_them() {
        let t = "---\na: 1\n---\n---\nb: 2\n";
        assert_eq!(split_docs(t), vec!["a: 1\n", "", "b: 2\n"]);
        assert_eq!(split_docs("a: 1\n---\nb: 2\n"), vec!["a: 1\n", "b: 2\n"]);
    }

    #[test]
    fn pointers_set_and_remove() {
        let mut v = json!({"spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "a", "image": "x"}]}}}});
        set_pointer(&mut v, "/spec/replicas", &json!(5));
        set_pointer(
            &mut v,
            "/spec/template/spec/containers/0/image",
            &json!("y"),
        );
        set_pointer(&mut v, "/metadata/labels/a~1b", &json!("c"));
        assert_eq!(v["spec"]["replicas"], 5);
        assert_eq!(v["spec"]["template"]["spec"]["containers"][0]["image"], "y");
        assert_eq!(v["metadata"]["labels"]["a/b"], "c");
        set_pointer(&mut v, "/spec/replicas", &Value::Null);
        assert!(v["spec"].get("replicas").is_none());
    }
}
