//! The flake tracker (MC-POL-1122): run a suite N times in shuffled orders, find the
//! tests whose result changes between runs, gate on the flake rate, and keep a JSON-lines
//! history from which the nightly report is written.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::PolicyError;
use crate::pack::Pack;
use crate::runner::{RunOptions, SplitMix64, Status, SuiteRun, Summary, run_suite};

/// Default flake-rate gate, in percent (spec: PRs fail on flake > 1 %).
pub const DEFAULT_MAX_FLAKE_RATE: f64 = 1.0;

/// What happened to one test across runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestHistory {
    /// Test id (`data.pkg.test_x` or `pack/fixtures/name`).
    pub id: String,
    /// Status per run, in run order.
    pub statuses: Vec<Status>,
    /// Mean duration in microseconds.
    pub mean_us: u64,
    /// Slowest run in microseconds.
    pub max_us: u64,
}

impl TestHistory {
    /// A test is flaky when its status differs between runs.
    pub fn is_flaky(&self) -> bool {
        self.statuses.windows(2).any(|w| w[0] != w[1])
    }
}

/// The outcome of `--runs N`.
#[derive(Debug, Clone, PartialEq)]
pub struct FlakeSummary {
    /// The master seed (printed so a run can be reproduced with `--seed`).
    pub seed: u64,
    /// Per-run seeds derived from the master seed.
    pub run_seeds: Vec<u64>,
    /// Each run, in order. The first run carries coverage when it was asked for.
    pub runs: Vec<SuiteRun>,
    /// Per test, in canonical order.
    pub tests: Vec<TestHistory>,
}

impl FlakeSummary {
    /// Ids of the flaky tests.
    pub fn flaky(&self) -> Vec<String> {
        self.tests
            .iter()
            .filter(|t| t.is_flaky())
            .map(|t| t.id.clone())
            .collect()
    }

    /// Flaky tests / tests, in percent (0 when there are no tests).
    pub fn flake_rate(&self) -> f64 {
        if self.tests.is_empty() {
            return 0.0;
        }
        #[allow(clippy::cast_precision_loss)]
        let rate = self.flaky().len() as f64 * 100.0 / self.tests.len() as f64;
        rate
    }

    /// Whether the flake rate is within `max_rate` percent.
    pub fn within(&self, max_rate: f64) -> bool {
        self.flake_rate() <= max_rate
    }

    /// Whether every run had no failure and no error.
    pub fn all_runs_ok(&self) -> bool {
        self.runs.iter().all(|r| r.summary().ok())
    }
}

/// Runs the suite `runs` times, each in an order shuffled from `seed`.
///
/// Coverage, when `options.coverage` is set, is gathered on the first run only (it does
/// not change between runs and costs time).
///
/// # Errors
/// [`PolicyError::InvalidOption`] for `runs == 0` or a zero timeout.
pub fn run_repeated(
    packs: &[Pack],
    options: &RunOptions,
    runs: usize,
    seed: u64,
) -> Result<FlakeSummary, PolicyError> {
    if runs == 0 {
        return Err(PolicyError::InvalidOption {
            option: "runs",
            reason: "must be at least 1".into(),
        });
    }
    let mut rng = SplitMix64::new(seed);
    let mut all = Vec::with_capacity(runs);
    let mut run_seeds = Vec::with_capacity(runs);
    for i in 0..runs {
        let run_seed = rng.next_u64();
        run_seeds.push(run_seed);
        let opts = RunOptions {
            timeout: options.timeout,
            coverage: options.coverage && i == 0,
            seed: Some(run_seed),
        };
        all.push(run_suite(packs, &opts)?);
    }
    let mut by_id: BTreeMap<String, (usize, Vec<Status>, Vec<Duration>)> = BTreeMap::new();
    for (order, r) in all[0].results.iter().enumerate() {
        by_id.insert(r.id(), (order, Vec::new(), Vec::new()));
    }
    for run in &all {
        for r in &run.results {
            let entry = by_id
                .entry(r.id())
                .or_insert_with(|| (usize::MAX, Vec::new(), Vec::new()));
            entry.1.push(r.status);
            entry.2.push(r.duration);
        }
    }
    let mut tests: Vec<(usize, TestHistory)> = by_id
        .into_iter()
        .map(|(id, (order, statuses, durations))| {
            let total: Duration = durations.iter().sum();
            let n = u32::try_from(durations.len().max(1)).unwrap_or(u32::MAX);
            let mean = total / n;
            let max = durations.iter().max().copied().unwrap_or_default();
            (
                order,
                TestHistory {
                    id,
                    statuses,
                    mean_us: micros(mean),
                    max_us: micros(max),
                },
            )
        })
        .collect();
    tests.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.id.cmp(&b.1.id)));
    Ok(FlakeSummary {
        seed,
        run_seeds,
        runs: all,
        tests: tests.into_iter().map(|(_, t)| t).collect(),
    })
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// One line of the history file: one `mc policy test` invocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryRecord {
    /// When the invocation ran (RFC 3339, UTC), supplied by the caller.
    pub timestamp: String,
    /// Master seed.
    pub seed: u64,
    /// Number of runs.
    pub runs: usize,
    /// Number of tests and fixtures.
    pub tests: usize,
    /// Counts of the first run.
    pub summary: Summary,
    /// Ids of the flaky tests.
    pub flaky: Vec<String>,
    /// Flake rate in percent.
    pub flake_rate: f64,
    /// Total coverage in percent, when measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<f64>,
    /// Per test that failed or errored in at least one run: in how many runs.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub failing_runs: BTreeMap<String, usize>,
    /// Wall time of all runs, in milliseconds.
    pub elapsed_ms: u64,
    /// Mean duration per test id, in microseconds.
    pub durations_us: BTreeMap<String, u64>,
}

