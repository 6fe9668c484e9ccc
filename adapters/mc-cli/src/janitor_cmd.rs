//! `mc janitor` — the TTL janitor (spec §5.6), its manifests and its CronJob; a thin
//! layer over `mc-lifecycle`.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use mc_core::{ActorId, AuditLog, BlobStore, MemoryStore, SystemClock, TenantId};
use mc_evidence::EvidenceKey;
use mc_evidence::dsse::public_key_from_pem;
use mc_lifecycle::{
    Janitor, KindRule, Outcome, Phase, PurgeOptions, Retaining, Retention, Ttl,
    verify_deletion_manifest,
};

/// Arguments of `mc janitor`.
#[derive(Debug, clap::Args)]
pub struct JanitorArgs {
    #[command(subcommand)]
    command: JanitorCommand,
}

#[derive(Debug, clap::Subcommand)]
enum JanitorCommand {
    /// Delete expired objects of one kind and write signed deletion manifests.
    /// Exit 0 when done, 1 when some objects could not be deleted, 2 on an error.
    Purge(PurgeArgs),
    /// Verify a deletion manifest (`plan.dsse.json` / `result.dsse.json`) with the
    /// janitor's public key and print it. Exit 0 valid, 1 invalid.
    Verify {
        /// The manifest file.
        manifest: PathBuf,
        /// The public key (`KEY.pub`).
        #[arg(long)]
        key: PathBuf,
    },
    /// Set or remove a tenant's retention override in PostgreSQL, with its
    /// `mc.lifecycle.override` audit event in the same transaction.
    Override(OverrideArgs),
    /// Print a tenant's retention: each kind's period in force and where it comes from.
    Show {
        /// PostgreSQL holding the overrides.
        #[arg(long)]
        database_url: String,
        /// The tenant.
        #[arg(long)]
        tenant: String,
    },
    /// Print the Kubernetes CronJob that runs `purge` (spec §5.6).
    Cronjob {
        /// The blob kind.
        #[arg(long)]
        kind: String,
        /// The period.
        #[arg(long)]
        ttl: String,
        /// The image.
        #[arg(long, default_value = "ghcr.io/maestro-conductor/mc-janitor:0.6.0")]
        image: String,
        /// The cron schedule.
        #[arg(long, default_value = "0 3 * * *")]
        schedule: String,
        /// The blob store URL passed to the job.
        #[arg(long, default_value = "s3://mc-blobs")]
        blobs: String,
        /// The Secret holding the signing key (mounted at /keys/janitor.pem).
        #[arg(long, default_value = "mc-janitor-key")]
        key_secret: String,
    },
}

/// Runs `mc janitor`.
pub fn run(args: JanitorArgs) -> ExitCode {
    let result = match args.command {
        JanitorCommand::Purge(args) => purge(args),
        JanitorCommand::Verify { manifest, key } => verify(&manifest, &key),
        JanitorCommand::Override(args) => set_override(args),
        JanitorCommand::Show {
            database_url,
            tenant,
        } => show(&database_url, &tenant),
        JanitorCommand::Cronjob {
            kind,
            ttl,
            image,
            schedule,
            blobs,
            key_secret,
        } => cronjob(&kind, &ttl, &image, &schedule, &blobs, &key_secret),
    };
    result.unwrap_or_else(|e| {
        eprintln!("mc janitor: {e:#}");
        ExitCode::from(2)
    })
}

#[derive(Debug, clap::Args)]
struct PurgeArgs {
    /// The blob store: `file:///dir`, `s3://bucket/prefix`, `memory://`.
    #[arg(long)]
    blobs: String,
    /// The blob kind (`logs`, `receipts`, …).
    #[arg(long)]
    kind: String,
    /// The kind's period for tenants without an override (within the kind's
    /// bounds: logs 1d–10y, receipts 7y–100y).
    #[arg(long)]
    ttl: Option<String>,
    /// Only these tenants (repeatable); default every tenant in the store.
    #[arg(long = "tenant")]
    tenants: Vec<String>,
    /// Retention rules and per-tenant overrides (JSON, as `Retention` serialises).
    #[arg(long)]
    retention: Option<PathBuf>,
    /// The private key (PKCS#8 PEM, `mc evidence keygen`) that signs the manifests.
    #[arg(long)]
    key: PathBuf,
    /// List what would be deleted; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// The run's id (default `{kind}-{yyyymmddThhmmZ}`).
    #[arg(long)]
    run_id: Option<String>,
    /// Append the audit events of the run to this file (JSON lines).
    #[arg(long)]
    audit_out: Option<PathBuf>,
    /// PostgreSQL (migrated on start): the tenants' retention overrides are read from
    /// it (they replace any in --retention) and the run's audit events are appended
    /// to the tenants' chains in it. Without it the events stay in memory (see
    /// --audit-out).
    #[arg(long)]
    database_url: Option<String>,
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("change").required(true).args(["ttl", "clear"])))]
struct OverrideArgs {
    /// PostgreSQL holding the overrides and the audit chains (migrated on start).
    #[arg(long)]
    database_url: String,
    /// The tenant.
    #[arg(long)]
    tenant: String,
    /// The blob kind (`logs`, `receipts`).
    #[arg(long)]
    kind: String,
    /// The new period (within the kind's bounds: logs 1d–10y, receipts 7y–100y).
    #[arg(long)]
    ttl: Option<String>,
    /// Remove the override: the kind's default applies again.
    #[arg(long)]
    clear: bool,
    /// Who makes the change (recorded in the audit event).
    #[arg(long)]
    actor: String,
    /// Why (recorded in the audit event).
    #[arg(long)]
    reason: String,
}

