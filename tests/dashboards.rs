//! The Grafana dashboards (`deploy/grafana/`) and the alert rules
//! (`deploy/prometheus/mc-rules.yaml`) query only what Maestro Conductor exports.
//!
//! Every PromQL expression parses (promql-parser, Prometheus' grammar); every series
//! it selects is a metric of `mc_core::telemetry` (a histogram through its
//! `_bucket`/`_sum`/`_count` series) or a recording rule of the rules file; every
//! label it matches or groups by is one of those series' labels; every `le` bound is
//! a bucket the exporter has. The dashboards follow one shape (a Prometheus
//! datasource variable, unique ids, panels on the 24-column grid without overlap),
//! the spec's four dashboards exist (§6), and every metric of the catalogue is drawn
//! somewhere. A renamed metric or label in the code fails here instead of leaving an
//! empty panel or an alert that can never fire.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use mc_core::telemetry::{self, METRICS, Series};
use promql_parser::label::MatchOp;
use promql_parser::parser::{self, Expr, VectorSelector};
use promql_parser::util::{ExprVisitor, walk_expr};
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives in the workspace")
        .to_path_buf()
}

/// What an expression may refer to besides the catalogue: the recording rules,
/// each with the labels its series can carry and the catalogue metrics it is
/// computed from.
#[derive(Default)]
struct Known {
    rules: BTreeMap<String, BTreeSet<String>>,
    draws: BTreeMap<String, BTreeSet<&'static str>>,
}

/// What one expression selects and groups by.
#[derive(Default)]
struct Refs {
    selectors: Vec<VectorSelector>,
    grouping: BTreeSet<String>,
}

impl ExprVisitor for Refs {
    type Error = String;

    fn pre_visit(&mut self, e: &Expr) -> Result<bool, String> {
        match e {
            Expr::VectorSelector(vs) => self.selectors.push(vs.clone()),
            Expr::MatrixSelector(ms) => self.selectors.push(ms.vs.clone()),
            Expr::Aggregate(a) => {
                if let Some(m) = &a.modifier {
                    self.grouping.extend(m.labels().labels.iter().cloned());
                }
            }
            Expr::Binary(b) => {
                if let Some(m) = b.modifier.as_ref().and_then(|m| m.matching.as_ref()) {
                    self.grouping.extend(m.labels().labels.iter().cloned());
                }
            }
            _ => {}
        }
        Ok(true)
    }
}

/// Grafana's built-in interval variables, replaced by a typical value so that the
/// query parses as PromQL. Any other `$` is an error.
fn expand_grafana(expr: &str) -> Result<String, String> {
    let expanded = expr
        .replace("$__rate_interval", "5m")
        .replace("$__interval", "1m")
        .replace("$__range", "6h");
    if expanded.contains('$') {
        return Err(
            "uses a Grafana variable other than $__rate_interval, $__interval and $__range".into(),
        );
    }
    Ok(expanded)
}

/// The labels the series an expression yields can carry (an upper bound: the union
/// of its selectors' labels).
fn labels_of(expr: &str, known: &Known) -> Result<BTreeSet<String>, String> {
    labels_in(&refs_of(expr)?, known)
}

/// What `expr` selects and groups by.
fn refs_of(expr: &str) -> Result<Refs, String> {
    let ast = parser::parse(expr).map_err(|e| format!("does not parse: {e}"))?;
    let mut refs = Refs::default();
    walk_expr(&mut refs, &ast)?;
    Ok(refs)
}

/// The catalogue metrics an expression draws: directly, or through recording rules.
fn metrics_drawn(refs: &Refs, known: &Known) -> BTreeSet<&'static str> {
    let mut drawn = BTreeSet::new();
    for name in refs.selectors.iter().filter_map(|vs| vs.name.as_deref()) {
        if let Some((spec, _)) = telemetry::series(name) {
            drawn.insert(spec.name);
        } else if let Some(via) = known.draws.get(name) {
            drawn.extend(via.iter().copied());
        }
    }
    drawn
}

/// [`labels_of`] for an expression already walked.
fn labels_in(refs: &Refs, known: &Known) -> Result<BTreeSet<String>, String> {
    let mut in_scope = BTreeSet::new();
    for vs in &refs.selectors {
        in_scope.extend(check_selector(vs, known)?);
    }
    for l in &refs.grouping {
        if !in_scope.contains(l) {
            return Err(format!(
                "groups or matches on label {l:?}, which none of its series carries ({in_scope:?})"
            ));
        }
    }
    Ok(in_scope)
}

