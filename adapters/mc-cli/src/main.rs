//! `mc` — the Maestro Conductor command line.
//!
//! Each subcommand lives in its own module and is a thin layer over a library crate.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod demo;

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo(args) => demo::run(args),
    }
}