impl HistoryRecord {
    /// Builds the record of a flake run.
    pub fn from_summary(summary: &FlakeSummary, timestamp: &str) -> HistoryRecord {
        let first = &summary.runs[0];
        let elapsed: Duration = summary.runs.iter().map(|r| r.elapsed).sum();
        HistoryRecord {
            timestamp: timestamp.to_owned(),
            seed: summary.seed,
            runs: summary.runs.len(),
            tests: summary.tests.len(),
            summary: first.summary(),
            flaky: summary.flaky(),
            flake_rate: summary.flake_rate(),
            coverage: first.coverage.as_ref().map(|c| c.coverage),
            failing_runs: summary
                .tests
                .iter()
                .map(|t| {
                    let n = t
                        .statuses
                        .iter()
                        .filter(|s| matches!(s, Status::Fail | Status::Error))
                        .count();
                    (t.id.clone(), n)
                })
                .filter(|(_, n)| *n > 0)
                .collect(),
            elapsed_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
            durations_us: summary
                .tests
                .iter()
                .map(|t| (t.id.clone(), t.mean_us))
                .collect(),
        }
    }
}

/// Appends one record as a JSON line (creating the file if needed).
///
/// # Errors
/// [`PolicyError::Io`] when the file cannot be opened or written.
pub fn append_history(path: &Path, record: &HistoryRecord) -> Result<(), PolicyError> {
    let io = |source| PolicyError::Io {
        path: path.to_path_buf(),
        source,
    };
    let line = serde_json::to_string(record).map_err(|e| io(std::io::Error::other(e)))?;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io)?;
    // One write per record so concurrent appenders do not interleave within a line.
    file.write_all(format!("{line}\n").as_bytes()).map_err(io)
}

/// Reads every record of a history file; blank lines are ignored.
///
/// # Errors
/// [`PolicyError::Io`] when unreadable, [`PolicyError::History`] naming the line of a
/// malformed record.
pub fn read_history(path: &Path) -> Result<Vec<HistoryRecord>, PolicyError> {
    let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_history(path, &text)
}

/// Parses history text (see [`read_history`]).
///
/// # Errors
/// [`PolicyError::History`] naming the line of a malformed record.
pub fn parse_history(path: &Path, text: &str) -> Result<Vec<HistoryRecord>, PolicyError> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| PolicyError::History {
                path: path.to_path_buf(),
                line: i + 1,
                reason: e.to_string(),
            })
        })
        .collect()
}

