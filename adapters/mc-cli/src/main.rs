//! `mc` — the Maestro Conductor command line.
//!
//! Each subcommand lives in its own module and is a thin layer over a library crate.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod demo;
mod drift_cmd;
mod drill_cmd;
mod duration_arg;
mod egress_cmd;
mod evidence_cmd;
mod janitor_cmd;
mod observability;
mod policy_cmd;
mod serve_cmd;

/// Maestro Conductor control plane.
#[derive(Debug, Parser)]
#[command(name = "mc", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the Controlled Actions story end to end on the in-memory default.
    Demo(demo::DemoArgs),
    /// Policy Pack QA: test packs (opa-test compatible), evaluate inputs, flake reports.
    Policy(policy_cmd::PolicyArgs),
    /// Serve the console HTTP API (spec §5.1) on the in-memory default or PostgreSQL.
    Serve(serve_cmd::ServeArgs),
    /// Evidence & disclosure: keygen, pack, unpack, verify, manifest.
    Evidence(evidence_cmd::EvidenceArgs),
    /// Runner egress: check destinations against a manifest, run the egress proxy.
    Egress(egress_cmd::EgressArgs),
    /// Data lifecycle: the TTL janitor, its signed deletion manifests, its CronJob.
    Janitor(janitor_cmd::JanitorArgs),
    /// Config drift: compare desired manifests with live state, watch it, propose fixes.
    Drift(drift_cmd::DriftArgs),
    /// GameDay drills (egress exfiltration, step-up outage, drift storm, rollback,
    /// data lifecycle) with signed evidence.
    Drill(drill_cmd::DrillArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Policy(args) => policy_cmd::run(args),
        Command::Serve(args) => serve_cmd::run(args),
        Command::Evidence(args) => evidence_cmd::run(args),
        Command::Egress(args) => egress_cmd::run(args),
        Command::Janitor(args) => janitor_cmd::run(args),
        Command::Drift(args) => drift_cmd::run(args),
        Command::Drill(args) => drill_cmd::run(args),
    }
}
