//! Conftest-style evaluation: `deny`/`violation`/`warn` rules (and their `_suffix`
//! variants) produce messages; `exception` waives named `deny_*`/`violation_*` rules.
//!
//! The semantics follow conftest: a rule named `deny`, `deny_x`, `violation` or
//! `violation_x` yields *failures*, `warn`/`warn_x` yields *warnings*; a rule's value is
//! a set of messages (strings, or objects with a `msg` field and extra metadata) or a
//! boolean. `exception contains ["x"] if …` moves the failures of `deny_x`/`violation_x`
//! into *exceptions*. A rule that yields nothing counts as a *success*.

use regorus::{Engine, Value};
use serde::Serialize;

use crate::error::{PolicyError, engine_message};
use crate::pack::Pack;

/// What a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// From a `deny*`/`violation*` rule: the input is rejected.
    Failure,
    /// From a `warn*` rule.
    Warning,
    /// A failure waived by an `exception`.
    Exception,
}

/// One message produced by a rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckResult {
    /// Failure, warning or exception.
    pub outcome: Outcome,
    /// The namespace (Rego package) of the rule.
    pub namespace: String,
    /// The rule name, e.g. `deny_backfill_target`.
    pub rule: String,
    /// The message.
    pub msg: String,
    /// Extra fields when the rule produced an object (`{"msg": …, …}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
}

/// The results of one namespace for one input, shaped like conftest's JSON output.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NamespaceResults {
    /// The namespace.
    pub namespace: String,
    /// Rules that produced nothing.
    pub successes: usize,
    /// Failure messages.
    pub failures: Vec<CheckResult>,
    /// Warning messages.
    pub warnings: Vec<CheckResult>,
    /// Waived failures.
    pub exceptions: Vec<CheckResult>,
}

/// Which namespaces to evaluate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Namespaces {
    /// Exactly these (each must exist).
    Only(Vec<String>),
    /// Every namespace of the pack that has conftest rules.
    All,
}

/// Returns true for rule names conftest treats as checks.
pub(crate) fn check_kind(rule: &str) -> Option<Outcome> {
    let matches = |prefix: &str| {
        rule == prefix
            || rule
                .strip_prefix(prefix)
                .and_then(|r| r.strip_prefix('_'))
                .is_some_and(|r| {
                    !r.is_empty() && r.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                })
    };
    if matches("deny") || matches("violation") {
        Some(Outcome::Failure)
    } else if matches("warn") {
        Some(Outcome::Warning)
    } else {
        None
    }
}

/// Evaluates `input` against the pack's namespaces, conftest-style.
///
/// # Errors
/// [`PolicyError::UnknownNamespace`] for a namespace the pack lacks,
/// [`PolicyError::Eval`]/[`PolicyError::Timeout`] when a rule fails to evaluate.
pub fn evaluate(
    pack: &Pack,
    input: &Value,
    namespaces: &Namespaces,
) -> Result<Vec<NamespaceResults>, PolicyError> {
    let mut engine = pack.engine();
    evaluate_with(&mut engine, pack, input, namespaces)
}

/// Evaluates `input` against every pack of a suite (e.g. all of `policy/`).
///
/// With [`Namespaces::Only`], each pack evaluates the requested namespaces it defines,
/// and every requested namespace must be defined by some pack.
///
/// # Errors
/// As [`evaluate`]; [`PolicyError::UnknownNamespace`] names a namespace no pack defines.
pub fn evaluate_suite(
    packs: &[Pack],
    input: &Value,
    namespaces: &Namespaces,
) -> Result<Vec<NamespaceResults>, PolicyError> {
    if let Namespaces::Only(wanted) = namespaces {
        let all: Vec<String> = packs.iter().flat_map(Pack::namespaces).collect();
        if let Some(missing) = wanted.iter().find(|w| !all.contains(w)) {
            return Err(PolicyError::UnknownNamespace {
                namespace: missing.clone(),
                available: all.join(", "),
            });
        }
    }
    let mut out = Vec::new();
    for pack in packs {
        let selection = match namespaces {
            Namespaces::All => Namespaces::All,
            Namespaces::Only(wanted) => {
                let mine = pack.namespaces();
                let here: Vec<String> = wanted
                    .iter()
                    .filter(|w| mine.contains(w))
                    .cloned()
                    .collect();
                if here.is_empty() {
                    continue;
                }
                Namespaces::Only(here)
            }
        };
        out.extend(evaluate(pack, input, &selection)?);
    }
    Ok(out)
}