/// Checks one selector; returns the labels its series carry.
fn check_selector(vs: &VectorSelector, known: &Known) -> Result<BTreeSet<String>, String> {
    let name = vs
        .name
        .clone()
        .or_else(|| {
            vs.matchers
                .matchers
                .iter()
                .find(|m| m.name == "__name__" && m.op == MatchOp::Equal)
                .map(|m| m.value.clone())
        })
        .ok_or_else(|| format!("selector {vs} names no metric"))?;
    let (labels, buckets): (BTreeSet<String>, &[f64]) = if let Some((spec, part)) =
        telemetry::series(&name)
    {
        let mut labels: BTreeSet<String> = spec.labels.iter().map(|l| l.to_string()).collect();
        if part == Series::Bucket {
            labels.insert("le".into());
        }
        (labels, spec.buckets)
    } else if let Some(labels) = known.rules.get(&name) {
        (labels.clone(), &[])
    } else if name == "ALERTS" {
        let labels = ["alertname", "alertstate", "severity", "slo"];
        (labels.iter().map(|l| l.to_string()).collect(), &[])
    } else {
        return Err(format!(
            "selects {name:?}, which is neither a metric of mc_core::telemetry nor a recording rule"
        ));
    };
    for m in vs
        .matchers
        .matchers
        .iter()
        .chain(vs.matchers.or_matchers.iter().flatten())
    {
        if m.name == "__name__" {
            continue;
        }
        if !labels.contains(&m.name) {
            return Err(format!(
                "{name} has no label {:?} (it has {labels:?})",
                m.name
            ));
        }
        if m.name == "le" && m.op == MatchOp::Equal {
            let bound: f64 = m
                .value
                .parse()
                .map_err(|_| format!("{name}: le={:?} is not a number", m.value))?;
            if !(bound.is_infinite() || buckets.contains(&bound)) {
                return Err(format!(
                    "{name}: le=\"{}\" is not a bucket bound (buckets: {buckets:?})",
                    m.value
                ));
            }
        }
    }
    Ok(labels)
}

/// The rules file: its recording rules (with the labels their series can carry),
/// then every rule's expression checked.
fn rules() -> (Known, Vec<yaml_serde::Value>) {
    let path = repo().join("deploy/prometheus/mc-rules.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let doc: yaml_serde::Value = yaml_serde::from_str(&text).unwrap();
    let rules: Vec<yaml_serde::Value> = doc["groups"]
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_sequence().unwrap().clone())
        .collect();
    // Recording rules may refer to each other in any order: resolve until fixed.
    let mut known = Known::default();
    for _ in 0..rules.len() {
        for r in &rules {
            if let (Some(record), Some(expr)) = (r["record"].as_str(), r["expr"].as_str())
                && let Ok(refs) = refs_of(expr)
                && let Ok(labels) = labels_in(&refs, &known)
            {
                let draws = metrics_drawn(&refs, &known);
                known.rules.insert(record.to_string(), labels);
                known.draws.insert(record.to_string(), draws);
            }
        }
    }
    (known, rules)
}

fn dashboards() -> Vec<(String, Value)> {
    let dir = repo().join("deploy/grafana");
    let mut out: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, v)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(!out.is_empty(), "no dashboards in {}", dir.display());
    out
}

/// Every expression of a dashboard: (where, expr).
fn queries(board: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in board["panels"].as_array().into_iter().flatten() {
        for t in p["targets"].as_array().into_iter().flatten() {
            out.push((
                format!(
                    "panel {:?} target {}",
                    p["title"].as_str().unwrap_or("?"),
                    t["refId"].as_str().unwrap_or("?")
                ),
                t["expr"].as_str().unwrap_or_default().to_string(),
            ));
        }
    }
    for a in board["annotations"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let Some(e) = a["expr"].as_str() {
            out.push((
                format!("annotation {:?}", a["name"].as_str().unwrap_or("?")),
                e.to_string(),
            ));
        }
    }
    out
}

