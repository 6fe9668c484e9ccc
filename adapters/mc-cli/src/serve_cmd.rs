//! `mc serve`: the console HTTP API (`mc-http`) on the in-memory default, or on
//! PostgreSQL with `--database-url`.
//!
//! The command only wires adapters together: stores, the step-up ceremony, the
//! demo bearer tokens, the router. It logs one line per request (target
//! `mc_http::access`; tune with `RUST_LOG`).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use mc_actions::{ActionService, HmacStepUp};
use mc_core::{
    ActionCommit, Actor, ActorId, AuditLog, BlobError, BlobKey, BlobStore, Clock, Digest,
    Execution, ExecutionId, ExecutionState, ExecutionStore, Flag, FlagStore, MemoryFlagStore,
    MemoryStore, PutMode, StepUpVerifier, StoreError, SystemClock, TenantId,
};
use mc_http::{
    AppState, EvidenceApi, HmacIssuer, Principal, SCOPE_READ, SCOPE_WRITE, StaticTokens,
    StepUpIssuer, WebauthnIssuer,
};

/// Arguments of `mc serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the chosen address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// PostgreSQL URL for executions, audit, flags and passkeys (migrated on start).
    /// Without it everything lives in process memory and the demo data is seeded.
    #[arg(long)]
    pub database_url: Option<String>,
    /// Connection pool size for --database-url.
    #[arg(long, default_value_t = 16)]
    pub max_connections: u32,
    /// Blob store for evidence and logs: s3://bucket/prefix, file:///dir or memory://
    /// (default memory://; S3 credentials from the AWS_* environment). Local and
    /// in-memory stores get HMAC pre-signed URLs served by GET /api/blobs/{key}.
    #[arg(long)]
    pub blobs: Option<String>,
    /// Seed the demo tenants and flags into the database too (always done in memory).
    #[arg(long)]
    pub seed_demo: bool,
    /// Step-up ceremony: `demo` (bearer re-check + HMAC grant; NOT a second factor)
    /// or `webauthn` (passkeys).
    #[arg(long, value_enum, default_value_t = StepUpMode::Demo)]
    pub step_up: StepUpMode,
    /// WebAuthn relying-party origin: the console's origin.
    #[arg(long, default_value = "http://localhost:8080")]
    pub rp_origin: String,
    /// WebAuthn relying-party id (default: the host of --rp-origin).
    #[arg(long)]
    pub rp_id: Option<String>,
    /// Largest accepted request body in bytes.
    #[arg(long, default_value_t = mc_http::DEFAULT_BODY_LIMIT)]
    pub body_limit: usize,
}

/// The step-up ceremony `mc serve` offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StepUpMode {
    /// Demo ceremony over an HMAC grant (proves possession of the bearer token only).
    Demo,
    /// Passkeys through WebAuthn (mc-webauthn).
    Webauthn,
}

/// Runs the server until Ctrl-C.
pub fn run(args: ServeArgs) -> ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

struct Stores {
    executions: Arc<dyn ExecutionStore>,
    audit: Arc<dyn AuditLog>,
    flags: Arc<dyn FlagStore>,
    passkeys: Arc<dyn mc_webauthn::StepUpStore>,
    retention: Arc<dyn mc_core::RetentionStore>,
    label: String,
}

async fn open_stores(args: &ServeArgs) -> anyhow::Result<Stores> {
    match &args.database_url {
        None => {
            let store = Arc::new(MemoryStore::new());
            Ok(Stores {
                executions: store.clone(),
                audit: store.clone(),
                retention: store,
                flags: Arc::new(MemoryFlagStore::new()),
                passkeys: Arc::new(mc_webauthn::MemoryStepUpStore::new()),
                label: "memory".into(),
            })
        }
        Some(url) => {
            let pg = mc_postgres::PgStore::connect(url, args.max_connections)
                .await
                .context("connecting to --database-url")?;
            pg.migrate().await.context("migrating the database")?;
            let passkeys = mc_webauthn::PgStepUpStore::new(pg.pool().clone());
            passkeys
                .migrate()
                .await
                .context("migrating the step-up tables")?;
            let pg = Arc::new(pg);
            Ok(Stores {
                executions: pg.clone(),
                audit: pg.clone(),
                retention: pg.clone(),
                flags: pg,
                passkeys: Arc::new(passkeys),
                label: "postgres".into(),
            })
        }
    }
}

