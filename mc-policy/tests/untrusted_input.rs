//! Property tests (fuzz-style) for everything the harness reads from outside: Rego
//! sources, fixture files, input documents, access requests and history lines. None of
//! them may make the crate panic; each bad one must come back as a typed error.

use std::path::{Path, PathBuf};

use mc_policy::{
    AccessActor, AccessExecution, AccessInput, AccessPolicy, LoadOptions, Namespaces, Pack,
    PolicyError, RunOptions, evaluate, load_suite, parse_history, parse_input, run_suite,
};
use proptest::prelude::*;

fn policy_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../policy")
}

fn shipped_source(pack: &str) -> String {
    std::fs::read_to_string(policy_dir().join(pack).join(format!("{pack}.rego")))
        .expect("shipped pack")
}

/// Fragments that exercise the parser's interesting paths.
fn rego_fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("package p\n".to_owned()),
        Just("import rego.v1\n".to_owned()),
        Just("allow if {\n".to_owned()),
        Just("}\n".to_owned()),
        Just("deny contains msg if input.x == 1\n".to_owned()),
        Just("test_a if true\n".to_owned()),
        Just("f(x) := x + 1\n".to_owned()),
        Just("v := f(1)\n".to_owned()),
        Just("w := crypto.x509.parse_certificates(input.c)\n".to_owned()),
        Just("some i in numbers.range(1, 10)\n".to_owned()),
        Just("x := [y | some y in input.z]\n".to_owned()),
        Just("default allow := false\n".to_owned()),
        Just("\"unterminated\n".to_owned()),
        Just("`raw`\n".to_owned()),
        Just("every k, v in input { k != v }\n".to_owned()),
        "[ -~\n\t]{0,40}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_as_rego_never_panics(text in "\\PC{0,200}") {
        let _ = Pack::from_sources("fuzz", &[("fuzz.rego".to_owned(), text)]);
    }

    #[test]
    fn spliced_rego_fragments_never_panic_and_run(frags in proptest::collection::vec(rego_fragment(), 0..12)) {
        let text = format!("package p\n\n{}", frags.concat());
        if let Ok(pack) = Pack::from_sources("fuzz", &[("fuzz.rego".to_owned(), text)]) {
            // Whatever loads must also run to a result for every test.
            let run = run_suite(std::slice::from_ref(&pack), &RunOptions {
                timeout: std::time::Duration::from_millis(500),
                coverage: true,
                seed: Some(1),
            });
            let run = run.expect("options are valid");
            prop_assert_eq!(run.results.len(), pack.tests().len());
        }
    }

    #[test]
    fn mutated_shipped_packs_never_panic(
        pack in prop_oneof![Just("access"), Just("residency"), Just("pii"), Just("budget"), Just("quotas")],
        cut in 0usize..4000,
        insert in "[{}()\\[\\]:=|\"` a-z0-9\n]{0,6}",
    ) {
        let mut src = shipped_source(pack);
        let at = src.char_indices().map(|(i, _)| i).nth(cut % src.chars().count().max(1)).unwrap_or(0);
        src.insert_str(at, &insert);
        match Pack::from_sources(pack, &[(format!("{pack}.rego"), src)]) {
            Ok(_) => {}
            Err(PolicyError::Syntax { file, .. }) | Err(PolicyError::UnknownFunction { file, .. }) => {
                prop_assert_eq!(file, format!("{pack}.rego"));
            }
            Err(other) => prop_assert!(false, "unexpected error kind: {other}"),
        }
    }

    #[test]
    fn arbitrary_input_documents_never_panic(text in "\\PC{0,120}") {
        let _ = parse_input(&text);
    }

    #[test]
    fn arbitrary_json_inputs_evaluate_or_error(json in arb_json(3)) {
        let packs = shipped_packs();
        let input = parse_input(&json.to_string()).expect("serde_json output is JSON");
        for pack in packs {
            // Packs must not error on odd shapes: undefined is fine, a crash is not.
            let r = evaluate(pack, &input, &Namespaces::All);
            prop_assert!(r.is_ok(), "{}: {:?}", pack.name(), r.err());
        }
    }

    #[test]
    fn arbitrary_access_requests_decide_or_name_the_field(
        sub in "\\PC{0,12}", tenant in "\\PC{0,12}",
        roles in proptest::collection::vec("[a-z]{0,8}", 0..4),
        action in "[a-z]{0,8}", id in "\\PC{0,8}", state in "[a-z]{0,8}",
    ) {
        let policy = access_policy();
        let input = AccessInput {
            actor: AccessActor { sub, tenant, roles: roles.clone() },
            action: action.clone(),
            execution: AccessExecution { id, state },
        };
        match policy.decide(&input) {
            Ok(d) => {
                // Writes always need step-up; only operator/admin may perform them.
                if ["cancel", "retry", "replay"].contains(&action.as_str()) {
                    prop_assert!(d.step_up_required);
                    let may = roles.iter().any(|r| r == "operator" || r == "admin");
                    prop_assert_eq!(d.allow, may);
                }
                if !d.allow { prop_assert!(!d.reasons.is_empty()); }
            }
            Err(PolicyError::InvalidInput { field, .. }) => {
                prop_assert!(["actor.sub", "actor.tenant", "action", "execution.id"].contains(&field.as_str()));
            }
            Err(other) => prop_assert!(false, "unexpected error: {other}"),
        }
    }

    #[test]
    fn arbitrary_fixture_files_never_panic(input in "\\PC{0,60}", expected in "\\PC{0,60}") {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(dir.path().join("p.rego"), "package p\n\ndeny contains \"x\" if input.x\n").expect("write");
        std::fs::create_dir(dir.path().join("fixtures")).expect("mkdir");
        std::fs::write(dir.path().join("fixtures/a.json"), &input).expect("write");
        std::fs::write(dir.path().join("fixtures/a.expected.json"), &expected).expect("write");
        match Pack::load(dir.path()) {
            Ok(pack) => {
                let run = run_suite(std::slice::from_ref(&pack), &RunOptions::default()).expect("runs");
                prop_assert_eq!(run.results.len(), 1);
            }
            Err(PolicyError::InvalidFixture { path, .. }) => prop_assert!(path.starts_with(dir.path())),
            Err(other) => prop_assert!(false, "unexpected error: {other}"),
        }
    }

    #[test]
    fn arbitrary_history_lines_never_panic(text in "\\PC{0,200}") {
        let _ = parse_history(Path::new("h.jsonl"), &text);
    }
}

