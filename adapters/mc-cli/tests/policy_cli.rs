//! End-to-end tests of `mc policy` on the shipped packs and on broken ones.

mod common;

use common::{TempDir, mc, run};

use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn policy() -> PathBuf {
    repo().join("policy")
}

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

#[test]
fn shipped_packs_pass_the_gate_with_coverage_and_flake_tracking() {
    let dir = TempDir::new("shipped_pack");
    let history = dir.path().join("history.jsonl");
    let (code, out, err) = run(mc()
        .args(["policy", "test"])
        .arg(policy())
        .args([
            "--coverage",
            "--threshold",
            "85",
            "--runs",
            "3",
            "--seed",
            "42",
            "--history",
        ])
        .arg(&history));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("seed: 42"), "{out}");
    assert!(out.contains("coverage: "), "{out}");
    assert!(out.contains("flake rate: 0.00%"), "{out}");
    assert!(!out.contains("FAIL"), "{out}");
    let lines = std::fs::read_to_string(&history).expect("history written");
    assert_eq!(lines.lines().count(), 1);
    let record: serde_json::Value = serde_json::from_str(lines.trim()).expect("json line");
    assert_eq!(record["runs"], 3);
    assert_eq!(record["seed"], 42);

    let out_dir = dir.path().join("report");
    let (code, out, err) = run(mc()
        .args(["policy", "report", "--history"])
        .arg(&history)
        .arg("--out")
        .arg(&out_dir));
    assert_eq!(code, 0, "{out}{err}");
    let md = std::fs::read_to_string(out_dir.join("policy-qa-report.md")).expect("markdown");
    assert!(md.contains("## Flake rate over time"));
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out_dir.join("policy-qa-report.json")).expect("json"),
    )
    .expect("valid json");
    assert_eq!(json["records"], 1);
}

#[test]
fn coverage_json_is_opa_shaped_and_threshold_fails_with_exit_2() {
    let (code, out, err) = run(mc()
        .args(["policy", "test"])
        .arg(policy().join("access"))
        .args(["--coverage", "--format", "json"]));
    assert_eq!(code, 0, "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).expect("coverage json on stdout");
    assert!(report["coverage"].as_f64().expect("total") >= 85.0);
    let files = report["files"].as_object().expect("files");
    let (_, file) = files.iter().next().expect("a file");
    assert!(file["covered_lines"].as_u64().expect("covered") > 0);
    assert!(file["covered"][0]["start"]["row"].is_u64());

    // A pack with an untested rule falls under a 100 % threshold.
    let dir = TempDir::new("coverage_jso");
    write(
        dir.path(),
        "p/p.rego",
        "package p\n\nallow if {\n\tinput.x == 1\n}\n\nunused if {\n\tinput.y == 2\n}\n\ntest_allow if allow with input as {\"x\": 1}\n",
    );
    let (code, out, _) = run(mc()
        .args(["policy", "test"])
        .arg(dir.path())
        .args(["--threshold", "100"]));
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("below the threshold"), "{out}");
}

#[test]
fn machine_formats() {
    let dir = TempDir::new("machine_form");
    write(
        dir.path(),
        "p/p_test.rego",
        "package p\n\ntest_ok if true\n\ntest_bad if false\n\ntodo_test_later if false\n",
    );
    let (code, out, _) = run(mc()
        .args(["policy", "test"])
        .arg(dir.path())
        .args(["--format", "junit"]));
    assert_eq!(code, 2);
    assert!(out.starts_with("<?xml"), "{out}");
    assert!(
        out.contains("tests=\"3\" failures=\"1\" errors=\"0\" skipped=\"1\""),
        "{out}"
    );

    let (_, out, _) = run(mc()
        .args(["policy", "test"])
        .arg(dir.path())
        .args(["--format", "tap"]));
    assert!(out.contains("not ok 2 - data.p.test_bad"), "{out}");
    assert!(out.contains("# SKIP"), "{out}");

    let (_, out, _) = run(mc()
        .args(["policy", "test"])
        .arg(dir.path())
        .args(["--format", "sarif"]));
    let sarif: serde_json::Value = serde_json::from_str(&out).expect("sarif json");
    assert_eq!(sarif["runs"][0]["results"][0]["ruleId"], "data.p.test_bad");

    let (_, out, _) = run(mc()
        .args(["policy", "test"])
        .arg(dir.path())
        .args(["--format", "json"]));
    let results: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(results[1]["fail"], true);
    assert_eq!(results[2]["skip"], true);
}