fn random_hex(bytes: usize) -> anyhow::Result<String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// The demo executions: `(tenant, id, state, team label)`.
const DEMO_EXECUTIONS: &[(&str, &str, ExecutionState, &str)] = &[
    ("acme", "exec_1001", ExecutionState::Failed, "payments"),
    ("acme", "exec_1002", ExecutionState::Running, "payments"),
    ("acme", "exec_1003", ExecutionState::Succeeded, "search"),
    ("acme", "exec_1004", ExecutionState::Pending, "search"),
    ("acme", "exec_1005", ExecutionState::Failed, "search"),
    ("globex", "exec_2001", ExecutionState::Failed, "payments"),
];

/// Seeds the demo tenants: `acme` with console actions and evidence v2 on, `globex`
/// with every flag off (a read-only console). Existing executions are kept.
async fn seed(stores: &Stores, clock: &dyn Clock) -> anyhow::Result<()> {
    let acme = TenantId::new("acme")?;
    stores
        .flags
        .set(&acme, Flag::ConsoleActionsEnabled, true)
        .await?;
    stores
        .flags
        .set(&acme, Flag::EvidenceV2Enabled, true)
        .await?;
    let base = clock.now() - time::Duration::hours(1);
    for (i, (tenant, id, state, team)) in DEMO_EXECUTIONS.iter().enumerate() {
        let tenant = TenantId::new(*tenant)?;
        let at = base + time::Duration::minutes(i as i64);
        let mut exec = Execution::new(
            tenant.clone(),
            ExecutionId::new(*id)?,
            Digest::of(format!("manifest of {id}").as_bytes()),
            Digest::of(format!("inputs of {id}").as_bytes()),
            at,
        )
        .with_label("team", *team);
        exec.state = *state;
        let mut unit = ActionCommit::new(tenant, at);
        unit.create = Some(exec);
        match stores.executions.commit(unit).await {
            Ok(_) | Err(StoreError::AlreadyExists { .. }) => {}
            Err(e) => return Err(e).context(format!("seeding {id}")),
        }
    }
    Ok(())
}

/// The demo principals: `(name, subject, tenant, role, scopes)`.
const DEMO_PRINCIPALS: &[(&str, &str, &str, &str, &[&str])] = &[
    (
        "ALICE",
        "alice@acme",
        "acme",
        "operator",
        &[SCOPE_READ, SCOPE_WRITE],
    ),
    (
        "BOB",
        "bob@acme",
        "acme",
        "viewer",
        &[SCOPE_READ, SCOPE_WRITE],
    ),
    ("CAROL", "carol@acme", "acme", "operator", &[SCOPE_READ]),
    (
        "RITA",
        "rita@acme",
        "acme",
        mc_http::RETENTION_ADMIN_ROLE,
        &[SCOPE_READ, SCOPE_WRITE],
    ),
    (
        "GINA",
        "gina@globex",
        "globex",
        "operator",
        &[SCOPE_READ, SCOPE_WRITE],
    ),
];

