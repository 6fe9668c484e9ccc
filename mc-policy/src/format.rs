//! Rendering a [`SuiteRun`] as `pretty` text (like `opa test`), `json` (OPA's test
//! result shape), `junit` XML for CI systems, `tap` (TAP 13) and `sarif` 2.1.0 for code
//! scanning, with the failing test's or rule's id as the SARIF rule id.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::str::FromStr;

use serde_json::json;

use crate::coverage::CoverageReport;
use crate::runner::{Kind, Status, SuiteRun, TestResult};

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Human-readable, like `opa test`.
    Pretty,
    /// JSON array of results in OPA's `opa test --format json` shape (plus `kind`, `message`).
    Json,
    /// JUnit XML.
    Junit,
    /// Test Anything Protocol, version 13.
    Tap,
    /// SARIF 2.1.0.
    Sarif,
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pretty" => Ok(Format::Pretty),
            "json" => Ok(Format::Json),
            "junit" => Ok(Format::Junit),
            "tap" => Ok(Format::Tap),
            "sarif" => Ok(Format::Sarif),
            other => Err(format!(
                "unknown format `{other}` (expected pretty, json, junit, tap or sarif)"
            )),
        }
    }
}

/// Renders `run` in `format`. `verbose` lists passing tests too (pretty only).
pub fn render(run: &SuiteRun, format: Format, verbose: bool) -> String {
    match format {
        Format::Pretty => pretty(run, verbose),
        Format::Json => json_results(run),
        Format::Junit => junit(run),
        Format::Tap => tap(run),
        Format::Sarif => sarif(run),
    }
}

fn pretty(run: &SuiteRun, verbose: bool) -> String {
    let mut s = String::new();
    let mut current_file = String::new();
    for r in &run.results {
        if r.status == Status::Pass && !verbose {
            continue;
        }
        if r.file != current_file {
            let _ = writeln!(s, "{}:", r.file);
            current_file.clone_from(&r.file);
        }
        let _ = write!(s, "{}: {}", r.id(), r.status.label());
        if r.status != Status::Skip {
            let _ = write!(s, " ({})", human_duration(r.duration));
        }
        s.push('\n');
        if let Some(m) = r.message.as_ref().filter(|_| r.status != Status::Pass) {
            let _ = writeln!(s, "  {m}");
        }
    }
    let summary = run.summary();
    let total = summary.total();
    if !s.is_empty() {
        s.push_str(&"-".repeat(80));
        s.push('\n');
    }
    for (label, n) in [
        ("PASS", summary.passed),
        ("FAIL", summary.failed),
        ("ERROR", summary.errors),
        ("SKIPPED", summary.skipped),
    ] {
        if n > 0 {
            let _ = writeln!(s, "{label}: {n}/{total}");
        }
    }
    if total == 0 {
        s.push_str("no tests found\n");
    }
    s
}

/// Pretty coverage summary: total and per file.
pub fn render_coverage_summary(report: &CoverageReport) -> String {
    let mut s = String::new();
    for (file, f) in &report.files {
        let _ = writeln!(
            s,
            "  {file}: {:.2}% ({}/{} lines)",
            f.coverage,
            f.covered_lines,
            f.covered_lines + f.not_covered_lines
        );
    }
    let _ = writeln!(
        s,
        "coverage: {:.2}% ({}/{} lines)",
        report.coverage,
        report.covered_lines,
        report.covered_lines + report.not_covered_lines
    );
    s
}

fn human_duration(d: std::time::Duration) -> String {
    let us = d.as_micros();
    if us >= 1_000_000 {
        format!("{:.2}s", d.as_secs_f64())
    } else if us >= 1_000 {
        format!("{:.2}ms", d.as_secs_f64() * 1_000.0)
    } else {
        format!("{us}µs")
    }
}

