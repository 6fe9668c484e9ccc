//! The packs shipped in `policy/`: every test and golden fixture passes, coverage meets
//! the CI threshold, and the typed access API encodes the console rules.

use std::path::PathBuf;

use mc_policy::{
    AccessActor, AccessExecution, AccessInput, AccessPolicy, Kind, LoadOptions, Namespaces,
    PolicyError, RunOptions, Status, evaluate, load_suite, parse_input, run_suite,
};

fn policy_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../policy")
}

#[test]
fn every_shipped_test_and_fixture_passes_with_coverage_over_85() {
    let packs = load_suite(&policy_dir(), LoadOptions::default()).expect("packs load");
    let names: Vec<&str> = packs.iter().map(|p| p.name()).collect();
    assert_eq!(names, ["access", "budget", "pii", "quotas", "residency"]);
    let run = run_suite(
        &packs,
        &RunOptions {
            coverage: true,
            ..RunOptions::default()
        },
    )
    .expect("runs");
    let bad: Vec<String> = run
        .results
        .iter()
        .filter(|r| r.status != Status::Pass)
        .map(|r| {
            format!(
                "{} {:?}: {}",
                r.id(),
                r.status,
                r.message.clone().unwrap_or_default()
            )
        })
        .collect();
    assert!(bad.is_empty(), "{bad:#?}");
    for pack in &packs {
        let tests = run
            .results
            .iter()
            .filter(|r| r.pack == pack.name() && r.kind == Kind::Test)
            .count();
        let fixtures = run
            .results
            .iter()
            .filter(|r| r.pack == pack.name() && r.kind == Kind::Fixture)
            .count();
        assert!(tests >= 5, "{}: {tests} tests", pack.name());
        assert!(fixtures >= 6, "{}: {fixtures} fixtures", pack.name());
    }
    let coverage = run.coverage.expect("coverage");
    assert!(coverage.coverage >= 85.0, "coverage {}", coverage.coverage);
    for (file, f) in &coverage.files {
        assert!(f.coverage >= 85.0, "{file}: {}", f.coverage);
    }
}

#[test]
fn every_deny_and_warn_rule_has_a_fixture_that_fires_it() {
    let packs = load_suite(&policy_dir(), LoadOptions::default()).expect("packs load");
    for pack in &packs {
        let mut fired = std::collections::BTreeSet::new();
        for fixture in pack.fixtures() {
            for ns in evaluate(pack, &fixture.input, &Namespaces::All).expect("eval") {
                for r in ns.failures.iter().chain(&ns.warnings).chain(&ns.exceptions) {
                    fired.insert(r.rule.clone());
                }
            }
        }
        for ns in pack.namespaces() {
            for rule in pack.rule_names(&ns) {
                if rule.starts_with("deny")
                    || rule.starts_with("warn")
                    || rule.starts_with("violation")
                {
                    assert!(
                        fired.contains(&rule),
                        "{}: no fixture fires {rule}",
                        pack.name()
                    );
                }
            }
        }
        // …and at least one fixture of each pack is clean (the allow path).
        let clean = pack
            .fixtures()
            .iter()
            .any(|f| f.expected.deny.is_empty() && f.expected.warn.is_empty());
        assert!(clean, "{}: no allow-path fixture", pack.name());
    }
}