async fn connect(url: &str) -> anyhow::Result<mc_postgres::PgStore> {
    let pg = mc_postgres::PgStore::connect(url, 4)
        .await
        .context("connecting to --database-url")?;
    pg.migrate().await.context("migrating the database")?;
    Ok(pg)
}

fn set_override(args: OverrideArgs) -> anyhow::Result<ExitCode> {
    let tenant = TenantId::new(args.tenant.as_str()).context("--tenant")?;
    let actor = ActorId::new(args.actor.as_str()).context("--actor")?;
    let ttl: Option<Ttl> = args
        .ttl
        .as_deref()
        .map(str::parse)
        .transpose()
        .context("--ttl")?;
    let rt = tokio::runtime::Runtime::new().context("starting the runtime")?;
    rt.block_on(async {
        let pg = connect(&args.database_url).await?;
        let previous = mc_lifecycle::set_override_audited(
            &Retention::new(),
            &pg,
            mc_lifecycle::OverrideChange {
                tenant: &tenant,
                actor: &actor,
                kind: &args.kind,
                ttl,
                reason: &args.reason,
            },
            time::OffsetDateTime::now_utc(),
        )
        .await?;
        match ttl {
            Some(ttl) => println!("{tenant}: {} {previous} -> {ttl}", args.kind),
            None => println!(
                "{tenant}: {} {previous} -> default {}",
                args.kind,
                Retention::new()
                    .rule(&args.kind)
                    .map(|r| r.default.to_string())
                    .unwrap_or_default()
            ),
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn show(url: &str, tenant: &str) -> anyhow::Result<ExitCode> {
    let tenant = TenantId::new(tenant).context("--tenant")?;
    let rt = tokio::runtime::Runtime::new().context("starting the runtime")?;
    rt.block_on(async {
        let pg = connect(url).await?;
        let mut retention = Retention::new();
        mc_lifecycle::load_overrides(
            &mut retention,
            &pg,
            std::slice::from_ref(&tenant),
            time::OffsetDateTime::now_utc(),
        )
        .await?;
        let overrides = retention.overrides(&tenant);
        for kind in retention.kinds() {
            let Some(ttl) = retention.effective(&tenant, kind) else {
                continue;
            };
            let source = if overrides.contains_key(kind) {
                "override"
            } else {
                "default"
            };
            println!("{kind}\t{ttl}\t{source}");
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn retention_for(args: &PurgeArgs) -> anyhow::Result<Retention> {
    let mut retention = match &args.retention {
        Some(p) => serde_json::from_str(
            &std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
        )
        .with_context(|| format!("--retention {}", p.display()))?,
        None => Retention::new(),
    };
    if let Some(ttl) = &args.ttl {
        let ttl: Ttl = ttl.parse().context("--ttl")?;
        let rule = retention
            .check_bounds(&args.kind, ttl, time::OffsetDateTime::now_utc())
            .context("--ttl")?
            .clone();
        retention = retention.with_rule(
            &args.kind,
            KindRule {
                default: ttl,
                ..rule
            },
        );
    }
    Ok(retention)
}

fn purge(args: PurgeArgs) -> anyhow::Result<ExitCode> {
    let retention = retention_for(&args)?;
    if retention.rule(&args.kind).is_none() {
        bail!(
            "no retention rule for kind {:?}; its objects are kept",
            args.kind
        );
    }
    let pem = std::fs::read_to_string(&args.key)
        .with_context(|| format!("reading {}", args.key.display()))?;
    let key = EvidenceKey::from_pkcs8_pem(&pem).context("--key")?;
    let options = mc_objectstore::BlobStoreOptions::default();
    let raw: Arc<dyn BlobStore> = Arc::new(
        mc_objectstore::ObjectBlobStore::from_url(&args.blobs, &options)
            .with_context(|| format!("opening --blobs {}", args.blobs))?,
    );
    let clock = Arc::new(SystemClock);
    let rt = tokio::runtime::Runtime::new().context("starting the runtime")?;
    rt.block_on(async {
        let tenants: Vec<TenantId> = if args.tenants.is_empty() {
            let mut seen = BTreeSet::new();
            for m in raw.list("tenants/").await? {
                if let Some(t) = m.key.tenant() {
                    seen.insert(t);
                }
            }
            seen.into_iter().collect()
        } else {
            args.tenants
                .iter()
                .map(|t| TenantId::new(t.as_str()).with_context(|| format!("--tenant {t}")))
                .collect::<anyhow::Result<_>>()?
        };
        let mut retention = retention;
        let audit: Arc<dyn AuditLog> = match &args.database_url {
            Some(url) => {
                let pg = connect(url).await?;
                mc_lifecycle::load_overrides(
                    &mut retention,
                    &pg,
                    &tenants,
                    time::OffsetDateTime::now_utc(),
                )
                .await?;
                Arc::new(pg)
            }
            None => Arc::new(MemoryStore::new()),
        };
        let blobs: Arc<dyn BlobStore> =
            Arc::new(Retaining::new(raw, retention.clone(), clock.clone()));
        let janitor = Janitor::new(blobs, audit.clone(), clock, key, retention);
        let opts = PurgeOptions {
            dry_run: args.dry_run,
            run_id: args.run_id.clone(),
        };
        let mut failed = 0;
        let mut events = Vec::new();
        for tenant in &tenants {
            // Only this run's events go to --audit-out (a PostgreSQL chain holds more).
            let before = audit
                .head(tenant)
                .await
                .map_err(|e| anyhow!("{e}"))?
                .map_or(0, |h| h.seq);
            let r = janitor
                .purge(tenant, &args.kind, &opts)
                .await
                .with_context(|| format!("tenant {tenant}"))?;
            failed += r.failed;
            let verb = if args.dry_run { "would delete" } else { "deleted" };
            println!(
                "{tenant}: {} {} of {} examined past {} ({verb} {}; already gone {}, kept as rewritten {}, failed {}){}{}",
                args.kind,
                r.expired,
                r.examined,
                r.ttl,
                if args.dry_run { r.expired } else { r.deleted },
                r.already_gone,
                r.skipped,
                r.failed,
                r.result_key
                    .as_ref()
                    .map(|k| format!("; manifest {k}"))
                    .unwrap_or_default(),
                if r.recovered.is_empty() {
                    String::new()
                } else {
                    format!("; finished interrupted runs {}", r.recovered.join(", "))
                }
            );
            events.extend(
                audit
                    .read(tenant, before, u32::MAX)
                    .await
                    .map_err(|e| anyhow!("{e}"))?,
            );
        }
        if let Some(path) = &args.audit_out {
            let mut out = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("opening {}", path.display()))?;
            for e in &events {
                serde_json::to_writer(&mut out, e)?;
                out.write_all(b"\n")?;
            }
        }
        Ok(if failed > 0 {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        })
    })
}

fn verify(manifest: &PathBuf, key: &PathBuf) -> anyhow::Result<ExitCode> {
    let pem = std::fs::read_to_string(key).with_context(|| format!("reading {}", key.display()))?;
    let public = public_key_from_pem(&pem).context("--key")?;
    let bytes =
        std::fs::read(manifest).with_context(|| format!("reading {}", manifest.display()))?;
    match verify_deletion_manifest(&bytes, &public) {
        Ok(m) => {
            let phase = match m.phase {
                Phase::Plan => "plan",
                Phase::Result => "result",
            };
            println!(
                "valid {phase} of run {} for tenant {}: {} {} object(s) past {}",
                m.run_id,
                m.tenant,
                m.entries.len(),
                m.kind,
                m.ttl
            );
            for e in &m.entries {
                let outcome = match &e.outcome {
                    None => "planned".to_string(),
                    Some(Outcome::Deleted) => "deleted".to_string(),
                    Some(Outcome::AlreadyGone) => "already gone".to_string(),
                    Some(Outcome::SkippedModified { .. }) => "kept (rewritten)".to_string(),
                    Some(Outcome::Failed { error }) => format!("failed: {error}"),
                };
                println!("  {} ({} bytes): {outcome}", e.key, e.size);
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("invalid: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

fn cronjob(
    kind: &str,
    ttl: &str,
    image: &str,
    schedule: &str,
    blobs: &str,
    key_secret: &str,
) -> anyhow::Result<ExitCode> {
    let ttl: Ttl = ttl.parse().context("--ttl")?;
    Retention::new()
        .check_bounds(kind, ttl, time::OffsetDateTime::now_utc())
        .context("--ttl")?;
    let job = serde_json::json!({
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": { "name": format!("mc-{kind}-ttl") },
        "spec": {
            "schedule": schedule,
            // One janitor at a time; a run that overlaps the next is not started.
            "concurrencyPolicy": "Forbid",
            "jobTemplate": { "spec": {
                "backoffLimit": 3,
                "template": { "spec": {
                    "restartPolicy": "OnFailure",
                    "containers": [{
                        "name": "purge",
                        "image": image,
                        "args": [
                            "janitor", "purge",
                            format!("--kind={kind}"),
                            format!("--ttl={ttl}"),
                            format!("--blobs={blobs}"),
                            "--key=/keys/janitor.pem",
                        ],
                        "volumeMounts": [{ "name": "key", "mountPath": "/keys", "readOnly": true }],
                    }],
                    "volumes": [{ "name": "key", "secret": { "secretName": key_secret,
                        "items": [{ "key": "janitor.pem", "path": "janitor.pem" }] } }],
                }},
            }},
        },
    });
    print!("{}", yaml_serde::to_string(&job).context("rendering YAML")?);
    Ok(ExitCode::SUCCESS)
}