fn json_results(run: &SuiteRun) -> String {
    let items: Vec<serde_json::Value> = run
        .results
        .iter()
        .map(|r| {
            let mut v = json!({
                "location": {"file": r.file, "row": r.line, "col": r.col},
                "package": format!("data.{}", r.package),
                "name": r.name,
                "kind": r.kind,
                "status": r.status,
                "duration": u64::try_from(r.duration.as_nanos()).unwrap_or(u64::MAX),
            });
            match r.status {
                Status::Fail => v["fail"] = json!(true),
                Status::Error => {
                    v["error"] = json!({"message": r.message.clone().unwrap_or_default()});
                }
                Status::Skip => v["skip"] = json!(true),
                Status::Pass => {}
            }
            if let Some(m) = &r.message {
                v["message"] = json!(m);
            }
            v
        })
        .collect();
    serde_json::to_string_pretty(&items).unwrap_or_else(|_| "[]".into())
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 forbids most control characters even escaped.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

fn classname(r: &TestResult) -> String {
    match r.kind {
        Kind::Test => format!("data.{}", r.package),
        Kind::Fixture => format!("{}.fixtures", r.pack),
    }
}

fn junit(run: &SuiteRun) -> String {
    let mut suites: BTreeMap<&str, Vec<&TestResult>> = BTreeMap::new();
    for r in &run.results {
        suites.entry(r.pack.as_str()).or_default().push(r);
    }
    let summary = run.summary();
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        s,
        "<testsuites name=\"mc policy test\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{:.6}\">",
        summary.total(),
        summary.failed,
        summary.errors,
        summary.skipped,
        run.elapsed.as_secs_f64()
    );
    for (pack, results) in suites {
        let owned: Vec<TestResult> = results.iter().map(|r| (*r).clone()).collect();
        let sum = crate::runner::Summary::of(&owned);
        let time: f64 = results.iter().map(|r| r.duration.as_secs_f64()).sum();
        let _ = writeln!(
            s,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{time:.6}\">",
            xml_escape(pack),
            sum.total(),
            sum.failed,
            sum.errors,
            sum.skipped
        );
        for r in results {
            let _ = write!(
                s,
                "    <testcase classname=\"{}\" name=\"{}\" file=\"{}\" line=\"{}\" time=\"{:.6}\"",
                xml_escape(&classname(r)),
                xml_escape(&r.name),
                xml_escape(&r.file),
                r.line,
                r.duration.as_secs_f64()
            );
            let msg = xml_escape(r.message.as_deref().unwrap_or(""));
            match r.status {
                Status::Pass => s.push_str("/>\n"),
                Status::Fail => {
                    let _ = writeln!(
                        s,
                        ">\n      <failure message=\"{msg}\" type=\"fail\">{msg}</failure>\n    </testcase>"
                    );
                }
                Status::Error => {
                    let _ = writeln!(
                        s,
                        ">\n      <error message=\"{msg}\" type=\"error\">{msg}</error>\n    </testcase>"
                    );
                }
                Status::Skip => {
                    let _ = writeln!(s, ">\n      <skipped message=\"todo\"/>\n    </testcase>");
                }
            }
        }
        s.push_str("  </testsuite>\n");
    }
    s.push_str("</testsuites>\n");
    s
}

fn tap(run: &SuiteRun) -> String {
    let mut s = String::from("TAP version 13\n");
    let _ = writeln!(s, "1..{}", run.results.len());
    for (i, r) in run.results.iter().enumerate() {
        let n = i + 1;
        // '#' starts a TAP directive; keep it out of descriptions.
        let desc = r.id().replace('#', "\\#");
        match r.status {
            Status::Pass => {
                let _ = writeln!(s, "ok {n} - {desc}");
            }
            Status::Skip => {
                let _ = writeln!(s, "ok {n} - {desc} # SKIP todo");
            }
            Status::Fail | Status::Error => {
                let _ = writeln!(s, "not ok {n} - {desc}");
                let message = serde_json::to_string(r.message.as_deref().unwrap_or(""))
                    .unwrap_or_else(|_| "\"\"".into());
                let _ = writeln!(
                    s,
                    "  ---\n  message: {message}\n  severity: {}\n  at: {}:{}\n  ...",
                    if r.status == Status::Fail {
                        "fail"
                    } else {
                        "error"
                    },
                    r.file,
                    r.line
                );
            }
        }
    }
    s
}

/// The SARIF rule id of a failing result: the test rule for tests; for a fixture, the
/// policy rule that produced an unexpected decision, else the fixture's own id.
pub fn sarif_rule_id(r: &TestResult) -> String {
    match r.kind {
        Kind::Test => r.id(),
        Kind::Fixture => r.rules.first().cloned().unwrap_or_else(|| r.id()),
    }
}