fn arb_json(depth: u32) -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(|n| serde_json::json!(n)),
        (-1e12f64..1e12).prop_map(|f| serde_json::json!(f)),
        "[a-z_]{0,10}".prop_map(serde_json::Value::String),
    ];
    leaf.prop_recursive(depth, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("tenant".to_owned()),
                    Just("execution".to_owned()),
                    Just("actor".to_owned()),
                    Just("usage".to_owned()),
                    Just("artifacts".to_owned()),
                    Just("budget".to_owned()),
                    Just("region".to_owned()),
                    Just("tags".to_owned()),
                    Just("id".to_owned()),
                    "[a-z_]{1,8}",
                ],
                inner,
                0..4,
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn shipped_packs() -> &'static [Pack] {
    static PACKS: std::sync::OnceLock<Vec<Pack>> = std::sync::OnceLock::new();
    PACKS.get_or_init(|| {
        load_suite(
            &policy_dir(),
            LoadOptions {
                include_tests: false,
                include_fixtures: false,
            },
        )
        .expect("loads")
    })
}

fn access_policy() -> &'static AccessPolicy {
    static POLICY: std::sync::OnceLock<AccessPolicy> = std::sync::OnceLock::new();
    POLICY.get_or_init(|| AccessPolicy::load(&policy_dir().join("access")).expect("loads"))
}