/// The nightly report: flake rate over time, the tests that flaked, the slowest tests,
/// and coverage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NightlyReport {
    /// Number of history records.
    pub records: usize,
    /// One point per record, oldest first.
    pub trend: Vec<TrendPoint>,
    /// Tests that were flaky in any record, most often first.
    pub flaky_tests: Vec<FlakyTest>,
    /// Slowest tests of the latest record (top 10, slowest first).
    pub slowest: Vec<SlowTest>,
    /// Coverage of the latest record that measured it.
    pub latest_coverage: Option<f64>,
    /// Flake rate of the latest record.
    pub latest_flake_rate: Option<f64>,
}

/// One point of the trend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrendPoint {
    /// Record timestamp.
    pub timestamp: String,
    /// Runs in the record.
    pub runs: usize,
    /// Tests in the record.
    pub tests: usize,
    /// Flaky tests in the record.
    pub flaky: usize,
    /// Flake rate in percent.
    pub flake_rate: f64,
    /// Coverage in percent.
    pub coverage: Option<f64>,
    /// Failures plus errors of the first run.
    pub failing: usize,
}

/// A test that flaked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlakyTest {
    /// Test id.
    pub id: String,
    /// In how many records it was flaky.
    pub records: usize,
}

/// A slow test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlowTest {
    /// Test id.
    pub id: String,
    /// Mean duration in microseconds.
    pub mean_us: u64,
}

impl NightlyReport {
    /// Builds the report from history records (oldest first).
    pub fn from_history(records: &[HistoryRecord]) -> NightlyReport {
        let mut sorted: Vec<&HistoryRecord> = records.iter().collect();
        // RFC 3339 UTC timestamps sort lexically; a stable sort keeps file order for ties.
        sorted.sort_by(|a, b| a.timestamp.cmp(&b.timestamp));
        let trend = sorted
            .iter()
            .map(|r| TrendPoint {
                timestamp: r.timestamp.clone(),
                runs: r.runs,
                tests: r.tests,
                flaky: r.flaky.len(),
                flake_rate: r.flake_rate,
                coverage: r.coverage,
                failing: r.summary.failed + r.summary.errors,
            })
            .collect();
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for r in &sorted {
            for id in &r.flaky {
                *counts.entry(id.as_str()).or_default() += 1;
            }
        }
        let mut flaky_tests: Vec<FlakyTest> = counts
            .into_iter()
            .map(|(id, n)| FlakyTest {
                id: id.to_owned(),
                records: n,
            })
            .collect();
        flaky_tests.sort_by(|a, b| b.records.cmp(&a.records).then_with(|| a.id.cmp(&b.id)));
        let mut slowest: Vec<SlowTest> = sorted
            .last()
            .map(|r| {
                r.durations_us
                    .iter()
                    .map(|(id, us)| SlowTest {
                        id: id.clone(),
                        mean_us: *us,
                    })
                    .collect()
            })
            .unwrap_or_default();
        slowest.sort_by(|a, b| b.mean_us.cmp(&a.mean_us).then_with(|| a.id.cmp(&b.id)));
        slowest.truncate(10);
        NightlyReport {
            records: sorted.len(),
            trend,
            flaky_tests,
            slowest,
            latest_coverage: sorted.iter().rev().find_map(|r| r.coverage),
            latest_flake_rate: sorted.last().map(|r| r.flake_rate),
        }
    }

