//! `mc egress` — check destinations against a workflow manifest's `egress:` sections,
//! or run the egress proxy for its tasks; a thin layer over `mc-egress` and
//! `mc-egress-proxy`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, anyhow};
use mc_core::{
    AuditLog, Clock, ExecutionId, Flag, FlagStore, MemoryFlagStore, MemoryStore, SystemClock,
    TenantId,
};
use mc_egress::{
    AddressPolicy, Destination, DisclosureNote, IpNet, Mode, TaskRef, Verdict, WorkflowEgress,
    decide,
};
use mc_egress_proxy::{EgressProxy, ProxyConfig, SystemResolver, TaskRegistry};

/// Arguments of `mc egress`.
#[derive(Debug, clap::Args)]
pub struct EgressArgs {
    #[command(subcommand)]
    command: EgressCommand,
}

#[derive(Debug, clap::Subcommand)]
enum EgressCommand {
    /// Check destinations (`host:port`) against one task's allowlist. Exit 0 when all
    /// are allowed, 1 when any is denied, 2 on a bad manifest or argument.
    Check {
        /// The workflow manifest (YAML) with the tasks' `egress:` sections.
        #[arg(long)]
        manifest: PathBuf,
        /// The task id.
        #[arg(long)]
        task: String,
        /// Destinations as `host:port` (`[v6]:port` for IPv6 literals).
        #[arg(required = true)]
        dest: Vec<String>,
    },
    /// Run the egress proxy for every task of a manifest; prints each task's proxy
    /// URL (its credential included) and every blocked call, until Ctrl-C.
    Proxy {
        /// The workflow manifest (YAML).
        #[arg(long)]
        manifest: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:3128")]
        listen: SocketAddr,
        /// Tenant the tasks run for.
        #[arg(long, default_value = "local")]
        tenant: String,
        /// Execution the tasks belong to.
        #[arg(long, default_value = "local-run")]
        execution: String,
        /// Shadow mode: record allowlist violations but let them through
        /// (`egress_policy_enforce` off). The address policy holds either way.
        #[arg(long)]
        shadow: bool,
        /// Open an otherwise denied address range (repeatable), e.g. an internal
        /// service's `10.1.2.0/24`.
        #[arg(long = "allow-range")]
        allow_ranges: Vec<String>,
        /// Close a tunnel with no bytes either way for this long (30s, 5m, 1h).
        #[arg(long, default_value = "5m")]
        idle_timeout: String,
        /// Close every tunnel this long after it opened, busy or not (e.g. the
        /// longest task's run time). Default: no limit. Revoked tasks' tunnels close
        /// at once either way.
        #[arg(long)]
        max_lifetime: Option<String>,
        /// Serve Prometheus metrics (`/metrics`: blocks, open and closed tunnels) on
        /// this address.
        #[arg(long)]
        metrics_listen: Option<SocketAddr>,
    },
}

/// Runs `mc egress`.
pub fn run(args: EgressArgs) -> ExitCode {
    let result = match args.command {
        EgressCommand::Check {
            manifest,
            task,
            dest,
        } => check(&manifest, &task, &dest),
        EgressCommand::Proxy {
            manifest,
            listen,
            tenant,
            execution,
            shadow,
            allow_ranges,
            idle_timeout,
            max_lifetime,
            metrics_listen,
        } => (|| {
            let limits = ProxyOptions {
                idle_timeout: crate::duration_arg::parse("--idle-timeout", &idle_timeout)?,
                max_lifetime: max_lifetime
                    .as_deref()
                    .map(|s| crate::duration_arg::parse("--max-lifetime", s))
                    .transpose()?,
                metrics_listen,
            };
            proxy(
                &manifest,
                listen,
                &tenant,
                &execution,
                shadow,
                &allow_ranges,
                limits,
            )
        })(),
    };
    result.unwrap_or_else(|e| {
        eprintln!("mc egress: {e:#}");
        ExitCode::from(2)
    })
}

fn load(manifest: &PathBuf) -> anyhow::Result<WorkflowEgress> {
    let text = std::fs::read_to_string(manifest)
        .with_context(|| format!("reading {}", manifest.display()))?;
    WorkflowEgress::from_yaml(&text).with_context(|| format!("in {}", manifest.display()))
}