/// As [`evaluate`], on a caller-held engine (the runner uses this to gather coverage).
pub(crate) fn evaluate_with(
    engine: &mut Engine,
    pack: &Pack,
    input: &Value,
    namespaces: &Namespaces,
) -> Result<Vec<NamespaceResults>, PolicyError> {
    let selected = select_namespaces(pack, namespaces)?;
    engine.set_input(input.clone());
    let mut out = Vec::with_capacity(selected.len());
    for ns in selected {
        out.push(evaluate_namespace(engine, pack, &ns)?);
    }
    Ok(out)
}

pub(crate) fn select_namespaces(
    pack: &Pack,
    namespaces: &Namespaces,
) -> Result<Vec<String>, PolicyError> {
    let available = pack.namespaces();
    match namespaces {
        Namespaces::All => Ok(available
            .into_iter()
            .filter(|ns| {
                pack.rule_names(ns)
                    .iter()
                    .any(|r| check_kind(r).is_some() || r == "exception")
            })
            .collect()),
        Namespaces::Only(wanted) => {
            for ns in wanted {
                if !available.contains(ns) {
                    return Err(PolicyError::UnknownNamespace {
                        namespace: ns.clone(),
                        available: available.join(", "),
                    });
                }
            }
            Ok(wanted.clone())
        }
    }
}

fn evaluate_namespace(
    engine: &mut Engine,
    pack: &Pack,
    ns: &str,
) -> Result<NamespaceResults, PolicyError> {
    let rules = pack.rule_names(ns);
    let mut results = NamespaceResults {
        namespace: ns.to_owned(),
        ..NamespaceResults::default()
    };
    let excepted = if rules.iter().any(|r| r == "exception") {
        exception_names(&eval_json(engine, &format!("data.{ns}.exception"))?)
    } else {
        Vec::new()
    };
    for rule in rules {
        let Some(kind) = check_kind(&rule) else {
            continue;
        };
        let value = eval_json(engine, &format!("data.{ns}.{rule}"))?;
        let messages = messages_of(&rule, &value);
        if messages.is_empty() {
            results.successes += 1;
            continue;
        }
        let suffix = rule.split_once('_').map(|(_, s)| s).unwrap_or("");
        let waived = kind == Outcome::Failure && excepted.iter().any(|e| e == suffix);
        for (msg, metadata) in messages {
            let outcome = if waived { Outcome::Exception } else { kind };
            let result = CheckResult {
                outcome,
                namespace: ns.to_owned(),
                rule: rule.clone(),
                msg,
                metadata,
            };
            match outcome {
                Outcome::Failure => results.failures.push(result),
                Outcome::Warning => results.warnings.push(result),
                Outcome::Exception => results.exceptions.push(result),
            }
        }
    }
    Ok(results)
}

/// Evaluates a rule to JSON; undefined is `None`.
pub(crate) fn eval_json(
    engine: &mut Engine,
    rule: &str,
) -> Result<Option<serde_json::Value>, PolicyError> {
    let value = engine
        .eval_rule(rule.to_owned())
        .map_err(|e| classify_engine_error(rule, &e))?;
    value_to_json(rule, &value)
}

pub(crate) fn value_to_json(
    rule: &str,
    value: &Value,
) -> Result<Option<serde_json::Value>, PolicyError> {
    if *value == Value::Undefined {
        return Ok(None);
    }
    let text = value.to_json_str().map_err(|e| PolicyError::Eval {
        rule: rule.to_owned(),
        message: e.to_string(),
    })?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| PolicyError::Eval {
            rule: rule.to_owned(),
            message: e.to_string(),
        })
}

/// Turns an engine error into [`PolicyError::Timeout`] when the execution timer fired.
pub(crate) fn classify_engine_error(rule: &str, err: &dyn std::fmt::Display) -> PolicyError {
    let text = err.to_string();
    if text.contains("exceeded time limit") {
        let limit_ms = text
            .split("limit=")
            .nth(1)
            .and_then(|s| {
                s.trim_end_matches(|c: char| !c.is_ascii_digit())
                    .parse::<u128>()
                    .ok()
            })
            .map(|ns| u64::try_from(ns / 1_000_000).unwrap_or(u64::MAX))
            .unwrap_or(0);
        return PolicyError::Timeout {
            rule: rule.to_owned(),
            limit_ms,
        };
    }
    PolicyError::Eval {
        rule: rule.to_owned(),
        message: engine_message(err),
    }
}