fn input(roles: &[&str], action: &str) -> AccessInput {
    AccessInput {
        actor: AccessActor {
            sub: "alice@company".into(),
            tenant: "acme".into(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        },
        action: action.into(),
        execution: AccessExecution {
            id: "exec_123".into(),
            state: "failed".into(),
        },
    }
}

#[test]
fn access_policy_encodes_the_console_rules() {
    let policy = AccessPolicy::load(&policy_dir().join("access")).expect("loads");
    for action in ["cancel", "retry", "replay"] {
        let d = policy
            .decide(&input(&["operator"], action))
            .expect("decides");
        assert!(d.allow, "operator {action}");
        assert!(d.step_up_required, "step-up for {action}");
        let d = policy.decide(&input(&["viewer"], action)).expect("decides");
        assert!(!d.allow, "viewer {action}");
        assert!(d.step_up_required);
        assert_eq!(
            d.reasons,
            [format!(
                "actor alice@company with roles [\"viewer\"] may not {action}"
            )]
        );
    }
    // Same engine, alternating inputs: no state leaks between decisions.
    assert!(
        policy
            .decide(&input(&["operator"], "cancel"))
            .expect("ok")
            .allow
    );
    assert!(!policy.decide(&input(&[], "cancel")).expect("ok").allow);
    let d = policy.decide(&input(&["viewer"], "view")).expect("ok");
    assert!(d.allow && !d.step_up_required);
}

#[test]
fn access_policy_rejects_empty_fields_by_name() {
    let policy = AccessPolicy::load(&policy_dir().join("access")).expect("loads");
    let mut i = input(&["operator"], "cancel");
    i.actor.tenant = " ".into();
    match policy.decide(&i) {
        Err(PolicyError::InvalidInput { field, .. }) => assert_eq!(field, "actor.tenant"),
        other => panic!("unexpected {other:?}"),
    }
    let mut i = input(&["operator"], "");
    i.execution.id = String::new();
    assert!(
        matches!(policy.decide(&i), Err(PolicyError::InvalidInput { ref field, .. }) if field == "action")
    );
}

#[test]
fn access_policy_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<AccessPolicy>();
}

#[test]
fn conftest_eval_of_a_denied_input() {
    let packs = load_suite(&policy_dir().join("residency"), LoadOptions::default()).expect("loads");
    let inp = parse_input(
        r#"{"tenant": {"id": "acme", "allowed_regions": ["eu-west-1"]},
            "execution": {"id": "e1", "region": "eu-west-1"},
            "backfill": {"source_region": "eu-west-1", "target_region": "us-east-1"}}"#,
    )
    .expect("json");
    let r = evaluate(&packs[0], &inp, &Namespaces::Only(vec!["residency".into()])).expect("eval");
    assert_eq!(r[0].failures.len(), 1);
    assert_eq!(r[0].failures[0].rule, "deny_backfill_target");
    assert_eq!(r[0].failures[0].namespace, "residency");
}

#[test]
fn compiled_access_decisions_match_the_interpreter() {
    let dir = policy_dir().join("access");
    let policy = AccessPolicy::load(&dir).expect("loads");
    assert!(
        policy.is_compiled(),
        "the access pack compiles to an RVM program"
    );
    let pack = mc_policy::Pack::load(&dir).expect("loads");
    let mut engine = pack.engine();
    let mut checked = 0;
    for roles in [
        &[][..],
        &["operator"],
        &["viewer"],
        &["admin"],
        &["viewer", "operator"],
        &["auditor"],
    ] {
        for action in ["cancel", "retry", "replay", "view", "delete", ""] {
            for sub in ["alice@company", " "] {
                let mut i = input(roles, action);
                i.actor.sub = sub.into();
                let compiled = policy.decide(&i);
                if action.is_empty() || sub.trim().is_empty() {
                    assert!(
                        compiled.is_err(),
                        "empty fields are rejected before evaluation"
                    );
                    continue;
                }
                let compiled = compiled.expect("decides");
                engine.set_input(
                    regorus::Value::from_json_str(&serde_json::to_string(&i).expect("json"))
                        .expect("value"),
                );
                let interpreted = engine
                    .eval_rule(mc_policy::DECISION_RULE.to_owned())
                    .expect("interpreter decides");
                let interpreted: serde_json::Value =
                    serde_json::from_str(&interpreted.to_json_str().expect("json")).expect("json");
                assert_eq!(interpreted["allow"], compiled.allow, "{roles:?} {action}");
                assert_eq!(
                    interpreted["step_up_required"], compiled.step_up_required,
                    "{roles:?} {action}"
                );
                assert_eq!(
                    interpreted["reasons"],
                    serde_json::json!(compiled.reasons),
                    "{roles:?} {action}"
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 30);
}
