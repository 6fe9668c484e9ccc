//! The opa-test-compatible runner: runs every discovered `test_*` rule and every golden
//! fixture of a suite, each under a time limit, and gathers coverage.
//!
//! Statuses follow `opa test`: a test *passes* when its rule evaluates to `true`, *fails*
//! when it is undefined or anything else (a failing test is undefined, which is why tests
//! are found from the AST), *errors* when evaluation fails (including a timeout), and is
//! *skipped* when its name starts with `todo_`.
//!
//! Time limits are enforced twice: regorus' cooperative execution timer stops loops
//! inside the interpreter, and a watchdog abandons a worker thread that does not come
//! back (e.g. stuck in one huge builtin call) — the rest of the suite then continues on a
//! fresh clone of the engine.

use std::collections::BTreeSet;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use regorus::utils::limits::ExecutionTimerConfig;
use regorus::{Engine, Value};
use serde::{Deserialize, Serialize};

use crate::coverage::{CoverageAccumulator, CoverageReport};
use crate::error::PolicyError;
use crate::eval::{Namespaces, classify_engine_error, eval_json, evaluate_with};
use crate::pack::{Fixture, Pack, TestCase, display};

/// Result of one test or fixture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The rule was true / the fixture matched.
    Pass,
    /// The rule was undefined or not true / the fixture did not match.
    Fail,
    /// Evaluation failed (including a timeout).
    Error,
    /// `todo_` test, not run.
    Skip,
}

impl Status {
    /// Upper-case label as printed by `opa test`.
    pub fn label(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::Error => "ERROR",
            Status::Skip => "SKIPPED",
        }
    }
}

/// Whether a result is a Rego unit test or a golden fixture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A `test_*` rule.
    Test,
    /// A golden fixture.
    Fixture,
}

/// One test or fixture result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestResult {
    /// Test or fixture.
    pub kind: Kind,
    /// The pack (directory name).
    pub pack: String,
    /// Package (namespace) path without `data.`; for fixtures the first namespace checked.
    pub package: String,
    /// Test rule name, or fixture name.
    pub name: String,
    /// File: the `.rego` file of a test, the input file of a fixture.
    pub file: String,
    /// 1-based line (1 for fixtures).
    pub line: u32,
    /// 1-based column (1 for fixtures).
    pub col: u32,
    /// Outcome.
    pub status: Status,
    /// Why it failed or errored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Rules involved in a failure (for SARIF rule ids), e.g. `data.residency.deny_backfill_target`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<String>,
    /// Wall time of the evaluation.
    #[serde(with = "duration_ns")]
    pub duration: Duration,
}

impl TestResult {
    /// A stable identifier: `data.pkg.test_name` for tests, `pack/fixtures/name` for fixtures.
    pub fn id(&self) -> String {
        match self.kind {
            Kind::Test => format!("data.{}.{}", self.package, self.name),
            Kind::Fixture => format!("{}/fixtures/{}", self.pack, self.name),
        }
    }
}

mod duration_ns {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_nanos(u64::deserialize(d)?))
    }
}

/// How to run a suite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOptions {
    /// Time limit per test or fixture.
    pub timeout: Duration,
    /// Gather line coverage.
    pub coverage: bool,
    /// Shuffle the execution order with this seed (`None`: source order).
    pub seed: Option<u64>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            timeout: Duration::from_secs(5),
            coverage: false,
            seed: None,
        }
    }
}

/// Everything one run of a suite produced.
#[derive(Debug, Clone, PartialEq)]
pub struct SuiteRun {
    /// Results in canonical order (pack, then tests in source order, then fixtures).
    pub results: Vec<TestResult>,
    /// The order the items actually ran in (ids).
    pub execution_order: Vec<String>,
    /// Coverage, when asked for.
    pub coverage: Option<CoverageReport>,
    /// The shuffle seed used, if any.
    pub seed: Option<u64>,
    /// Wall time of the run.
    pub elapsed: Duration,
}

/// Counts per status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Passed.
    pub passed: usize,
    /// Failed.
    pub failed: usize,
    /// Errored.
    pub errors: usize,
    /// Skipped.
    pub skipped: usize,
}

impl Summary {
    /// Counts the statuses of `results`.
    pub fn of(results: &[TestResult]) -> Summary {
        let mut s = Summary::default();
        for r in results {
            match r.status {
                Status::Pass => s.passed += 1,
                Status::Fail => s.failed += 1,
                Status::Error => s.errors += 1,
                Status::Skip => s.skipped += 1,
            }
        }
        s
    }

