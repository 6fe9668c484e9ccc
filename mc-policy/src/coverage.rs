//! Line coverage in OPA's `opa test --coverage --format json` shape.
//!
//! regorus reports covered / not-covered line *sets* per file; this module merges them
//! (several engines, several runs), turns them into OPA's row ranges and computes the
//! percentages OPA prints (`covered / (covered + not_covered) * 100`, two decimals).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// A line position (`{"row": N}`), as in OPA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// 1-based line.
    pub row: u32,
}

/// An inclusive range of lines, as in OPA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineRange {
    /// First line.
    pub start: Position,
    /// Last line (inclusive).
    pub end: Position,
}

/// Coverage of one file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileCoverage {
    /// Covered line ranges.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub covered: Vec<LineRange>,
    /// Not-covered line ranges.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_covered: Vec<LineRange>,
    /// Number of covered lines.
    pub covered_lines: usize,
    /// Number of not-covered lines.
    pub not_covered_lines: usize,
    /// Percentage covered.
    pub coverage: f64,
}

/// The whole report: per file and totals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoverageReport {
    /// Per file, keyed by the path as loaded.
    pub files: BTreeMap<String, FileCoverage>,
    /// Total covered lines.
    pub covered_lines: usize,
    /// Total not-covered lines.
    pub not_covered_lines: usize,
    /// Total percentage covered.
    pub coverage: f64,
}

/// Accumulates line sets from several regorus reports.
#[derive(Debug, Clone, Default)]
pub struct CoverageAccumulator {
    files: BTreeMap<String, (BTreeSet<u32>, BTreeSet<u32>)>,
}

impl CoverageAccumulator {
    /// Adds one engine's report.
    pub fn add(&mut self, report: &regorus::coverage::Report) {
        for file in &report.files {
            let entry = self.files.entry(file.path.clone()).or_default();
            entry.0.extend(file.covered.iter().copied());
            entry.1.extend(file.not_covered.iter().copied());
        }
    }

    /// Adds explicit line sets for a file (used by tests and merges).
    pub fn add_lines(
        &mut self,
        file: &str,
        covered: impl IntoIterator<Item = u32>,
        not_covered: impl IntoIterator<Item = u32>,
    ) {
        let entry = self.files.entry(file.to_owned()).or_default();
        entry.0.extend(covered);
        entry.1.extend(not_covered);
    }

    /// The report: a line covered by any engine or run is covered.
    pub fn report(&self) -> CoverageReport {
        let mut files = BTreeMap::new();
        let (mut total_c, mut total_n) = (0usize, 0usize);
        for (path, (covered, not_covered)) in &self.files {
            let not_covered: BTreeSet<u32> = not_covered.difference(covered).copied().collect();
            total_c += covered.len();
            total_n += not_covered.len();
            files.insert(
                path.clone(),
                FileCoverage {
                    covered: ranges(covered),
                    not_covered: ranges(&not_covered),
                    covered_lines: covered.len(),
                    not_covered_lines: not_covered.len(),
                    coverage: percent(covered.len(), not_covered.len()),
                },
            );
        }
        CoverageReport {
            files,
            covered_lines: total_c,
            not_covered_lines: total_n,
            coverage: percent(total_c, total_n),
        }
    }
}

fn percent(covered: usize, not_covered: usize) -> f64 {
    let total = covered + not_covered;
    if total == 0 {
        return 0.0;
    }
    #[allow(clippy::cast_precision_loss)]
    let raw = covered as f64 * 100.0 / total as f64;
    (raw * 100.0).round() / 100.0
}

fn ranges(lines: &BTreeSet<u32>) -> Vec<LineRange> {
    let mut out: Vec<LineRange> = Vec::new();
    for &line in lines {
        match out.last_mut() {
            Some(r) if r.end.row.checked_add(1) == Some(line) => r.end.row = line,
            _ => out.push(LineRange {
                start: Position { row: line },
                end: Position { row: line },
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_percentages_match_opa_shape() {
        let mut acc = CoverageAccumulator::default();
        acc.add_lines("a.rego", [3, 4, 5, 9], [7, 8]);
        // A second run covers line 7: covered anywhere wins.
        acc.add_lines("a.rego", [7], [8, 9]);
        let report = acc.report();
        let json = serde_json::to_value(&report).expect("json");
        assert_eq!(
            json,
            serde_json::json!({
                "files": {"a.rego": {
                    "covered": [{"start": {"row": 3}, "end": {"row": 5}}, {"start": {"row": 7}, "end": {"row": 7}}, {"start": {"row": 9}, "end": {"row": 9}}],
                    "not_covered": [{"start": {"row": 8}, "end": {"row": 8}}],
                    "covered_lines": 5, "not_covered_lines": 1, "coverage": 83.33
                }},
                "covered_lines": 5, "not_covered_lines": 1, "coverage": 83.33
            })
        );
    }

    #[test]
    fn empty_report_is_zero_not_nan() {
        let report = CoverageAccumulator::default().report();
        assert_eq!(report.coverage, 0.0);
        assert!(report.files.is_empty());
    }
}
