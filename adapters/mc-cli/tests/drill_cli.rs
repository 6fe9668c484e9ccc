//! End-to-end tests of `mc drill run` and `mc drill verify`: every drill passes on
//! the embedded defaults, its evidence verifies with the signing key, and any edit
//! to a report, an audit line or an artifact — or the wrong key — is caught.

mod common;

use common::{TempDir, mc, run};

#[test]
fn every_drill_passes_and_its_evidence_verifies_until_tampered_with() {
    let dir = TempDir::new("drill");
    let out = dir.path().join("evidence");
    let keygen = dir.path().join("k.pem");
    let (code, stdout, stderr) = run(mc().args(["evidence", "keygen", "--out"]).arg(&keygen));
    assert_eq!(code, 0, "{stdout}{stderr}");
    let (code, stdout, stderr) = run(mc()
        .args(["drill", "run", "all", "--out"])
        .arg(&out)
        .arg("--key")
        .arg(&keygen));
    assert_eq!(code, 0, "{stdout}{stderr}");
    for drill in [
        "egress",
        "stepup-outage",
        "drift-storm",
        "rollback",
        "lifecycle",
    ] {
        let report: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join(drill).join("report.json")).unwrap())
                .unwrap();
        assert_eq!(report["passed"], true, "{drill}: {report:#}");
        assert!(!report["checks"].as_array().unwrap().is_empty(), "{drill}");
        assert!(
            stdout.contains(&format!("drill {drill}:")),
            "{drill} not run: {stdout}"
        );
    }
    let egress: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("egress/report.json")).unwrap()).unwrap();
    let zero_escapes = egress["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "0 escapes")
        .unwrap();
    assert_eq!(zero_escapes["passed"], true);

    let public = dir.path().join("k.pem.pub");
    let verify = |key: &std::path::Path| {
        run(mc()
            .args(["drill", "verify"])
            .arg(&out)
            .arg("--key")
            .arg(key))
    };
    let (code, stdout, _) = verify(&public);
    assert_eq!(code, 0, "{stdout}");
    assert_eq!(stdout.matches("signature valid, drill passed").count(), 5);

    // Each kind of tampering fails verification, naming the drill.
    let tamper = |file: &str, from: &str, to: &str| {
        // Edits `file`, verifies, and puts it back.
        let path = out.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{file} has no {from:?}");
        std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
        let (code, stdout, _) = verify(&public);
        std::fs::write(&path, text).unwrap();
        (code, stdout)
    };
    let (code, stdout) = tamper(
        "rollback/report.json",
        "\"passed\": true",
        "\"passed\": false",
    );
    assert_eq!(code, 1);
    assert!(
        stdout.contains("FAIL  rollback: report.json differs"),
        "{stdout}"
    );
    let (code, stdout) = tamper("rollback/audit.jsonl", "transient_error", "nothing to see");
    assert_eq!(code, 1);
    assert!(stdout.contains("FAIL  rollback: audit chain"), "{stdout}");
    let note: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("egress/egress-violations.json")).unwrap())
            .unwrap();
    assert!(note["refused"].as_u64().unwrap() > 20, "{note}");
    let refused = format!("\"refused\": {}", note["refused"]);
    let (code, stdout) = tamper("egress/egress-violations.json", &refused, "\"refused\": 0");
    assert_eq!(code, 1);
    assert!(
        stdout.contains("FAIL  egress: artifact egress-violations.json"),
        "{stdout}"
    );
    let (code, _) = tamper(
        "drift-storm/report.dsse.json",
        "\"sig\": \"",
        "\"sig\": \"AAAA",
    );
    assert_eq!(code, 1);
    // Evidence filed under another drill's name is refused.
    let copy = out.join("lifecycle-copy");
    std::fs::create_dir_all(&copy).unwrap();
    for f in ["report.json", "report.dsse.json", "audit.jsonl"] {
        std::fs::copy(out.join("rollback").join(f), copy.join(f)).unwrap();
    }
    let (code, stdout, _) = verify(&public);
    assert_eq!(code, 1);
    assert!(
        stdout.contains("FAIL  lifecycle-copy: the signed report is of drill \"rollback\""),
        "{stdout}"
    );
    std::fs::remove_dir_all(&copy).unwrap();
    // Untampered again: valid.
    assert_eq!(verify(&public).0, 0);

    // Another key: every report refused.
    let other = dir.path().join("other.pem");
    assert_eq!(
        run(mc().args(["evidence", "keygen", "--out"]).arg(&other)).0,
        0
    );
    let (code, stdout, _) = verify(&dir.path().join("other.pem.pub"));
    assert_eq!(code, 1);
    assert_eq!(stdout.matches("FAIL").count(), 5, "{stdout}");
}

#[test]
fn a_fresh_key_is_written_beside_the_evidence_and_bad_arguments_are_refused() {
    let dir = TempDir::new("drill-fresh");
    let out = dir.path().join("ev");
    let (code, stdout, stderr) = run(mc().args(["drill", "run", "rollback", "--out"]).arg(&out));
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(out.join("drill-key.pub").is_file());
    let (code, stdout, _) = run(mc()
        .args(["drill", "verify"])
        .arg(&out)
        .arg("--key")
        .arg(out.join("drill-key.pub")));
    assert_eq!(code, 0, "{stdout}");
    // Evidence is written once: the same drill again, or a fresh key over the filed
    // one, is refused and writes nothing.
    let (code, _, stderr) = run(mc().args(["drill", "run", "rollback", "--out"]).arg(&out));
    assert_eq!(code, 2);
    assert!(stderr.contains("already holds evidence"), "{stderr}");
    let key_before = std::fs::read(out.join("drill-key.pub")).unwrap();
    let (code, _, stderr) = run(mc().args(["drill", "run", "egress", "--out"]).arg(&out));
    assert_eq!(code, 2);
    assert!(
        stderr.contains("already holds another run's key"),
        "{stderr}"
    );
    assert!(!out.join("egress").exists());
    assert_eq!(
        std::fs::read(out.join("drill-key.pub")).unwrap(),
        key_before
    );

    // Nothing to verify, and a key that is not a key: exit 2 with the reason.
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let (code, _, stderr) = run(mc()
        .args(["drill", "verify"])
        .arg(&empty)
        .arg("--key")
        .arg(out.join("drill-key.pub")));
    assert_eq!(code, 2);
    assert!(stderr.contains("no drill reports"), "{stderr}");
    let (code, _, stderr) = run(mc()
        .args(["drill", "run", "egress", "--out"])
        .arg(dir.path().join("x"))
        .arg("--key")
        .arg(out.join("rollback/report.json")));
    assert_eq!(code, 2);
    assert!(stderr.contains("is not an ed25519 PKCS#8 key"), "{stderr}");
}

/// The drill evidence filed in the repository (`docs/evidence/drills-*`) still
/// verifies with the public key filed beside it, and every drill in it passed.
#[test]
fn the_filed_drill_evidence_verifies() {
    let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/evidence");
    let mut runs: Vec<_> = std::fs::read_dir(&docs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("drills-"))
        })
        .collect();
    runs.sort();
    assert!(
        !runs.is_empty(),
        "no drills-* directory in {}",
        docs.display()
    );
    for run_dir in runs {
        let (code, stdout, stderr) = run(mc()
            .args(["drill", "verify"])
            .arg(&run_dir)
            .arg("--key")
            .arg(run_dir.join("drill-key.pub")));
        assert_eq!(code, 0, "{}: {stdout}{stderr}", run_dir.display());
        assert!(!stdout.contains("FAIL"), "{stdout}");
    }
}
