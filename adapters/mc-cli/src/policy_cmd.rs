//! `mc policy` — the Policy Pack QA harness (spec §3.3, §5.2), a thin layer over `mc-policy`.
//!
//! Exit codes: `test` exits 0 when every test and fixture passes and every gate
//! (coverage threshold, flake rate) holds, and 2 otherwise — as `opa test` does — and
//! also 2 for bad input (syntax errors, non-JSON fixtures, unknown builtins, timeouts).
//! `eval` exits 1 on any failure (or warning with `--fail-on-warn`), as conftest does,
//! and 2 for bad input. `report` exits 2 when the history cannot be read.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use mc_policy::{
    Format, HistoryRecord, LoadOptions, Namespaces, NightlyReport, Outcome, PolicyError,
    RunOptions, append_history, evaluate_suite, load_suite, parse_input, read_history, render,
    render_coverage_summary, run_repeated,
};

/// Arguments of `mc policy`.
#[derive(Debug, clap::Args)]
pub struct PolicyArgs {
    #[command(subcommand)]
    command: PolicyCommand,
}

#[derive(Debug, clap::Subcommand)]
enum PolicyCommand {
    /// Run every `test_*` rule and golden fixture of the packs under DIR (like `opa test`).
    Test(TestArgs),
    /// Evaluate an input document against packs, conftest-style.
    Eval(EvalArgs),
    /// Write the nightly report (Markdown and JSON) from a flake-history file.
    Report(ReportArgs),
}

#[derive(Debug, clap::Args)]
struct TestArgs {
    /// A pack directory, or a directory of packs (e.g. `policy/`).
    dir: PathBuf,
    /// Output format: pretty, json, junit, tap or sarif.
    #[arg(long, default_value = "pretty", value_parser = parse_format)]
    format: Format,
    /// Write the formatted results to FILE instead of stdout.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Report coverage (OPA's JSON shape with `--format json`, a summary otherwise).
    #[arg(long)]
    coverage: bool,
    /// Also write the OPA-shaped coverage JSON to FILE.
    #[arg(long, value_name = "FILE")]
    coverage_out: Option<PathBuf>,
    /// Fail (exit 2) when coverage is below N percent; implies --coverage.
    #[arg(long, value_name = "N")]
    threshold: Option<f64>,
    /// Run the whole suite N times in shuffled orders and track flaky tests.
    #[arg(long, default_value_t = 1, value_name = "N")]
    runs: usize,
    /// Seed for the shuffled order (printed when not given).
    #[arg(long)]
    seed: Option<u64>,
    /// Fail when flaky tests / tests exceeds this percentage.
    #[arg(long, default_value_t = mc_policy::DEFAULT_MAX_FLAKE_RATE, value_name = "PERCENT")]
    max_flake_rate: f64,
    /// Append this invocation's results to a JSON-lines history file.
    #[arg(long, value_name = "FILE")]
    history: Option<PathBuf>,
    /// Time limit per test or fixture, e.g. `5s`, `500ms`.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    timeout: Duration,
    /// List passing tests too (pretty format).
    #[arg(short, long)]
    verbose: bool,
}

#[derive(Debug, clap::Args)]
struct EvalArgs {
    /// A pack directory, or a directory of packs.
    #[arg(long, short = 'p')]
    pack: PathBuf,
    /// The JSON input document.
    #[arg(long, short = 'i')]
    input: PathBuf,
    /// Evaluate only this namespace (repeatable).
    #[arg(long, short = 'n', conflicts_with = "all_namespaces")]
    namespace: Vec<String>,
    /// Evaluate every namespace (the default when no --namespace is given).
    #[arg(long)]
    all_namespaces: bool,
    /// Also exit 1 when there are warnings.
    #[arg(long)]
    fail_on_warn: bool,
    /// Output format: pretty or json.
    #[arg(long, default_value = "pretty", value_parser = ["pretty", "json"])]
    format: String,
}

#[derive(Debug, clap::Args)]
struct ReportArgs {
    /// The JSON-lines history written by `mc policy test --history`.
    #[arg(long, value_name = "FILE")]
    history: PathBuf,
    /// Directory for `policy-qa-report.md` and `policy-qa-report.json`.
    #[arg(long, default_value = ".", value_name = "DIR")]
    out: PathBuf,
}