fn sarif(run: &SuiteRun) -> String {
    let failing: Vec<&TestResult> = run
        .results
        .iter()
        .filter(|r| matches!(r.status, Status::Fail | Status::Error))
        .collect();
    let mut rule_ids: Vec<String> = failing.iter().map(|r| sarif_rule_id(r)).collect();
    rule_ids.sort();
    rule_ids.dedup();
    let rules: Vec<serde_json::Value> = rule_ids
        .iter()
        .map(|id| {
            json!({
                "id": id,
                "name": id.rsplit(['.', '/']).next().unwrap_or(id),
                "shortDescription": {"text": format!("policy check {id}")},
            })
        })
        .collect();
    let results: Vec<serde_json::Value> = failing
        .iter()
        .map(|r| {
            let id = sarif_rule_id(r);
            let index = rule_ids.iter().position(|x| *x == id).unwrap_or(0);
            json!({
                "ruleId": id,
                "ruleIndex": index,
                "level": "error",
                "kind": "fail",
                "message": {"text": format!("{} {}: {}", r.id(), r.status.label(), r.message.as_deref().unwrap_or(""))},
                "locations": [{"physicalLocation": {
                    "artifactLocation": {"uri": r.file.replace('\\', "/")},
                    "region": {"startLine": r.line.max(1), "startColumn": r.col.max(1)}
                }}],
            })
        })
        .collect();
    let doc = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "mc-policy",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://github.com/maestro-conductor/mc",
                "rules": rules,
            }},
            "results": results,
        }],
    });
    serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "{}".into())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::runner::Kind;

    fn result(name: &str, status: Status, kind: Kind) -> TestResult {
        TestResult {
            kind,
            pack: "access".into(),
            package: "access".into(),
            name: name.into(),
            file: "policy/access/access_test.rego".into(),
            line: 7,
            col: 1,
            status,
            message: (status != Status::Pass).then(|| "bad <thing> & \"x\"".into()),
            rules: if kind == Kind::Fixture {
                vec!["data.access.deny_role".into()]
            } else {
                vec![]
            },
            duration: Duration::from_micros(1500),
        }
    }

    fn run() -> SuiteRun {
        SuiteRun {
            results: vec![
                result("test_ok", Status::Pass, Kind::Test),
                result("test_bad", Status::Fail, Kind::Test),
                result("test_err", Status::Error, Kind::Test),
                result("todo_test_x", Status::Skip, Kind::Test),
                result("viewer_cancel", Status::Fail, Kind::Fixture),
            ],
            execution_order: vec![],
            coverage: None,
            seed: None,
            elapsed: Duration::from_millis(3),
        }
    }

    #[test]
    fn formats_parse() {
        assert_eq!("sarif".parse::<Format>(), Ok(Format::Sarif));
        assert!("xml".parse::<Format>().is_err());
    }

    #[test]
    fn pretty_has_opa_style_summary() {
        let out = render(&run(), Format::Pretty, false);
        assert!(out.contains("data.access.test_bad: FAIL (1.50ms)"), "{out}");
        assert!(!out.contains("test_ok"), "passes hidden unless verbose");
        assert!(
            out.contains("PASS: 1/5\nFAIL: 2/5\nERROR: 1/5\nSKIPPED: 1/5"),
            "{out}"
        );
        assert!(render(&run(), Format::Pretty, true).contains("data.access.test_ok: PASS"));
    }

    #[test]
    fn json_is_opa_shaped() {
        let v: serde_json::Value =
            serde_json::from_str(&render(&run(), Format::Json, false)).expect("json");
        assert_eq!(v[1]["package"], "data.access");
        assert_eq!(v[1]["fail"], true);
        assert_eq!(v[1]["location"]["row"], 7);
        assert_eq!(v[3]["skip"], true);
        assert!(v[2]["error"]["message"].is_string());
        assert_eq!(v[0]["duration"], 1_500_000);
    }

    #[test]
    fn junit_escapes_and_counts() {
        let out = render(&run(), Format::Junit, false);
        assert!(
            out.contains("tests=\"5\" failures=\"2\" errors=\"1\" skipped=\"1\""),
            "{out}"
        );
        assert!(out.contains("bad &lt;thing&gt; &amp; &quot;x&quot;"));
        assert!(out.contains("<skipped message=\"todo\"/>"));
        assert!(out.contains("classname=\"access.fixtures\""));
    }

    #[test]
    fn tap_lines() {
        let out = render(&run(), Format::Tap, false);
        assert!(out.starts_with("TAP version 13\n1..5\nok 1 - data.access.test_ok\nnot ok 2 - data.access.test_bad\n"), "{out}");
        assert!(out.contains("ok 4 - data.access.todo_test_x # SKIP todo"));
    }

    #[test]
    fn sarif_uses_specific_rule_ids() {
        let v: serde_json::Value =
            serde_json::from_str(&render(&run(), Format::Sarif, false)).expect("json");
        assert_eq!(v["version"], "2.1.0");
        let results = v["runs"][0]["results"].as_array().expect("results");
        assert_eq!(results.len(), 3);
        let ids: Vec<&str> = results
            .iter()
            .filter_map(|r| r["ruleId"].as_str())
            .collect();
        assert_eq!(
            ids,
            [
                "data.access.test_bad",
                "data.access.test_err",
                "data.access.deny_role"
            ]
        );
        let rules = v["runs"][0]["tool"]["driver"]["rules"]
            .as_array()
            .expect("rules");
        assert_eq!(rules.len(), 3);
        for r in results {
            let idx = r["ruleIndex"].as_u64().expect("index") as usize;
            assert_eq!(rules[idx]["id"], r["ruleId"]);
        }
        assert_eq!(
            results[0]["locations"][0]["physicalLocation"]["region"]["startLine"],
            7
        );
    }
}