    /// Total number of results.
    pub fn total(&self) -> usize {
        self.passed + self.failed + self.errors + self.skipped
    }

    /// No failure and no error.
    pub fn ok(&self) -> bool {
        self.failed == 0 && self.errors == 0
    }
}

impl SuiteRun {
    /// Counts per status.
    pub fn summary(&self) -> Summary {
        Summary::of(&self.results)
    }
}

/// A small, fixed PRNG (SplitMix64) so that a printed seed reproduces an order on any
/// platform and any version of this crate's dependencies.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Fisher–Yates shuffle.
    pub(crate) fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let bound = u64::try_from(i + 1).unwrap_or(u64::MAX);
            let j = usize::try_from(self.next_u64() % bound).unwrap_or(0);
            items.swap(i, j);
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Item {
    Test(usize),
    Fixture(usize),
}

/// Runs every test and fixture of `packs` once.
///
/// # Errors
/// [`PolicyError::InvalidOption`] for a zero timeout. Test failures, errors and timeouts
/// are *results*, not errors.
pub fn run_suite(packs: &[Pack], options: &RunOptions) -> Result<SuiteRun, PolicyError> {
    if options.timeout.is_zero() {
        return Err(PolicyError::InvalidOption {
            option: "timeout",
            reason: "must be greater than zero".into(),
        });
    }
    let started = Instant::now();
    let mut rng = options.seed.map(SplitMix64::new);
    let mut pack_order: Vec<usize> = (0..packs.len()).collect();
    if let Some(rng) = rng.as_mut() {
        rng.shuffle(&mut pack_order);
    }
    let mut per_pack: Vec<Vec<TestResult>> = vec![Vec::new(); packs.len()];
    let mut execution_order = Vec::new();
    let mut coverage = CoverageAccumulator::default();
    for &p in &pack_order {
        let pack = &packs[p];
        let mut items: Vec<Item> = (0..pack.tests.len())
            .map(Item::Test)
            .chain((0..pack.fixtures.len()).map(Item::Fixture))
            .collect();
        if let Some(rng) = rng.as_mut() {
            rng.shuffle(&mut items);
        }
        let (results, reports) = run_pack(pack, &items, options);
        for report in &reports {
            coverage.add(report);
        }
        execution_order.extend(results.iter().map(|(_, r)| r.id()));
        let mut results = results;
        // Canonical order: tests in source order, then fixtures by name.
        results.sort_by_key(|(item, _)| match item {
            Item::Test(i) => (0, *i),
            Item::Fixture(i) => (1, *i),
        });
        per_pack[p] = results.into_iter().map(|(_, r)| r).collect();
    }
    Ok(SuiteRun {
        results: per_pack.into_iter().flatten().collect(),
        execution_order,
        coverage: options.coverage.then(|| coverage.report()),
        seed: options.seed,
        elapsed: started.elapsed(),
    })
}

enum Msg {
    Started(usize),
    Done(usize, Box<TestResult>),
    Finished(Option<regorus::coverage::Report>),
}

/// Runs `items` of one pack on worker threads, restarting after a hung item.
fn run_pack(
    pack: &Pack,
    items: &[Item],
    options: &RunOptions,
) -> (Vec<(Item, TestResult)>, Vec<regorus::coverage::Report>) {
    let mut results: Vec<(Item, TestResult)> = Vec::with_capacity(items.len());
    let mut reports = Vec::new();
    // The watchdog allows the cooperative timer to fire first.
    let hard_limit = options.timeout + (options.timeout / 2).max(Duration::from_millis(100));
    let mut next = 0;
    while next < items.len() {
        let (tx, rx) = mpsc::channel();
        let batch: Vec<Item> = items[next..].to_vec();
        let worker = Worker {
            engine: prepared_engine(pack, options),
            pack: pack.clone(),
            tests: Arc::clone(&pack.tests),
            fixtures: Arc::clone(&pack.fixtures),
            coverage: options.coverage,
        };
        let offset = next;
        let spawned = std::thread::Builder::new()
            .name(format!("mc-policy-{}", pack.name))
            .spawn(move || worker.run(&batch, offset, &tx));
        if let Err(e) = spawned {
            // Cannot start a thread: report the remaining items as errors, do not panic.
            for &item in &items[next..] {
                results.push((
                    item,
                    error_result(pack, item, format!("cannot start worker: {e}")),
                ));
            }
            break;
        }
        let mut current: Option<usize> = None;
        let mut current_start = Instant::now();
        loop {
            match rx.recv_timeout(hard_limit) {
                Ok(Msg::Started(pos)) => {
                    current = Some(pos);
                    current_start = Instant::now();
                }
                Ok(Msg::Done(pos, result)) => {
                    results.push((items[pos], *result));
                    current = None;
                    next = pos + 1;
                }
                Ok(Msg::Finished(report)) => {
                    reports.extend(report);
                    next = items.len();
                    break;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let Some(pos) = current else {
                        // Between items: keep waiting for the worker's next message.
                        continue;
                    };
                    let mut r = error_result(
                        pack,
                        items[pos],
                        format!("timed out after {} ms", options.timeout.as_millis()),
                    );
                    r.duration = current_start.elapsed();
                    results.push((items[pos], r));
                    // The stuck thread is abandoned: its sends will fail once it returns.
                    next = pos + 1;
                    break;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    // The worker died (a panic inside the engine): blame the current item.
                    let pos = current.unwrap_or(next);
                    if pos < items.len() {
                        results.push((
                            items[pos],
                            error_result(pack, items[pos], "engine panicked".into()),
                        ));
                    }
                    next = pos + 1;
                    break;
                }
            }
        }
    }
    (results, reports)
}