fn parse_format(s: &str) -> Result<Format, String> {
    s.parse()
}

/// Parses `500ms`, `5s`, `2m`.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, ""), |i| s.split_at(i));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid duration `{s}` (e.g. 500ms, 5s, 2m)"))?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" | "" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        _ => return Err(format!("invalid duration unit in `{s}` (ms, s or m)")),
    };
    if d.is_zero() {
        return Err("duration must be greater than zero".into());
    }
    Ok(d)
}

/// Runs `mc policy`.
pub fn run(args: PolicyArgs) -> ExitCode {
    let result = match args.command {
        PolicyCommand::Test(a) => test(&a),
        PolicyCommand::Eval(a) => eval(&a),
        PolicyCommand::Report(a) => report(&a),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn write_out(path: Option<&Path>, text: &str) -> Result<(), PolicyError> {
    match path {
        Some(p) => std::fs::write(p, text).map_err(|source| PolicyError::Io {
            path: p.to_path_buf(),
            source,
        }),
        None => {
            let mut out = std::io::stdout().lock();
            // A closed pipe (`| head`) is not an error worth a panic.
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
            Ok(())
        }
    }
}

fn fresh_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    // Truncation is fine: any 64 bits of the clock make a seed.
    (nanos as u64) ^ (u64::from(std::process::id()) << 32)
}

fn test(a: &TestArgs) -> Result<u8, PolicyError> {
    if let Some(t) = a.threshold.filter(|t| !(0.0..=100.0).contains(t)) {
        return Err(PolicyError::InvalidOption {
            option: "threshold",
            reason: format!("{t} is not a percentage between 0 and 100"),
        });
    }
    if !(0.0..=100.0).contains(&a.max_flake_rate) {
        return Err(PolicyError::InvalidOption {
            option: "max-flake-rate",
            reason: format!("{} is not a percentage between 0 and 100", a.max_flake_rate),
        });
    }
    let coverage = a.coverage || a.threshold.is_some() || a.coverage_out.is_some();
    let packs = load_suite(&a.dir, LoadOptions::default())?;
    let seed = a.seed.unwrap_or_else(fresh_seed);
    let options = RunOptions {
        timeout: a.timeout,
        coverage,
        seed: Some(seed),
    };
    let summary = run_repeated(&packs, &options, a.runs, seed)?;
    let first = &summary.runs[0];
    // Machine formats keep stdout clean; diagnostics go to stderr.
    let machine = a.format != Format::Pretty || a.output.is_some();
    let mut notes = String::new();
    let report = first.coverage.as_ref();

    let body = match (a.format, report) {
        // As `opa test --coverage --format json`: stdout is the coverage report.
        (Format::Json, Some(r)) if a.coverage => {
            serde_json::to_string_pretty(r).unwrap_or_default() + "\n"
        }
        _ => render(first, a.format, a.verbose),
    };
    write_out(a.output.as_deref(), &body)?;
    if let (Some(path), Some(r)) = (&a.coverage_out, report) {
        write_out(
            Some(path),
            &(serde_json::to_string_pretty(r).unwrap_or_default() + "\n"),
        )?;
    }

    let mut code = 0u8;
    let s = first.summary();
    if !s.ok() {
        code = 2;
    }
    notes.push_str(&format!(
        "seed: {seed} (reproduce with --seed {seed}); {} run(s) in {:.2}s\n",
        summary.runs.len(),
        summary
            .runs
            .iter()
            .map(|r| r.elapsed.as_secs_f64())
            .sum::<f64>()
    ));
    if let Some(r) = report {
        if a.format == Format::Pretty || !a.coverage {
            notes.push_str(&render_coverage_summary(r));
        } else {
            notes.push_str(&format!("coverage: {:.2}%\n", r.coverage));
        }
        if let Some(t) = a.threshold.filter(|&t| r.coverage < t) {
            notes.push_str(&format!(
                "FAIL: coverage {:.2}% is below the threshold of {t}%\n",
                r.coverage
            ));
            code = 2;
        }
    }
    if a.runs > 1 {
        let flaky = summary.flaky();
        notes.push_str(&format!(
            "flake rate: {:.2}% ({} of {} tests flaky over {} runs; gate {}%)\n",
            summary.flake_rate(),
            flaky.len(),
            summary.tests.len(),
            summary.runs.len(),
            a.max_flake_rate
        ));
        for id in &flaky {
            let statuses = summary
                .tests
                .iter()
                .find(|t| &t.id == id)
                .map(|t| {
                    t.statuses
                        .iter()
                        .map(|s| s.label())
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            notes.push_str(&format!("  flaky: {id} [{statuses}]\n"));
        }
        if !summary.within(a.max_flake_rate) {
            notes.push_str("FAIL: flake rate above the gate\n");
            code = 2;
        }
    }
    if let Some(path) = &a.history {
        let now = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        append_history(path, &HistoryRecord::from_summary(&summary, &now))?;
    }
    if machine {
        eprint!("{notes}");
    } else {
        write_out(None, &notes)?;
    }
    Ok(code)
}

fn eval(a: &EvalArgs) -> Result<u8, PolicyError> {
    let packs = load_suite(
        &a.pack,
        LoadOptions {
            include_tests: false,
            include_fixtures: false,
        },
    )?;
    let text = std::fs::read_to_string(&a.input).map_err(|source| PolicyError::Io {
        path: a.input.clone(),
        source,
    })?;
    let input = parse_input(&text).map_err(|e| match e {
        PolicyError::InvalidInput { reason, .. } => PolicyError::InvalidInput {
            field: a.input.display().to_string(),
            reason,
        },
        other => other,
    })?;
    let namespaces = if a.namespace.is_empty() {
        Namespaces::All
    } else {
        Namespaces::Only(a.namespace.clone())
    };
    let results = evaluate_suite(&packs, &input, &namespaces)?;
    let filename = a.input.display().to_string();
    let failures: usize = results.iter().map(|r| r.failures.len()).sum();
    let warnings: usize = results.iter().map(|r| r.warnings.len()).sum();
    let exceptions: usize = results.iter().map(|r| r.exceptions.len()).sum();
    let successes: usize = results.iter().map(|r| r.successes).sum();
    if a.format == "json" {
        let doc: Vec<serde_json::Value> = results
            .iter()
            .map(|r| {
                let mut v = serde_json::to_value(r).unwrap_or_default();
                v["filename"] = serde_json::Value::String(filename.clone());
                v
            })
            .collect();
        write_out(
            None,
            &(serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"),
        )?;
    } else {
        let mut s = String::new();
        for r in &results {
            for c in r.failures.iter().chain(&r.warnings).chain(&r.exceptions) {
                let label = match c.outcome {
                    Outcome::Failure => "FAIL",
                    Outcome::Warning => "WARN",
                    Outcome::Exception => "EXCP",
                };
                s.push_str(&format!(
                    "{label} - {filename} - {} - {} ({})\n",
                    c.namespace, c.msg, c.rule
                ));
            }
        }
        let total = successes + failures + warnings + exceptions;
        s.push_str(&format!(
            "\n{total} tests, {successes} passed, {warnings} warnings, {failures} failures, {exceptions} exceptions\n"
        ));
        write_out(None, &s)?;
    }
    Ok(if failures > 0 || (a.fail_on_warn && warnings > 0) {
        1
    } else {
        0
    })
}

fn report(a: &ReportArgs) -> Result<u8, PolicyError> {
    let records = read_history(&a.history)?;
    let report = NightlyReport::from_history(&records);
    std::fs::create_dir_all(&a.out).map_err(|source| PolicyError::Io {
        path: a.out.clone(),
        source,
    })?;
    let md = a.out.join("policy-qa-report.md");
    let json = a.out.join("policy-qa-report.json");
    write_out(Some(&md), &report.to_markdown())?;
    write_out(
        Some(&json),
        &(serde_json::to_string_pretty(&report).unwrap_or_default() + "\n"),
    )?;
    println!(
        "wrote {} and {} ({} records)",
        md.display(),
        json.display(),
        report.records
    );
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5h").is_err());
        assert!(parse_duration("fast").is_err());
    }
}
