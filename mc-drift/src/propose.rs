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

/// The document as it would be with the finding codified, and the line the document
/// starts on in the file (0-based): the drifted document rewritten with the live values,
/// or empty for a missing object. `None` when the document cannot be found again.
fn patched_doc(docs: &[String], desired: &DesiredObject, finding: &Finding) -> Option<String> {
    let origin = desired.origin.as_ref()?;
    let original: Value = yaml_serde::from_str(docs.get(origin.doc)?).ok()?;
    if original.get("kind").and_then(Value::as_str) != Some(desired.object.kind.as_str()) {
        return None;
    }
    match &finding.change {
        Change::Missing => Some(String::new()),
        Change::Modified { fields } => {
            let mut v = original;
            for f in fields {
                set_pointer(&mut v, &f.path, &f.live);
            }
            yaml_serde::to_string(&v).ok()
        }
    }
}

/// How many lines of `text` come before the content of document `doc` (as numbered by
/// [`split_docs`]): earlier documents and the separators up to its own.
fn lines_before_doc(text: &str, doc: usize) -> usize {
    let is_sep = |l: &str| l.trim_end() == "---" || l.starts_with("--- ");
    // A leading `---` opens document 0 rather than ending an empty one.
    let seps_needed = doc + usize::from(text.starts_with("---"));
    if seps_needed == 0 {
        return 0;
    }
    let mut seen = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if is_sep(line) {
            seen += 1;
            if seen == seps_needed {
                return i + 1;
            }
        }
    }
    0
}

/// Joins documents back into a file (dropping one replaced by nothing).
fn join_docs(docs: &[String], leading_separator: bool) -> String {
    let mut out = String::new();
    for (i, d) in docs.iter().filter(|d| !d.is_empty()).enumerate() {
        if i > 0 || leading_separator {
            out.push_str("---\n");
        }
        out.push_str(d);
        if !d.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

/// A unified diff of one document's change, with line numbers of the whole file (the
/// document starts after `before` lines of the old file). Diffing the document alone
/// keeps a proposal's cost independent of the file's size.
fn doc_diff(path: &str, old_doc: &str, new_doc: &str, before: usize) -> String {
    let diff = similar::TextDiff::from_lines(old_doc, new_doc);
    let mut out = format!("--- a/{path}\n+++ b/{path}\n");
    for group in diff.grouped_ops(3) {
        let (Some(first), Some(last)) = (group.first(), group.last()) else {
            continue;
        };
        let old = first.old_range().start..last.old_range().end;
        let new = first.new_range().start..last.new_range().end;
        out.push_str(&format!(
            "@@ -{},{} +{},{} @@\n",
            before + old.start + 1,
            old.len(),
            before + new.start + 1,
            new.len()
        ));
        for op in &group {
            for change in diff.iter_changes(op) {
                let sign = match change.tag() {
                    similar::ChangeTag::Delete => '-',
                    similar::ChangeTag::Insert => '+',
                    similar::ChangeTag::Equal => ' ',
                };
                out.push(sign);
                out.push_str(change.value());
                if !change.value().ends_with('\n') {
                    out.push('\n');
                }
            }
        }
    }
    out
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
    let docs = desired
        .origin
        .as_ref()
        .and_then(|o| files.get(&o.path))
        .map(|text| (text, split_docs(text)));
    if let (Some(origin), Some((text, docs))) = (&desired.origin, docs)
        && let Some(new_doc) = patched_doc(&docs, desired, finding)
    {
        let before = lines_before_doc(text, origin.doc);
        let diff = doc_diff(&origin.path, &docs[origin.doc], &new_doc, before);
        body.push_str(&format!("```diff\n{diff}```\n\n"));
        let mut patched = docs;
        patched[origin.doc] = new_doc;
        out_files.push((
            origin.path.clone(),
            join_docs(&patched, text.starts_with("---")),
        ));
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
    fn document_offsets_and_diff_line_numbers() {
        let t = "---\na: 1\n---\n---\nb: 2\nc: 3\n";
        assert_eq!(lines_before_doc(t, 0), 1);
        assert_eq!(lines_before_doc(t, 2), 4);
        assert_eq!(lines_before_doc("a: 1\n---\nb: 2\n", 1), 2);
        assert_eq!(lines_before_doc("a: 1\n", 0), 0);
        let d = doc_diff("f.yaml", "b: 2\nc: 3\n", "b: 5\nc: 3\n", 4);
        assert!(d.contains("@@ -5,2 +5,2 @@\n-b: 2\n+b: 5\n c: 3\n"), "{d}");
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