fn prepared_engine(pack: &Pack, options: &RunOptions) -> Engine {
    let mut engine = pack.engine();
    engine.set_enable_coverage(options.coverage);
    engine.set_execution_timer_config(ExecutionTimerConfig {
        limit: options.timeout,
        check_interval: NonZeroU32::MIN,
    });
    engine
}

struct Worker {
    engine: Engine,
    pack: Pack,
    tests: Arc<Vec<TestCase>>,
    fixtures: Arc<Vec<Fixture>>,
    coverage: bool,
}

impl Worker {
    fn run(mut self, batch: &[Item], offset: usize, tx: &mpsc::Sender<Msg>) {
        for (i, &item) in batch.iter().enumerate() {
            let pos = offset + i;
            if tx.send(Msg::Started(pos)).is_err() {
                return;
            }
            let result = match item {
                Item::Test(t) => self.run_test(&self.tests[t].clone()),
                Item::Fixture(f) => self.run_fixture(&self.fixtures[f].clone()),
            };
            if tx.send(Msg::Done(pos, Box::new(result))).is_err() {
                return;
            }
        }
        let report = if self.coverage {
            self.engine.get_coverage_report().ok()
        } else {
            None
        };
        let _ = tx.send(Msg::Finished(report));
    }

    fn run_test(&mut self, test: &TestCase) -> TestResult {
        let mut result = TestResult {
            kind: Kind::Test,
            pack: self.pack.name.clone(),
            package: test.package.clone(),
            name: test.name.clone(),
            file: test.file.clone(),
            line: test.line,
            col: test.col,
            status: Status::Skip,
            message: None,
            rules: Vec::new(),
            duration: Duration::ZERO,
        };
        if test.skip {
            return result;
        }
        let rule = test.rule_path();
        // Tests run without input, as in `opa test`; a fixture's input must not leak in.
        self.engine.set_input(Value::Undefined);
        let started = Instant::now();
        let outcome = self.engine.eval_rule(rule.clone());
        result.duration = started.elapsed();
        match outcome {
            Ok(Value::Bool(true)) => result.status = Status::Pass,
            Ok(Value::Undefined) => {
                result.status = Status::Fail;
                result.message = Some("test rule is undefined (a condition did not hold)".into());
            }
            Ok(other) => {
                result.status = Status::Fail;
                let shown = other.to_json_str().unwrap_or_else(|_| "?".into());
                result.message = Some(format!("test rule evaluated to {}", shown.trim()));
            }
            Err(e) => {
                result.status = Status::Error;
                result.message = Some(match classify_engine_error(&rule, &e) {
                    PolicyError::Timeout { limit_ms, .. } => {
                        format!("timed out after {limit_ms} ms")
                    }
                    PolicyError::Eval { message, .. } => message,
                    other => other.to_string(),
                });
            }
        }
        result.rules = vec![rule];
        result
    }