fn check(manifest: &PathBuf, task: &str, dests: &[String]) -> anyhow::Result<ExitCode> {
    let m = load(manifest)?;
    let policy = m
        .task(task)
        .ok_or_else(|| anyhow!("the manifest has no task {task:?}"))?;
    let mut denied = false;
    for raw in dests {
        match Destination::from_authority(raw) {
            Ok(d) => match decide(policy, &d, Mode::Enforce) {
                Verdict::Allow => println!("allow {d}"),
                v => {
                    denied = true;
                    let reason = v.reason().map(ToString::to_string).unwrap_or_default();
                    println!("deny  {d}: {reason}");
                }
            },
            Err(e) => {
                denied = true;
                println!("deny  {raw}: bad target: {e}");
            }
        }
    }
    Ok(if denied {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The proxy's options from the command line.
struct ProxyOptions {
    idle_timeout: std::time::Duration,
    max_lifetime: Option<std::time::Duration>,
    /// Where to serve `/metrics`, if anywhere.
    metrics_listen: Option<SocketAddr>,
}

fn proxy(
    manifest: &PathBuf,
    listen: SocketAddr,
    tenant: &str,
    execution: &str,
    shadow: bool,
    allow_ranges: &[String],
    limits: ProxyOptions,
) -> anyhow::Result<ExitCode> {
    let m = load(manifest)?;
    let tenant = TenantId::new(tenant).context("--tenant")?;
    let execution = ExecutionId::new(execution).context("--execution")?;
    let mut addresses = AddressPolicy::new();
    for r in allow_ranges {
        let net: IpNet = r.parse().map_err(|e| anyhow!("--allow-range {r:?}: {e}"))?;
        addresses = addresses.allow_range(net);
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "mc_egress_proxy=info".into()),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let rt = tokio::runtime::Runtime::new().context("starting the runtime")?;
    rt.block_on(async {
        if let Some(addr) = limits.metrics_listen {
            let bound = crate::observability::serve_metrics(addr).await?;
            println!("metrics on http://{bound}/metrics");
        }
        let registry = Arc::new(TaskRegistry::new());
        let flags = Arc::new(MemoryFlagStore::new());
        flags
            .set(&tenant, Flag::EgressPolicyEnforce, !shadow)
            .await
            .map_err(|e| anyhow!("{e}"))?;
        let audit = Arc::new(MemoryStore::new());
        let running = EgressProxy::new(
            registry.clone(),
            flags,
            audit.clone(),
            Arc::new(SystemClock),
            Arc::new(SystemResolver),
        )
        .with_config(ProxyConfig {
            addresses,
            idle_timeout: limits.idle_timeout,
            max_lifetime: limits.max_lifetime,
            ..ProxyConfig::default()
        })
        .bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
        let mode = if shadow { "shadow" } else { "enforce" };
        println!("egress proxy on {} ({mode} mode)", running.local_addr());
        for (id, policy) in m.tasks() {
            let token = registry.register(
                TaskRef {
                    tenant: tenant.clone(),
                    execution: execution.clone(),
                    task: id.clone(),
                },
                policy.clone(),
            )?;
            let rules: Vec<String> = policy
                .allow
                .iter()
                .map(|r| format!("{} {:?}", r.host, r.ports))
                .collect();
            println!(
                "task {id}: HTTPS_PROXY={}  allow: {}",
                token.proxy_url(running.local_addr()),
                if rules.is_empty() {
                    "nothing".to_string()
                } else {
                    rules.join(", ")
                }
            );
        }
        tokio::signal::ctrl_c()
            .await
            .context("waiting for Ctrl-C")?;
        running.shutdown().await;
        let blocked = audit
            .read(&tenant, 0, u32::MAX)
            .await
            .map_err(|e| anyhow!("{e}"))?;
        println!("{} blocked call(s) recorded", blocked.len());
        // The disclosure note an evidence pack of this execution would carry.
        if let Some(note) =
            DisclosureNote::from_events(&tenant, &execution, &blocked, SystemClock.now())
        {
            println!("{}", note.to_json_pretty());
        }
        Ok(ExitCode::SUCCESS)
    })
}
