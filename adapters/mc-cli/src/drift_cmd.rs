//! `mc drift` — compare desired manifests with a live dump, or watch it; a thin layer
//! over `mc-drift`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow};
use mc_core::{
    DriftSource, Flag, FlagStore, LiveObject, MemoryChangeProposer, MemoryFlagStore, MemoryPager,
    StoreError, SystemClock, TenantId,
};
use mc_drift::{
    Change, DesiredObject, DetectorParts, DiffRules, DriftDetector, PathRule, from_kube_yaml,
    from_terraform_state, kube_object,
};

/// Arguments of `mc drift`.
#[derive(Debug, clap::Args)]
pub struct DriftArgs {
    #[command(subcommand)]
    command: DriftCommand,
}

#[derive(Debug, clap::Args)]
struct Common {
    /// Desired state: Kubernetes manifests (YAML, multi-document) — repeatable — or a
    /// Terraform state file (`*.tfstate`).
    #[arg(long = "desired", required = true)]
    desired: Vec<PathBuf>,
    /// Live state: a YAML/JSON dump of objects (`kubectl get … -o yaml` output, a
    /// `List`, or a JSON array of `{kind, namespace, name, body}`), or Terraform state
    /// read back from the provider (`*.tfstate`).
    #[arg(long)]
    live: PathBuf,
    /// Environment name in findings and proposals.
    #[arg(long, default_value = "local")]
    env: String,
    /// Ignore a field, `KIND:/json/pointer` or `*:/json/pointer` (repeatable).
    #[arg(long = "ignore")]
    ignore: Vec<String>,
    /// Write each proposal (title, labels, body, patched files) under this directory.
    #[arg(long)]
    proposals: Option<PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
enum DriftCommand {
    /// One comparison; prints the findings and proposals. Exit 0 in sync, 1 on drift.
    Check(Common),
    /// Compare every `--interval` (default 2m, spec §5.4) until Ctrl-C, re-reading the
    /// live dump each time; pages and proposals are printed.
    Watch {
        #[command(flatten)]
        common: Common,
        /// Time between scans (`30s`, `2m`).
        #[arg(long, default_value = "2m")]
        interval: String,
        /// Serve Prometheus metrics (`/metrics`: findings, open findings, last scan
        /// time for `McDriftScansStale`) on this address.
        #[arg(long)]
        metrics_listen: Option<std::net::SocketAddr>,
    },
}

/// Runs `mc drift`.
pub fn run(args: DriftArgs) -> ExitCode {
    let result = match args.command {
        DriftCommand::Check(c) => check(&c, None, None),
        DriftCommand::Watch {
            common,
            interval,
            metrics_listen,
        } => parse_interval(&interval).and_then(|i| check(&common, Some(i), metrics_listen)),
    };
    result.unwrap_or_else(|e| {
        eprintln!("mc drift: {e:#}");
        ExitCode::from(2)
    })
}

fn parse_interval(s: &str) -> anyhow::Result<Duration> {
    crate::duration_arg::parse("--interval", s)
}

fn read_desired(
    paths: &[PathBuf],
) -> anyhow::Result<(Vec<DesiredObject>, BTreeMap<String, String>)> {
    let mut objs = Vec::new();
    let mut files = BTreeMap::new();
    for p in paths {
        let text =
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
        let name = p.display().to_string();
        if name.ends_with(".tfstate") {
            objs.extend(from_terraform_state(&text)?);
        } else {
            objs.extend(from_kube_yaml(&name, &text)?);
            files.insert(name, text);
        }
    }
    Ok((objs, files))
}

/// Reads a live dump: Terraform state, a JSON array of live objects, or YAML
/// documents of Kubernetes objects (`List`s flattened).
fn read_live(path: &Path) -> Result<Vec<LiveObject>, StoreError> {
    let bad = |e: String| StoreError::Backend(format!("{}: {e}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    if path.display().to_string().ends_with(".tfstate") {
        return Ok(from_terraform_state(&text)
            .map_err(|e| bad(e.to_string()))?
            .into_iter()
            .map(|d| d.object)
            .collect());
    }
    if let Ok(list) = serde_json::from_str::<Vec<LiveObject>>(&text) {
        return Ok(list);
    }
    let mut out = Vec::new();
    for (doc, de) in yaml_serde::Deserializer::from_str(&text).enumerate() {
        let v: serde_json::Value =
            serde::Deserialize::deserialize(de).map_err(|e| bad(e.to_string()))?;
        let is_list = v
            .get("kind")
            .and_then(|k| k.as_str())
            .is_some_and(|k| k.ends_with("List"));
        let items = match (is_list, v.get("items").and_then(|i| i.as_array())) {
            (true, Some(items)) => items.clone(),
            _ if v.is_null() => continue,
            _ => vec![v],
        };
        for item in items {
            out.push(kube_object(item).map_err(|e| bad(format!("document {doc}: {e}")))?);
        }
    }
    Ok(out)
}

/// A live source that re-reads a dump file at each scan.
struct FileSource {
    name: String,
    path: PathBuf,
}

#[async_trait::async_trait]
impl DriftSource for FileSource {
    fn name(&self) -> &str {
        &self.name
    }
    async fn snapshot(&self) -> Result<Vec<LiveObject>, StoreError> {
        read_live(&self.path)
    }
}

fn check(
    c: &Common,
    every: Option<Duration>,
    metrics_listen: Option<std::net::SocketAddr>,
) -> anyhow::Result<ExitCode> {
    let (desired, files) = read_desired(&c.desired)?;
    let mut rules = DiffRules::default();
    for i in &c.ignore {
        let (kind, path) = i
            .split_once(':')
            .filter(|(_, p)| p.starts_with('/'))
            .ok_or_else(|| {
                anyhow!("--ignore {i:?}: write KIND:/json/pointer or *:/json/pointer")
            })?;
        rules
            .ignore
            .push(PathRule::new((kind != "*").then_some(kind), path));
    }
    let tenant = TenantId::new("local")?;
    let flags = Arc::new(MemoryFlagStore::new());
    let proposer = Arc::new(MemoryChangeProposer::new());
    let pager = Arc::new(MemoryPager::new());
    let detector = DriftDetector::new(
        tenant.clone(),
        c.env.clone(),
        DetectorParts {
            source: Arc::new(FileSource {
                name: format!("file:{}", c.live.display()),
                path: c.live.clone(),
            }),
            pager: pager.clone(),
            proposer: proposer.clone(),
            flags: flags.clone(),
            clock: Arc::new(SystemClock),
        },
        rules,
    );
    let rt = tokio::runtime::Runtime::new().context("starting the runtime")?;
    rt.block_on(async {
        if let Some(addr) = metrics_listen {
            let bound = crate::observability::serve_metrics(addr).await?;
            println!("metrics on http://{bound}/metrics");
        }
        flags
            .set(&tenant, Flag::DriftPrBotEnabled, c.proposals.is_some())
            .await
            .map_err(|e| anyhow!("{e}"))?;
        loop {
            let r = detector.scan(&desired, &files).await?;
            let stamp =
                r.at.format(&time::format_description::well_known::Rfc3339)?;
            if r.findings.is_empty() {
                println!("{stamp} in sync: {} object(s) compared", r.compared);
            }
            for f in &r.findings {
                match &f.change {
                    Change::Missing => println!(
                        "{stamp} {} {}: missing [{}]",
                        f.severity.as_str(),
                        f.object,
                        f.fingerprint
                    ),
                    Change::Modified { fields } => {
                        println!(
                            "{stamp} {} {}: {} field(s) differ [{}]",
                            f.severity.as_str(),
                            f.object,
                            fields.len(),
                            f.fingerprint
                        );
                        for d in fields {
                            println!("    {}: desired {} live {}", d.path, d.desired, d.live);
                        }
                    }
                }
            }
            if let Some(dir) = &c.proposals {
                write_proposals(dir, &proposer)?;
            }
            let Some(every) = every else {
                return Ok(if r.findings.is_empty() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                });
            };
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
            }
        }
    })
}

fn write_proposals(dir: &Path, proposer: &MemoryChangeProposer) -> anyhow::Result<()> {
    for (p, r) in proposer.proposals() {
        let d = dir.join(&p.fingerprint);
        if d.exists() {
            continue;
        }
        std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
        std::fs::write(
            d.join("PULL_REQUEST.md"),
            format!(
                "# {}\n\nLabels: {}\n\n{}",
                p.title,
                p.labels.join(", "),
                p.body
            ),
        )?;
        for (path, text) in &p.files {
            let name = path.replace(['/', '\\'], "__");
            std::fs::write(d.join(name), text)?;
        }
        println!(
            "proposal {} ({}): {} -> {}",
            r.number,
            p.labels.join(", "),
            p.title,
            d.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_interval;

    #[test]
    fn intervals_name_the_flag() {
        assert_eq!(parse_interval("2m").unwrap().as_secs(), 120);
        assert!(
            parse_interval("0m")
                .unwrap_err()
                .to_string()
                .contains("--interval")
        );
    }
}