    fn run_fixture(&mut self, fixture: &Fixture) -> TestResult {
        let started = Instant::now();
        let checked = check_fixture(&mut self.engine, &self.pack, fixture);
        let duration = started.elapsed();
        let (status, message, rules, package) = match checked {
            Ok(check) => (
                if check.problems.is_empty() {
                    Status::Pass
                } else {
                    Status::Fail
                },
                (!check.problems.is_empty()).then(|| check.problems.join("; ")),
                check.rules,
                check.namespace,
            ),
            Err(e) => (
                match e {
                    PolicyError::Timeout { .. } | PolicyError::Eval { .. } => Status::Error,
                    _ => Status::Fail,
                },
                Some(e.to_string()),
                Vec::new(),
                self.pack.namespaces().first().cloned().unwrap_or_default(),
            ),
        };
        TestResult {
            kind: Kind::Fixture,
            pack: self.pack.name.clone(),
            package,
            name: fixture.name.clone(),
            file: display(&fixture.input_path),
            line: 1,
            col: 1,
            status,
            message,
            rules,
            duration,
        }
    }
}

fn error_result(pack: &Pack, item: Item, message: String) -> TestResult {
    let (kind, package, name, file, line, col) = match item {
        Item::Test(t) => {
            let t = &pack.tests[t];
            (
                Kind::Test,
                t.package.clone(),
                t.name.clone(),
                t.file.clone(),
                t.line,
                t.col,
            )
        }
        Item::Fixture(f) => {
            let f = &pack.fixtures[f];
            (
                Kind::Fixture,
                pack.namespaces().first().cloned().unwrap_or_default(),
                f.name.clone(),
                display(&f.input_path),
                1,
                1,
            )
        }
    };
    TestResult {
        kind,
        pack: pack.name.clone(),
        package,
        name,
        file,
        line,
        col,
        status: Status::Error,
        message: Some(message),
        rules: Vec::new(),
        duration: Duration::ZERO,
    }
}

struct FixtureCheck {
    namespace: String,
    problems: Vec<String>,
    rules: Vec<String>,
}