    /// The report as Markdown.
    pub fn to_markdown(&self) -> String {
        let mut s = String::from("# Policy QA nightly report\n\n");
        let pct = |v: Option<f64>| v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.2} %"));
        s.push_str(&format!(
            "- Records: {}\n- Latest flake rate: {}\n- Latest coverage: {}\n\n",
            self.records,
            pct(self.latest_flake_rate),
            pct(self.latest_coverage)
        ));
        s.push_str("## Flake rate over time\n\n| timestamp | runs | tests | flaky | flake rate | coverage | failing |\n|---|---:|---:|---:|---:|---:|---:|\n");
        for p in &self.trend {
            s.push_str(&format!(
                "| {} | {} | {} | {} | {:.2} % | {} | {} |\n",
                p.timestamp,
                p.runs,
                p.tests,
                p.flaky,
                p.flake_rate,
                pct(p.coverage),
                p.failing
            ));
        }
        s.push_str("\n## Flaky tests\n\n");
        if self.flaky_tests.is_empty() {
            s.push_str("None.\n");
        } else {
            s.push_str("| test | records flaky |\n|---|---:|\n");
            for t in &self.flaky_tests {
                s.push_str(&format!("| `{}` | {} |\n", t.id, t.records));
            }
        }
        s.push_str("\n## Slowest tests (latest record)\n\n| test | mean |\n|---|---:|\n");
        for t in &self.slowest {
            s.push_str(&format!("| `{}` | {} µs |\n", t.id, t.mean_us));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pack(src: &str) -> Pack {
        Pack::from_sources("t", &[("t.rego".into(), src.into())]).expect("loads")
    }

    #[test]
    fn stable_suite_has_no_flakes() {
        let p = pack("package t\n\ntest_a if true\n\ntest_b if 1 == 1\n\ntest_c if false\n");
        let s =
            run_repeated(std::slice::from_ref(&p), &RunOptions::default(), 4, 99).expect("runs");
        assert_eq!(s.runs.len(), 4);
        assert_eq!(s.tests.len(), 3);
        assert!(s.flaky().is_empty());
        assert_eq!(s.flake_rate(), 0.0);
        assert!(s.within(DEFAULT_MAX_FLAKE_RATE));
        // test_c fails consistently: failing, but not flaky.
        assert!(!s.all_runs_ok());
        assert_eq!(s.tests[2].statuses, vec![Status::Fail; 4]);
        let rec = HistoryRecord::from_summary(&s, "2025-12-10T00:00:00Z");
        assert_eq!(rec.failing_runs.get("data.t.test_c"), Some(&4));
        assert_eq!(rec.failing_runs.len(), 1);
    }

    #[test]
    fn changing_result_is_flaky_and_trips_the_gate() {
        let hist = |id: &str, statuses: Vec<Status>| TestHistory {
            id: id.into(),
            statuses,
            mean_us: 1,
            max_us: 1,
        };
        let summary = FlakeSummary {
            seed: 1,
            run_seeds: vec![],
            runs: vec![],
            tests: vec![
                hist("a", vec![Status::Pass, Status::Fail, Status::Pass]),
                hist("b", vec![Status::Pass; 3]),
            ],
        };
        assert_eq!(summary.flaky(), ["a"]);
        assert_eq!(summary.flake_rate(), 50.0);
        assert!(!summary.within(1.0));
        assert!(summary.within(50.0));
    }

    #[test]
    fn zero_runs_is_rejected() {
        let p = pack("package t\n\ntest_a if true\n");
        let err =
            run_repeated(std::slice::from_ref(&p), &RunOptions::default(), 0, 1).expect_err("zero");
        assert!(matches!(
            err,
            PolicyError::InvalidOption { option: "runs", .. }
        ));
    }

    #[test]
    fn history_round_trips_and_reports() {
        let p = pack("package t\n\ntest_a if true\n\ntest_b if true\n");
        let s = run_repeated(
            std::slice::from_ref(&p),
            &RunOptions {
                coverage: true,
                ..RunOptions::default()
            },
            2,
            5,
        )
        .expect("runs");
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("h.jsonl");
        let mut rec = HistoryRecord::from_summary(&s, "2025-12-10T00:00:00Z");
        append_history(&path, &rec).expect("append");
        rec.timestamp = "2025-12-11T00:00:00Z".into();
        rec.flaky = vec!["data.t.test_a".into()];
        rec.flake_rate = 50.0;
        append_history(&path, &rec).expect("append");
        let records = read_history(&path).expect("read");
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].runs, 2);
        assert!(records[0].failing_runs.is_empty());
        assert!(records[0].coverage.is_some());
        let report = NightlyReport::from_history(&records);
        assert_eq!(report.trend.len(), 2);
        assert_eq!(report.latest_flake_rate, Some(50.0));
        assert_eq!(report.flaky_tests[0].id, "data.t.test_a");
        let md = report.to_markdown();
        assert!(
            md.contains("| 2025-12-11T00:00:00Z | 2 | 2 | 1 | 50.00 % |"),
            "{md}"
        );
        assert!(md.contains("`data.t.test_a`"));
    }

    #[test]
    fn malformed_history_names_the_line() {
        let err = parse_history(Path::new("h.jsonl"), "\n{\"nope\": 1}\n").expect_err("bad");
        match err {
            PolicyError::History { line, .. } => assert_eq!(line, 2),
            other => panic!("unexpected {other:?}"),
        }
    }
}