fn exception_names(value: &Option<serde_json::Value>) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(serde_json::Value::Array(items)) = value {
        for item in items {
            match item {
                serde_json::Value::Array(names) => {
                    out.extend(names.iter().filter_map(|n| n.as_str().map(str::to_owned)));
                }
                serde_json::Value::String(name) => out.push(name.clone()),
                _ => {}
            }
        }
    }
    out
}

fn messages_of(
    rule: &str,
    value: &Option<serde_json::Value>,
) -> Vec<(String, Option<serde_json::Value>)> {
    let one = |v: &serde_json::Value| -> (String, Option<serde_json::Value>) {
        match v {
            serde_json::Value::String(s) => (s.clone(), None),
            serde_json::Value::Object(map) => {
                let msg = map
                    .get("msg")
                    .and_then(|m| m.as_str())
                    .map(str::to_owned)
                    .unwrap_or_else(|| v.to_string());
                let mut rest = map.clone();
                rest.remove("msg");
                let metadata = (!rest.is_empty()).then_some(serde_json::Value::Object(rest));
                (msg, metadata)
            }
            other => (other.to_string(), None),
        }
    };
    match value {
        None | Some(serde_json::Value::Bool(false)) | Some(serde_json::Value::Null) => Vec::new(),
        Some(serde_json::Value::Bool(true)) => vec![(rule.to_owned(), None)],
        Some(serde_json::Value::Array(items)) => items.iter().map(one).collect(),
        Some(serde_json::Value::Object(map)) if map.is_empty() => Vec::new(),
        Some(other) => vec![one(other)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"package demo

deny contains "always" if input.bad

deny_size contains msg if {
  input.size > 10
  msg := sprintf("size %d too big", [input.size])
}

violation_meta contains {"msg": "meta", "severity": "high"} if input.meta

warn_small contains "small" if input.size < 2

exception contains ["size"] if input.waive
"#;

    fn pack() -> Pack {
        Pack::from_sources("demo", &[("demo.rego".into(), POLICY.into())]).expect("loads")
    }

    fn input(json: &str) -> Value {
        Value::from_json_str(json).expect("json")
    }

    #[test]
    fn rule_names_follow_conftest() {
        assert_eq!(check_kind("deny"), Some(Outcome::Failure));
        assert_eq!(check_kind("deny_x_y"), Some(Outcome::Failure));
        assert_eq!(check_kind("violation_1"), Some(Outcome::Failure));
        assert_eq!(check_kind("warn"), Some(Outcome::Warning));
        assert_eq!(check_kind("denyx"), None);
        assert_eq!(check_kind("deny_"), None);
        assert_eq!(check_kind("allow"), None);
    }

    #[test]
    fn failures_warnings_and_metadata() {
        let r = evaluate(
            &pack(),
            &input(r#"{"size": 11, "bad": true, "meta": true}"#),
            &Namespaces::All,
        )
        .expect("eval");
        assert_eq!(r.len(), 1);
        let msgs: Vec<_> = r[0]
            .failures
            .iter()
            .map(|f| (f.rule.as_str(), f.msg.as_str()))
            .collect();
        assert_eq!(
            msgs,
            [
                ("deny", "always"),
                ("deny_size", "size 11 too big"),
                ("violation_meta", "meta")
            ]
        );
        assert_eq!(
            r[0].failures[2].metadata,
            Some(serde_json::json!({"severity": "high"}))
        );
        assert!(r[0].warnings.is_empty());
        assert_eq!(r[0].successes, 1);
    }

    #[test]
    fn exception_waives_named_rule_only() {
        let r = evaluate(
            &pack(),
            &input(r#"{"size": 11, "bad": true, "waive": true}"#),
            &Namespaces::All,
        )
        .expect("eval");
        assert_eq!(r[0].failures.len(), 1);
        assert_eq!(r[0].failures[0].rule, "deny");
        assert_eq!(r[0].exceptions.len(), 1);
        assert_eq!(r[0].exceptions[0].rule, "deny_size");
    }

    #[test]
    fn warnings_and_unknown_namespace() {
        let r = evaluate(
            &pack(),
            &input(r#"{"size": 1}"#),
            &Namespaces::Only(vec!["demo".into()]),
        )
        .expect("eval");
        assert_eq!(r[0].warnings.len(), 1);
        assert!(r[0].failures.is_empty());
        let err = evaluate(
            &pack(),
            &input("{}"),
            &Namespaces::Only(vec!["nope".into()]),
        )
        .expect_err("unknown ns");
        assert!(matches!(err, PolicyError::UnknownNamespace { .. }));
    }
}