/// How often the rollback watch checks (half of the 2-minute deadline, and then some).
const ROLLBACK_CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let stores = open_stores(&args).await?;
    let seeded = args.database_url.is_none() || args.seed_demo;
    if seeded {
        seed(&stores, clock.as_ref()).await?;
    }
    let (verifier, issuer): (Arc<dyn StepUpVerifier>, Arc<dyn StepUpIssuer>) = match args.step_up {
        StepUpMode::Demo => {
            let mut key = [0u8; 32];
            getrandom::fill(&mut key).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
            let hmac = Arc::new(HmacStepUp::new(key.to_vec()));
            (hmac.clone(), Arc::new(HmacIssuer::new(hmac, clock.clone())))
        }
        StepUpMode::Webauthn => {
            let origin = url::Url::parse(&args.rp_origin)
                .with_context(|| format!("--rp-origin {:?} is not a URL", args.rp_origin))?;
            let rp_id = match &args.rp_id {
                Some(id) => id.clone(),
                None => match origin.host_str() {
                    Some(h) => h.to_string(),
                    None => bail!("--rp-origin {origin} has no host; give --rp-id"),
                },
            };
            let config = mc_webauthn::StepUpConfig::new(
                rp_id,
                origin,
                mc_webauthn::GrantKey::random().context("generating the grant key")?,
            );
            let wa =
                mc_webauthn::WebauthnStepUp::new(config, stores.passkeys.clone(), clock.clone())
                    .context("configuring WebAuthn")?;
            (Arc::new(wa.clone()), Arc::new(WebauthnIssuer::new(wa)))
        }
    };

    let mut tokens = StaticTokens::new();
    let mut printed = Vec::new();
    for (name, sub, tenant, role, scopes) in DEMO_PRINCIPALS {
        let token = format!("mc_demo_{}_{}", name.to_lowercase(), random_hex(16)?);
        let actor = Actor::new(ActorId::new(*sub)?, TenantId::new(*tenant)?, [*role]);
        tokens.insert(
            &token,
            Principal {
                actor,
                scopes: scopes.iter().map(|s| s.to_string()).collect(),
            },
        );
        printed.push((name, sub, role, scopes.join(" "), token));
    }

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;
    let base = format!("http://{addr}");

    // Blobs and evidence: HMAC-signed URLs point at this server's download route.
    let blobs_url = args
        .blobs
        .clone()
        .unwrap_or_else(|| "memory://".to_string());
    let url_secret = random_hex(32)?.into_bytes();
    let blob_base = format!("{base}/api/blobs");
    let options = mc_objectstore::BlobStoreOptions {
        signing_secret: Some(url_secret.clone()),
        signing_base_url: Some(blob_base.clone()),
        ..mc_objectstore::BlobStoreOptions::default()
    };
    let blobs: Arc<dyn BlobStore> = Arc::new(
        mc_objectstore::ObjectBlobStore::from_url(&blobs_url, &options)
            .with_context(|| format!("opening --blobs {blobs_url}"))?,
    );
    if seeded {
        let key = BlobKey::new("tenants/acme/logs/exec_1003/run.log")?;
        match blobs
            .put(&key, "step 1 ok\nstep 2 ok\n".into(), PutMode::Create)
            .await
        {
            Ok(_) | Err(BlobError::AlreadyExists { .. }) => {}
            Err(e) => return Err(e).context("seeding the demo log blob"),
        }
    }
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let evidence = EvidenceApi {
        service: mc_evidence::EvidenceService::new(
            stores.executions.clone(),
            stores.flags.clone(),
            blobs.clone(),
            clock.clone(),
        )
        .with_signing_key(mc_evidence::EvidenceKey::from_seed(seed)),
        access: mc_evidence::AccessLogger::new(
            mc_core::signed_url::UrlSigner::new(url_secret, blob_base),
            stores.audit.clone(),
            clock.clone(),
        ),
        blobs,
    };

    let retention = mc_http::RetentionApi::new(stores.retention.clone(), clock.clone());
    // MC-SRE-1161: bad retries and replays roll the tenant's console writes back. The
    // watch list is rebuilt from the audit chains of the tenants this server serves.
    let watch = Arc::new(mc_actions::RollbackWatch::new(
        stores.executions.clone(),
        stores.flags.clone(),
        stores.audit.clone(),
        clock.clone(),
        mc_actions::RollbackPolicy::default(),
    ));
    let mut tenants: Vec<TenantId> = DEMO_PRINCIPALS
        .iter()
        .map(|p| TenantId::new(p.2))
        .collect::<Result<_, _>>()?;
    tenants.sort();
    tenants.dedup();
    let recovered = watch
        .recover(&tenants)
        .await
        .context("rebuilding the rollback watch from the audit chains")?;
    let actions = ActionService::new(
        stores.executions.clone(),
        stores.flags.clone(),
        verifier,
        clock,
    )
    .with_observer(watch.clone());
    let state = AppState::new(
        Arc::new(actions),
        stores.executions.clone(),
        Arc::new(tokens),
        issuer,
    )
    .with_body_limit(args.body_limit)
    .with_evidence(evidence)
    .with_retention(retention);

    println!(
        "mc serve: listening on {base} (store: {}, blobs: {blobs_url}, step-up: {:?})",
        stores.label, args.step_up
    );
    println!("OpenAPI 3.1 document: {base}/openapi.json");
    println!(
        "rollback watch: checks every {}s; {recovered} retries/replays recovered from the audit chains",
        ROLLBACK_CHECK_EVERY.as_secs()
    );
    println!("demo bearer tokens (valid until this process exits):");
    for (name, sub, role, scopes, token) in &printed {
        println!("  export MC_TOKEN_{name}={token}   # {sub}, {role}, {scopes}");
    }
    if seeded {
        println!(
            "demo data: tenant acme (console_actions_enabled, evidence_v2_enabled on) with exec_1001..exec_1005; tenant globex (flags off) with exec_2001"
        );
        println!(
            "  curl -s {base}/api/executions/exec_1003/evidence -H \"Authorization: Bearer $MC_TOKEN_ALICE\""
        );
    }
    match args.step_up {
        StepUpMode::Demo => {
            println!(
                "step-up (demo ceremony — proves the bearer token only, not a second factor):"
            );
            println!(
                "  curl -s -X POST {base}/api/stepup/challenge -H \"Authorization: Bearer $MC_TOKEN_ALICE\" -H 'Content-Type: application/json' -d '{{\"action\":\"retry\",\"executionId\":\"exec_1001\"}}'"
            );
            println!(
                "  curl -s -X POST {base}/api/stepup/verify -H \"Authorization: Bearer $MC_TOKEN_ALICE\" -H 'Content-Type: application/json' -d '{{\"challengeId\":\"<challengeId>\"}}'"
            );
        }
        StepUpMode::Webauthn => {
            println!(
                "step-up (WebAuthn): register a passkey with POST /api/stepup/registration/start|finish, then POST /api/stepup/challenge and /api/stepup/verify with the assertion"
            );
        }
    }
    println!(
        "  curl -s -X POST {base}/api/executions/exec_1001:retry -H \"Authorization: Bearer $MC_TOKEN_ALICE\" -H 'Content-Type: application/json' -H 'Idempotency-Key: demo-1' -d '{{\"reason\":\"transient_error\",\"stepUp\":\"<grant>\"}}'"
    );

    tokio::spawn(async move {
        let mut tick = tokio::time::interval(ROLLBACK_CHECK_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match watch.check().await {
                Ok(rollbacks) => {
                    for r in rollbacks {
                        println!(
                            "rollback: tenant {} console writes turned off after {} bad retry/replay(s) ({}s after the first failure; audit event {})",
                            r.tenant,
                            r.bad.len(),
                            r.seconds_to_rollback,
                            r.audit_event_id
                        );
                    }
                }
                Err(e) => eprintln!("rollback check failed (retrying next tick): {e}"),
            }
        }
    });

    let mut app = mc_http::router(state);
    if let Some(handle) = crate::observability::install() {
        // Prometheus text format; buckets hold the SLO thresholds of the alert rules.
        app = app.merge(crate::observability::metrics_router(handle));
    }
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("serving")?;
    Ok(())
}