#[test]
fn every_rule_queries_only_exported_series_and_labels() {
    let (known, rules) = rules();
    assert!(
        known.rules.len() >= 5,
        "recording rules: {:?}",
        known.rules.keys()
    );
    let mut errors = Vec::new();
    for r in &rules {
        let what = r["record"].as_str().or(r["alert"].as_str()).unwrap_or("?");
        let expr = r["expr"].as_str().unwrap_or_default();
        if let Err(e) = labels_of(expr, &known) {
            errors.push(format!("rule {what}: {e}"));
        }
        if let Some(runbook) = r["annotations"]["runbook"].as_str() {
            let file = runbook.split('#').next().unwrap();
            if !repo().join(file).is_file() {
                errors.push(format!("alert {what}: runbook {runbook} does not exist"));
            }
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

#[test]
fn every_dashboard_query_selects_exported_series_and_labels() {
    let (known, _) = rules();
    let mut errors = Vec::new();
    let mut drawn = BTreeSet::new();
    for (file, board) in dashboards() {
        let qs = queries(&board);
        assert!(!qs.is_empty(), "{file} has no queries");
        for (at, expr) in qs {
            let checked = expand_grafana(&expr).and_then(|e| {
                let refs = refs_of(&e)?;
                drawn.extend(metrics_drawn(&refs, &known));
                labels_in(&refs, &known)
            });
            if let Err(e) = checked {
                errors.push(format!("{file}, {at}: {e}\n    {expr}"));
            }
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    let missing: Vec<_> = METRICS
        .iter()
        .map(|m| m.name)
        .filter(|m| !drawn.contains(m))
        .collect();
    assert!(missing.is_empty(), "metrics on no dashboard: {missing:?}");
}

#[test]
fn dashboards_have_one_shape_and_the_spec_s_four_exist() {
    let boards = dashboards();
    let mut uids = BTreeSet::new();
    let mut titles = BTreeSet::new();
    for (file, b) in &boards {
        let uid = b["uid"]
            .as_str()
            .unwrap_or_else(|| panic!("{file}: no uid"));
        assert!(
            uid.len() <= 40 && uid.bytes().all(|c| c.is_ascii_lowercase() || c == b'-'),
            "{file}: uid {uid:?} (Grafana allows 40 characters; ours are lowercase-dashed)"
        );
        assert_eq!(*file, format!("{uid}.json"), "file named after its uid");
        assert!(uids.insert(uid.to_string()), "uid {uid} used twice");
        let title = b["title"].as_str().unwrap();
        assert!(title.starts_with("MC / "), "{file}: title {title:?}");
        assert!(titles.insert(title.to_string()), "title {title} used twice");
        assert!(
            b["schemaVersion"].as_u64().is_some(),
            "{file}: schemaVersion"
        );

        let vars = b["templating"]["list"].as_array().unwrap();
        assert!(
            vars.iter().any(|v| v["name"] == "datasource"
                && v["type"] == "datasource"
                && v["query"] == "prometheus"),
            "{file}: no Prometheus datasource variable"
        );

        let panels = b["panels"].as_array().unwrap();
        assert!(panels.len() >= 3, "{file}: {} panels", panels.len());
        let mut ids = BTreeSet::new();
        let mut cells = BTreeSet::new();
        for p in panels {
            let title = p["title"].as_str().unwrap_or_default();
            assert!(!title.is_empty(), "{file}: a panel without a title");
            assert!(
                p["description"].as_str().is_some_and(|d| !d.is_empty()),
                "{file}: panel {title:?} has no description"
            );
            assert!(
                ids.insert(p["id"].as_u64().unwrap()),
                "{file}: panel id twice"
            );
            assert_eq!(
                p["datasource"]["uid"], "${datasource}",
                "{file}: panel {title:?} does not use the datasource variable"
            );
            let g = &p["gridPos"];
            let (x, y, w, h) = (
                g["x"].as_u64().unwrap(),
                g["y"].as_u64().unwrap(),
                g["w"].as_u64().unwrap(),
                g["h"].as_u64().unwrap(),
            );
            assert!(
                w >= 1 && h >= 1 && x + w <= 24,
                "{file}: panel {title:?} off the grid"
            );
            for cx in x..x + w {
                for cy in y..y + h {
                    assert!(
                        cells.insert((cx, cy)),
                        "{file}: panel {title:?} overlaps another"
                    );
                }
            }
            let targets = p["targets"].as_array().unwrap();
            assert!(!targets.is_empty(), "{file}: panel {title:?} has no query");
            let refs: BTreeSet<_> = targets.iter().map(|t| t["refId"].to_string()).collect();
            assert_eq!(refs.len(), targets.len(), "{file}: panel {title:?} refIds");
            for t in targets {
                assert_eq!(t["datasource"]["uid"], "${datasource}", "{file}: {title:?}");
            }
        }
    }
    // Spec §6: "Dashboards: Console actions; Drift & integrity; Egress blocks;
    // Evidence build times."
    for want in [
        "MC / Console actions",
        "MC / Drift & integrity",
        "MC / Egress blocks",
        "MC / Evidence build times",
    ] {
        assert!(
            titles.contains(want),
            "no dashboard {want:?} (have {titles:?})"
        );
    }
}

#[test]
fn the_checker_refuses_what_would_draw_nothing() {
    let (known, _) = rules();
    let ok = |e: &str| labels_of(&expand_grafana(e).unwrap(), &known);
    ok("sum by (action) (rate(mc_action_latency_ms_count[$__rate_interval]))").unwrap();
    ok(r#"sum(rate(mc_action_latency_ms_bucket{le="800"}[5m]))"#).unwrap();
    ok("mc:action_latency:error_ratio_rate5m > 0.05").unwrap();
    for (bad, why) in [
        ("rate(mc_action_latency_ms[5m])", "neither a metric"),
        ("rate(mc_actions_latency_ms_count[5m])", "neither a metric"),
        (
            r#"mc_egress_block_total{tenant="acme"}"#,
            "no label \"tenant\"",
        ),
        (r#"mc_action_latency_ms_count{le="800"}"#, "no label \"le\""),
        (
            r#"mc_action_latency_ms_bucket{le="750"}"#,
            "not a bucket bound",
        ),
        (
            "sum by (reason) (mc_drift_open_findings)",
            "label \"reason\"",
        ),
        ("sum(rate(mc_egress_block_total[5m])", "does not parse"),
        ("mc:nope:rate5m", "neither a metric"),
    ] {
        let err = ok(bad).expect_err(bad);
        assert!(err.contains(why), "{bad}: {err}");
    }
    assert!(expand_grafana("rate(x[$window])").is_err());
}
