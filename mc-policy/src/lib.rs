//! Policy-pack QA for Maestro Conductor: Rego v1 packs evaluated with
//! [regorus](https://docs.rs/regorus), an `opa test`-compatible runner, golden fixtures,
//! OPA-shaped coverage, a flake tracker, and a typed decision API for the `access` pack.
//!
//! A *pack* is a directory of `.rego` files (one package, `*_test.rego` holding
//! `test_*` rules) with golden fixtures in `fixtures/NAME.json` +
//! `fixtures/NAME.expected.json`. The shipped packs live in the repository's `policy/`
//! (`residency`, `pii`, `budget`, `quotas`, `access`); the `mc policy` command is a thin
//! layer over this crate.
//!
//! ```
//! use mc_policy::{Pack, RunOptions, Status, run_suite};
//!
//! let pack = Pack::from_sources(
//!     "demo",
//!     &[(
//!         "demo.rego".to_owned(),
//!         r#"package demo
//!
//! deny contains msg if {
//!   input.region != "eu-west-1"
//!   msg := sprintf("region %s not allowed", [input.region])
//! }
//!
//! test_eu_is_allowed if count(deny) == 0 with input as {"region": "eu-west-1"}
//!
//! test_us_is_denied if "region us-east-1 not allowed" in deny with input as {"region": "us-east-1"}
//! "#
//!         .to_owned(),
//!     )],
//! )?;
//! let run = run_suite(&[pack], &RunOptions { coverage: true, ..RunOptions::default() })?;
//! assert!(run.results.iter().all(|r| r.status == Status::Pass));
//! assert!(run.coverage.expect("asked for").coverage > 50.0);
//! # Ok::<(), mc_policy::PolicyError>(())
//! ```
//!
//! Modules:
//! - `pack` — [`Pack`], [`load_suite`]: loading modules and fixtures, AST-based discovery of
//!   tests, load-time rejection of syntax errors and unknown builtins;
//! - `runner` — [`run_suite`]: pass/fail/error/skipped per test and fixture, per-item
//!   timeout, shuffled order from a seed;
//! - `eval` — [`evaluate`]: conftest-style `deny`/`violation`/`warn`/`exception`;
//! - `coverage` — [`CoverageReport`] in OPA's JSON shape;
//! - `format` — [`render`]: pretty, json, junit, tap, sarif;
//! - `flake` — [`run_repeated`], JSON-lines history and the [`NightlyReport`];
//! - `access` — [`AccessPolicy`]: typed `decide` for console actions;
//! - `error` — [`PolicyError`].

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod access;
mod coverage;
mod error;
mod eval;
mod flake;
mod format;
mod pack;
mod runner;

pub use access::{
    AccessActor, AccessDecision, AccessExecution, AccessInput, AccessPolicy, DECISION_RULE,
};
pub use coverage::{CoverageAccumulator, CoverageReport, FileCoverage, LineRange, Position};
pub use error::PolicyError;
pub use eval::{CheckResult, NamespaceResults, Namespaces, Outcome, evaluate, evaluate_suite};
pub use flake::{
    DEFAULT_MAX_FLAKE_RATE, FlakeSummary, FlakyTest, HistoryRecord, NightlyReport, SlowTest,
    TestHistory, TrendPoint, append_history, parse_history, read_history, run_repeated,
};
pub use format::{Format, render, render_coverage_summary, sarif_rule_id};
pub use pack::{
    Expectation, Fixture, LoadOptions, ModuleInfo, Pack, RuleInfo, TestCase, load_suite,
};
pub use runner::{Kind, RunOptions, Status, SuiteRun, Summary, TestResult, run_suite};

/// Parses a JSON document into an engine input (serde_json's line/column on error).
///
/// # Errors
/// [`PolicyError::InvalidInput`] with field `input` when `text` is not valid JSON.
pub fn parse_input(text: &str) -> Result<regorus::Value, PolicyError> {
    pack::parse_input_json(text).map_err(|reason| PolicyError::InvalidInput {
        field: "input".into(),
        reason,
    })
}
