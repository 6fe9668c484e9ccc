//! `mc demo`.

use std::process::ExitCode;

/// Arguments of `mc demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Also write the audit log as JSON lines, one event per line, exactly as stored.
    #[arg(long)]
    pub audit_out: Option<std::path::PathBuf>,
}

/// Runs the demo.
pub fn run(_args: DemoArgs) -> ExitCode {
    ExitCode::SUCCESS
}
