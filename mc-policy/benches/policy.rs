//! Benchmarks of the Policy Pack QA harness (issue 5 targets):
//! - the whole golden suite (all packs, tests + fixtures) ≤ 2 s;
//! - one prepared `access` decision ≤ 100 µs p95;
//! - zero flakes over 200 shuffled runs of the suite.
//!
//! Run: `cargo bench -p mc-policy --bench policy`. The p95 and the flake check print
//! their figures first; the flake check fails the bench when any test is flaky.
//! `MC_POLICY_BENCH_RUNS` changes the number of flake runs (default 200).

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use mc_policy::{
    AccessActor, AccessExecution, AccessInput, AccessPolicy, LoadOptions, RunOptions, Status,
    load_suite, run_repeated, run_suite,
};

fn policy_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../policy")
}

fn request(roles: &[&str], action: &str) -> AccessInput {
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

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// Per-call latency distribution of a prepared access decision, and the 200-run flake check.
fn figures(_c: &mut Criterion) {
    let policy = AccessPolicy::load(&policy_dir().join("access")).expect("access pack loads");
    let inputs = [
        request(&["operator"], "cancel"),
        request(&["viewer"], "retry"),
        request(&["operator"], "replay"),
        request(&["viewer"], "view"),
    ];
    for i in &inputs {
        black_box(policy.decide(i).expect("decides"));
    }
    let mut samples = Vec::with_capacity(20_000);
    for n in 0..20_000 {
        let input = &inputs[n % inputs.len()];
        let t = Instant::now();
        black_box(policy.decide(black_box(input)).expect("decides"));
        samples.push(t.elapsed());
    }
    samples.sort_unstable();
    println!(
        "access decision over {} calls: p50 {:?}, p95 {:?}, p99 {:?}, max {:?}",
        samples.len(),
        percentile(&samples, 0.50),
        percentile(&samples, 0.95),
        percentile(&samples, 0.99),
        samples[samples.len() - 1]
    );

    let started = Instant::now();
    let packs = load_suite(&policy_dir(), LoadOptions::default()).expect("suite loads");
    let run = run_suite(&packs, &RunOptions::default()).expect("suite runs");
    println!(
        "golden suite once (load + {} tests and fixtures): {:?}",
        run.results.len(),
        started.elapsed()
    );

    let runs: usize = std::env::var("MC_POLICY_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let started = Instant::now();
    let summary =
        run_repeated(&packs, &RunOptions::default(), runs, 0x5EED).expect("repeated runs");
    let failing = summary
        .runs
        .iter()
        .flat_map(|r| &r.results)
        .filter(|r| matches!(r.status, Status::Fail | Status::Error))
        .count();
    println!(
        "flake check: {} runs x {} tests in {:?}: {} flaky ({:.2} %), {} failing results",
        runs,
        summary.tests.len(),
        started.elapsed(),
        summary.flaky().len(),
        summary.flake_rate(),
        failing
    );
    assert!(
        summary.flaky().is_empty(),
        "flaky tests: {:?}",
        summary.flaky()
    );
    assert_eq!(failing, 0, "the shipped suite must pass in every run");
}

fn suite(c: &mut Criterion) {
    let mut group = c.benchmark_group("golden_suite");
    group.sample_size(10);
    group.bench_function("load_and_run", |b| {
        b.iter(|| {
            let packs = load_suite(&policy_dir(), LoadOptions::default()).expect("loads");
            black_box(run_suite(&packs, &RunOptions::default()).expect("runs"))
        });
    });
    let packs = load_suite(&policy_dir(), LoadOptions::default()).expect("loads");
    group.bench_function("run_prepared", |b| {
        b.iter(|| black_box(run_suite(&packs, &RunOptions::default()).expect("runs")));
    });
    group.bench_function("run_prepared_with_coverage", |b| {
        let options = RunOptions {
            coverage: true,
            ..RunOptions::default()
        };
        b.iter(|| black_box(run_suite(&packs, &options).expect("runs")));
    });
    group.finish();
}

fn access(c: &mut Criterion) {
    let policy = AccessPolicy::load(&policy_dir().join("access")).expect("loads");
    let allow = request(&["operator"], "cancel");
    let deny = request(&["viewer"], "cancel");
    c.bench_function("access/decide_allow", |b| {
        b.iter(|| black_box(policy.decide(black_box(&allow)).expect("decides")));
    });
    c.bench_function("access/decide_deny", |b| {
        b.iter(|| black_box(policy.decide(black_box(&deny)).expect("decides")));
    });
}

criterion_group!(benches, figures, suite, access);
criterion_main!(benches);