#[test]
fn eval_is_conftest_style() {
    let fixtures = policy().join("residency/fixtures");
    let (code, out, err) = run(mc()
        .args(["policy", "eval", "--pack"])
        .arg(policy().join("residency"))
        .arg("--input")
        .arg(fixtures.join("backfill_target_out_of_region.json")));
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("FAIL - "), "{out}");
    assert!(out.contains("residency - backfill target region us-east-1 is not allowed for tenant acme (deny_backfill_target)"), "{out}");

    let (code, out, _) = run(mc()
        .args(["policy", "eval", "--pack"])
        .arg(policy())
        .args(["--namespace", "residency", "--format", "json", "--input"])
        .arg(fixtures.join("cross_region_read.json")));
    assert_eq!(code, 0, "warnings alone pass: {out}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v.as_array().expect("array").len(), 1);
    assert_eq!(v[0]["namespace"], "residency");
    assert_eq!(v[0]["warnings"][0]["rule"], "warn_cross_region");

    let (code, _, _) = run(mc()
        .args(["policy", "eval", "--fail-on-warn", "--pack"])
        .arg(policy().join("residency"))
        .arg("--input")
        .arg(fixtures.join("cross_region_read.json")));
    assert_eq!(code, 1);

    let (code, _, err) = run(mc()
        .args(["policy", "eval", "--namespace", "nope", "--pack"])
        .arg(policy().join("residency"))
        .arg("--input")
        .arg(fixtures.join("in_region.json")));
    assert_eq!(code, 2);
    assert!(err.contains("namespace `nope` not found"), "{err}");
}

#[test]
fn bad_inputs_exit_2_with_a_clear_message() {
    let dir = TempDir::new("bad_inputs_e");
    let d = dir.path();
    write(
        d,
        "syntax/s.rego",
        "package s\n\nallow if {\n\tinput.x ==\n}\n",
    );
    write(
        d,
        "fixture/f.rego",
        "package f\n\ndeny contains \"x\" if input.x\n",
    );
    write(d, "fixture/fixtures/a.json", "{not json");
    write(d, "fixture/fixtures/a.expected.json", "{}");
    write(
        d,
        "builtin/b.rego",
        "package b\n\nallow if {\n\tjwt.nope(input.t)\n}\n",
    );
    write(
        d,
        "loop/l_test.rego",
        "package l\n\ntest_loop if {\n\tsome i in numbers.range(1, 3000)\n\tsome j in numbers.range(1, 3000)\n\tsome k in numbers.range(1, 3000)\n\ti + j + k < 0\n}\n\ntest_after if true\n",
    );
    write(d, "input.txt", "this is not json");

    let cases = [
        ("syntax", "s.rego:5:1: rego syntax error"),
        (
            "fixture",
            "a.json: not valid JSON: key must be a string at line 1 column 2",
        ),
        (
            "builtin",
            "b.rego:4:5: unknown builtin or function `jwt.nope`",
        ),
    ];
    for (sub, expected) in cases {
        let (code, out, err) = run(mc().args(["policy", "test"]).arg(d.join(sub)));
        assert_eq!(code, 2, "{sub}: {out}{err}");
        assert!(err.contains(expected), "{sub}: {err}");
        assert!(!err.contains("panicked"), "{sub}: {err}");
    }

    let (code, out, err) = run(mc()
        .args(["policy", "test"])
        .arg(d.join("loop"))
        .args(["--timeout", "200ms"]));
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.contains("data.l.test_loop: ERROR"), "{out}");
    assert!(out.contains("timed out after 200 ms"), "{out}");
    assert!(
        out.contains("PASS: 1/2"),
        "the suite goes on after a timeout: {out}"
    );

    let (code, _, err) = run(mc()
        .args(["policy", "eval", "--pack"])
        .arg(policy().join("access"))
        .arg("--input")
        .arg(d.join("input.txt")));
    assert_eq!(code, 2);
    assert!(
        err.contains("input.txt") && err.contains("not valid JSON"),
        "{err}"
    );

    let (code, _, err) = run(mc()
        .args(["policy", "report", "--history"])
        .arg(d.join("input.txt")));
    assert_eq!(code, 2);
    assert!(err.contains("input.txt:1: bad history record"), "{err}");

    let (code, _, err) = run(mc().args(["policy", "test"]).arg(d.join("missing")));
    assert_eq!(code, 2);
    assert!(err.contains("cannot read"), "{err}");
}