/// Compares a fixture's actual decisions with its expectation.
fn check_fixture(
    engine: &mut Engine,
    pack: &Pack,
    fixture: &Fixture,
) -> Result<FixtureCheck, PolicyError> {
    let expected = &fixture.expected;
    let selection = match &expected.namespaces {
        Some(list) => Namespaces::Only(list.clone()),
        None => Namespaces::All,
    };
    let results = evaluate_with(engine, pack, &fixture.input, &selection)?;
    let namespace = results
        .first()
        .map(|r| r.namespace.clone())
        .unwrap_or_else(|| pack.namespaces().first().cloned().unwrap_or_default());
    let mut problems = Vec::new();
    let mut rules = BTreeSet::new();

    let mut compare = |what: &str, expected: &[String], actual: Vec<(String, String)>| {
        let want: BTreeSet<&str> = expected.iter().map(String::as_str).collect();
        let got: BTreeSet<&str> = actual.iter().map(|(m, _)| m.as_str()).collect();
        let missing: Vec<&str> = want.difference(&got).copied().collect();
        let unexpected: Vec<&(String, String)> = actual
            .iter()
            .filter(|(m, _)| !want.contains(m.as_str()))
            .collect();
        if !missing.is_empty() {
            problems.push(format!("{what}: expected but missing {missing:?}"));
        }
        for (msg, rule) in unexpected {
            problems.push(format!("{what}: unexpected {msg:?} from {rule}"));
            rules.insert(rule.clone());
        }
    };
    let collect = |pick: fn(&crate::eval::NamespaceResults) -> &Vec<crate::eval::CheckResult>| {
        results
            .iter()
            .flat_map(|r| pick(r).iter())
            .map(|c| (c.msg.clone(), format!("data.{}.{}", c.namespace, c.rule)))
            .collect::<Vec<_>>()
    };
    compare("deny", &expected.deny, collect(|r| &r.failures));
    compare("warn", &expected.warn, collect(|r| &r.warnings));
    let exceptions: Vec<(String, String)> = results
        .iter()
        .flat_map(|r| r.exceptions.iter())
        .map(|c| (c.rule.clone(), format!("data.{}.{}", c.namespace, c.rule)))
        .collect();
    compare("exceptions", &expected.exceptions, exceptions);

    engine.set_input(fixture.input.clone());
    for (key, want) in &expected.rules {
        let path = if key.contains('.') {
            format!("data.{key}")
        } else {
            format!("data.{namespace}.{key}")
        };
        let got = eval_json(engine, &path)?;
        if got.as_ref() != Some(want) {
            let shown = got.map_or_else(|| "undefined".to_owned(), |v| v.to_string());
            problems.push(format!("{key}: expected {want}, got {shown}"));
            rules.insert(path);
        }
    }
    Ok(FixtureCheck {
        namespace,
        problems,
        rules: rules.into_iter().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pack(src: &str) -> Pack {
        Pack::from_sources("t", &[("t.rego".into(), src.into())]).expect("loads")
    }

    #[test]
    fn statuses_follow_opa_test() {
        let p = pack(
            "package t\n\nallow if input.x == 1\n\ntest_pass if allow with input as {\"x\": 1}\n\ntest_fail if allow with input as {\"x\": 2}\n\ntest_error if {\n  y := 1 / 0\n  y == 1\n}\n\ntodo_test_later if false\n\ntest_value := 3\n",
        );
        let run = run_suite(std::slice::from_ref(&p), &RunOptions::default()).expect("runs");
        let got: Vec<_> = run
            .results
            .iter()
            .map(|r| (r.name.as_str(), r.status))
            .collect();
        assert_eq!(
            got,
            [
                ("test_pass", Status::Pass),
                ("test_fail", Status::Fail),
                ("test_error", Status::Error),
                ("todo_test_later", Status::Skip),
                ("test_value", Status::Fail),
            ]
        );
        assert!(
            run.results[2]
                .message
                .as_deref()
                .unwrap_or("")
                .contains("divide by zero")
        );
        assert_eq!(run.results[1].id(), "data.t.test_fail");
        let s = run.summary();
        assert_eq!((s.passed, s.failed, s.errors, s.skipped), (1, 2, 1, 1));
        assert!(!s.ok());
    }

    #[test]
    fn looping_test_times_out_and_the_suite_continues() {
        let p = pack(
            "package t\n\ntest_loop if {\n  some i in numbers.range(1, 2000)\n  some j in numbers.range(1, 2000)\n  some k in numbers.range(1, 2000)\n  i + j + k < 0\n}\n\ntest_after if true\n",
        );
        let options = RunOptions {
            timeout: Duration::from_millis(100),
            ..RunOptions::default()
        };
        let run = run_suite(std::slice::from_ref(&p), &options).expect("runs");
        assert_eq!(run.results[0].status, Status::Error);
        assert!(
            run.results[0]
                .message
                .as_deref()
                .unwrap_or("")
                .contains("timed out")
        );
        assert_eq!(run.results[1].status, Status::Pass);
    }

    #[test]
    fn shuffled_order_is_reproducible_from_the_seed() {
        let src: String = (0..20).map(|i| format!("test_{i} if true\n\n")).collect();
        let p = pack(&format!("package t\n\n{src}"));
        let opts = |seed| RunOptions {
            seed: Some(seed),
            ..RunOptions::default()
        };
        let a = run_suite(std::slice::from_ref(&p), &opts(7)).expect("runs");
        let b = run_suite(std::slice::from_ref(&p), &opts(7)).expect("runs");
        let c = run_suite(std::slice::from_ref(&p), &opts(8)).expect("runs");
        assert_eq!(a.execution_order, b.execution_order);
        assert_ne!(a.execution_order, c.execution_order);
        // Reported results stay in canonical order whatever the execution order.
        assert_eq!(
            a.results.iter().map(TestResult::id).collect::<Vec<_>>(),
            c.results.iter().map(TestResult::id).collect::<Vec<_>>()
        );
    }

    #[test]
    fn coverage_is_gathered() {
        let p = pack(
            "package t\n\nallow if {\n  input.x == 1\n}\n\nunused if {\n  input.y == 2\n}\n\ntest_allow if allow with input as {\"x\": 1}\n",
        );
        let run = run_suite(
            std::slice::from_ref(&p),
            &RunOptions {
                coverage: true,
                ..RunOptions::default()
            },
        )
        .expect("runs");
        let cov = run.coverage.expect("coverage");
        let file = &cov.files["t.rego"];
        assert!(file.covered_lines > 0);
        assert!(
            file.not_covered
                .iter()
                .any(|r| r.start.row <= 8 && r.end.row >= 8),
            "{file:?}"
        );
        assert!(cov.coverage > 0.0 && cov.coverage < 100.0);
    }

    #[test]
    fn zero_timeout_is_rejected() {
        let p = pack("package t\n\ntest_a if true\n");
        let err = run_suite(
            std::slice::from_ref(&p),
            &RunOptions {
                timeout: Duration::ZERO,
                ..RunOptions::default()
            },
        )
        .expect_err("zero timeout");
        assert!(matches!(
            err,
            PolicyError::InvalidOption {
                option: "timeout",
                ..
            }
        ));
    }

    #[test]
    fn splitmix_shuffle_is_a_permutation() {
        let mut v: Vec<u32> = (0..100).collect();
        SplitMix64::new(42).shuffle(&mut v);
        let mut sorted = v.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
        assert_ne!(v, sorted);
    }
}
