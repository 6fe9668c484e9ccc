//! `mc evidence` — keys, packs, manifests and verification; a thin layer over
//! `mc-evidence`. Local directories are read through `mc_evidence::dir::DirBlobStore`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use mc_core::signed_url::UrlSigner;
use mc_core::{
    ActionCommit, BlobKey, BlobStore, Clock, Digest, Execution, ExecutionId, ExecutionStore, Flag,
    FlagStore, MemoryBlobStore, MemoryFlagStore, MemoryStore, PutMode, SystemClock, TenantId,
};
use mc_evidence::dir::DirBlobStore;
use mc_evidence::dsse::{public_key_from_pem, public_key_to_pem};
use mc_evidence::unpack::{DiscardSink, PackSink, read_pack};
use mc_evidence::{
    CancelToken, CustomRule, Envelope, EvidenceKey, EvidenceService, PackArtifact, PackBuilder,
    PackOptions, Redactor, verify_envelope, verify_subjects,
};

/// Arguments of `mc evidence`.
#[derive(Debug, clap::Args)]
pub struct EvidenceArgs {
    #[command(subcommand)]
    command: EvidenceCommand,
}

#[derive(Debug, clap::Subcommand)]
enum EvidenceCommand {
    /// Generate an ed25519 signing key (PKCS#8 PEM) and its public key (`KEY.pub`).
    Keygen {
        /// Where to write the private key; the public key goes to `<OUT>.pub`.
        #[arg(long)]
        out: PathBuf,
        /// Overwrite existing files.
        #[arg(long)]
        force: bool,
    },
    /// Build a redacted, signed disclosure pack (.tar.zst) from a directory.
    Pack {
        /// Source: a directory or a `file:///…` URL.
        #[arg(long)]
        source: String,
        /// The pack to write (written to a temporary name, renamed on success).
        #[arg(long)]
        out: PathBuf,
        /// Private key (PKCS#8 PEM) that signs the pack's statement.
        #[arg(long)]
        key: PathBuf,
        /// Tenant recorded in the manifest.
        #[arg(long, default_value = "local")]
        tenant: String,
        /// Execution recorded in the manifest.
        #[arg(long, default_value = "local-pack")]
        execution: String,
        /// Extra redaction rule `NAME=REGEX` (repeatable).
        #[arg(long = "rule")]
        rules: Vec<String>,
        /// Artifacts fetched in parallel.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Verify a pack and extract it into a new directory.
    Unpack {
        /// The pack.
        pack: PathBuf,
        /// Public key (SPKI PEM).
        #[arg(long)]
        key: PathBuf,
        /// Directory to create (must not exist).
        #[arg(long)]
        out: PathBuf,
    },
    /// Verify a DSSE envelope (or a whole pack). Exit 0 when valid, 1 when not.
    Verify {
        /// An envelope JSON file, or a `.tar.zst` pack.
        envelope: PathBuf,
        /// Public key (SPKI PEM).
        #[arg(long)]
        key: PathBuf,
        /// Also check every subject's digest against this directory / `file://` URL.
        #[arg(long)]
        blobs: Option<String>,
    },
    /// Print the evidence manifest of an execution (JSON).
    Manifest {
        /// The execution id.
        #[arg(long)]
        execution: String,
        /// The tenant.
        #[arg(long, default_value = "acme")]
        tenant: String,
        /// Blob directory laid out as `tenants/{tenant}/{kind}/{execution}/{name}`;
        /// without it, an embedded demo store with execution `exec_demo` is used.
        #[arg(long)]
        source: Option<String>,
        /// Sign the manifest with this private key (prints `{manifest, envelope}`).
        #[arg(long)]
        key: Option<PathBuf>,
    },
}

/// Runs `mc evidence`.
pub fn run(args: EvidenceArgs) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let verify = matches!(args.command, EvidenceCommand::Verify { .. });
    match rt.block_on(dispatch(args.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if verify {
                println!("invalid: {e:#}");
                ExitCode::from(1)
            } else {
                eprintln!("error: {e:#}");
                ExitCode::from(1)
            }
        }
    }
}

async fn dispatch(cmd: EvidenceCommand) -> anyhow::Result<()> {
    match cmd {
        EvidenceCommand::Keygen { out, force } => keygen(&out, force),
        EvidenceCommand::Pack {
            source,
            out,
            key,
            tenant,
            execution,
            rules,
            concurrency,
            quiet,
        } => {
            let mut opts = PackOptions::new(TenantId::new(tenant)?, ExecutionId::new(execution)?);
            opts.concurrency = concurrency;
            pack(&source, &out, &key, opts, &rules, quiet).await
        }
        EvidenceCommand::Unpack { pack, key, out } => unpack(&pack, &key, &out),
        EvidenceCommand::Verify {
            envelope,
            key,
            blobs,
        } => verify(&envelope, &key, blobs.as_deref()).await,
        EvidenceCommand::Manifest {
            execution,
            tenant,
            source,
            key,
        } => manifest(&tenant, &execution, source.as_deref(), key.as_deref()).await,
    }
}

fn pub_path(key: &Path) -> PathBuf {
    let mut s = key.as_os_str().to_owned();
    s.push(".pub");
    PathBuf::from(s)
}

fn keygen(out: &Path, force: bool) -> anyhow::Result<()> {
    let pubp = pub_path(out);
    if !force && (out.exists() || pubp.exists()) {
        bail!(
            "{} or {} already exists (use --force)",
            out.display(),
            pubp.display()
        );
    }
    let key = EvidenceKey::generate()?;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let pem = key.to_pkcs8_pem()?;
    opts.open(out)
        .and_then(|mut f| f.write_all(pem.as_bytes()))
        .with_context(|| format!("writing {}", out.display()))?;
    std::fs::write(&pubp, public_key_to_pem(&key.verifying_key())?)
        .with_context(|| format!("writing {}", pubp.display()))?;
    println!(
        "wrote {} and {} (keyid {})",
        out.display(),
        pubp.display(),
        key.key_id()
    );
    Ok(())
}

fn read_key(path: &Path) -> anyhow::Result<EvidenceKey> {
    let pem =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    EvidenceKey::from_pkcs8_pem(&pem).with_context(|| path.display().to_string())
}

fn read_pub(path: &Path) -> anyhow::Result<mc_evidence::dsse::PublicKey> {
    let pem =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    public_key_from_pem(&pem).with_context(|| path.display().to_string())
}

/// A directory (or `file:///dir`) as a blob store.
fn dir_store(source: &str) -> anyhow::Result<DirBlobStore> {
    let path = match source.split_once("://") {
        Some(("file", rest)) => PathBuf::from(rest),
        Some((scheme, _)) => bail!(
            "source scheme {scheme}:// is not supported by the CLI yet; use a directory or file:///path"
        ),
        None => PathBuf::from(source),
    };
    if !path.is_dir() {
        bail!("source {} is not a directory", path.display());
    }
    Ok(DirBlobStore::new(
        path,
        UrlSigner::new(local_secret(), "file://mc"),
    ))
}

fn local_secret() -> Vec<u8> {
    let mut s = vec![0u8; 32];
    if let Ok(k) = EvidenceKey::generate() {
        s.copy_from_slice(&k.verifying_key().to_bytes());
    }
    s
}

fn parse_rules(rules: &[String]) -> anyhow::Result<Redactor> {
    let custom = rules
        .iter()
        .map(|r| {
            r.split_once('=')
                .map(|(n, p)| CustomRule {
                    name: n.to_string(),
                    pattern: p.to_string(),
                })
                .ok_or_else(|| anyhow!("--rule {r:?}: expected NAME=REGEX"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Redactor::with_rules(&custom)?)
}

async fn pack(
    source: &str,
    out: &Path,
    key: &Path,
    opts: PackOptions,
    rules: &[String],
    quiet: bool,
) -> anyhow::Result<()> {
    let key = read_key(key)?;
    let redactor = Arc::new(parse_rules(rules)?);
    let store = Arc::new(dir_store(source)?);
    let artifacts = PackArtifact::list(store.as_ref(), "").await?;
    if artifacts.is_empty() {
        bail!("source {source} holds no files");
    }
    let total: u64 = artifacts.iter().map(|a| a.size).sum();
    let bar = if quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(total)
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {bytes}/{total_bytes} {bytes_per_sec} {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let cancel = CancelToken::new();
    {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                cancel.cancel();
            }
        });
    }
    let pb = bar.clone();
    let builder = PackBuilder::new(store, redactor, key, Arc::new(SystemClock), opts)
        .with_cancel(cancel)
        .with_progress(Arc::new(move |p| {
            pb.set_position(p.bytes_done);
            pb.set_message(format!(
                "{}/{} {}",
                p.artifacts_done, p.artifacts_total, p.current
            ));
        }));
    // Nothing partial is published: write a hidden temporary file beside the target
    // and rename it only when the whole pack succeeded.
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let fname = out
        .file_name()
        .ok_or_else(|| anyhow!("--out {} has no file name", out.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        fname.to_string_lossy(),
        std::process::id()
    ));
    let file =
        std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let result = builder
        .build(artifacts, std::io::BufWriter::with_capacity(1 << 20, file))
        .await;
    bar.finish_and_clear();
    let (report, w) = match result {
        Ok(v) => v,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e.into());
        }
    };
    let finish = w
        .into_inner()
        .map_err(|e| e.into_error())
        .and_then(|f| f.sync_all())
        .and_then(|()| std::fs::rename(&tmp, out));
    if let Err(e) = finish {
        let _ = std::fs::remove_file(&tmp);
        return Err(anyhow!(e).context(format!("writing {}", out.display())));
    }
    println!(
        "packed {} artifacts, {} bytes -> {} bytes in {} ms; redactions: {}",
        report.manifest.artifacts.len(),
        report.bytes_in,
        report.bytes_out,
        report.elapsed.as_millis(),
        serde_json::to_string(&report.redactions)?
    );
    Ok(())
}

/// Writes artifacts below a directory, refusing paths that would escape it.
struct DirSink {
    root: PathBuf,
}

impl PackSink for DirSink {
    fn artifact(
        &mut self,
        path: &str,
        _size: u64,
        data: &mut dyn std::io::Read,
    ) -> std::io::Result<()> {
        let key = BlobKey::new(path).map_err(|e| std::io::Error::other(e.to_string()))?;
        let dest = self.root.join(key.as_str());
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut f = std::io::BufWriter::new(std::fs::File::create(dest)?);
        std::io::copy(data, &mut f)?;
        f.flush()
    }
}

fn unpack(pack: &Path, key: &Path, out: &Path) -> anyhow::Result<()> {
    let key = read_pub(key)?;
    if out.exists() {
        bail!("{} already exists", out.display());
    }
    let name = out
        .file_name()
        .ok_or_else(|| anyhow!("--out {} has no name", out.display()))?;
    let tmp = out.with_file_name(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    std::fs::create_dir_all(&tmp)?;
    let result = (|| -> anyhow::Result<_> {
        let file =
            std::fs::File::open(pack).with_context(|| format!("opening {}", pack.display()))?;
        let scan = Arc::new(Redactor::builtin());
        let verified = read_pack(
            std::io::BufReader::new(file),
            &key,
            Some(&scan),
            &mut DirSink { root: tmp.clone() },
        )?;
        if let Some((artifact, counts)) = verified.leaks.iter().next() {
            bail!(
                "post-pack scan: {artifact} still matches {}",
                serde_json::to_string(counts)?
            );
        }
        std::fs::write(
            tmp.join("manifest.json"),
            verified.manifest().to_json_pretty(),
        )?;
        std::fs::write(
            tmp.join("envelope.dsse.json"),
            verified.envelope.to_json_pretty(),
        )?;
        Ok(verified)
    })();
    match result {
        Ok(v) => {
            std::fs::rename(&tmp, out)?;
            println!(
                "verified and unpacked {} artifacts into {}",
                v.artifacts,
                out.display()
            );
            Ok(())
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}

async fn verify(envelope: &Path, key: &Path, blobs: Option<&str>) -> anyhow::Result<()> {
    let key = read_pub(key)?;
    let bytes =
        std::fs::read(envelope).with_context(|| format!("reading {}", envelope.display()))?;
    if bytes.starts_with(&[0x28, 0xB5, 0x2F, 0xFD]) {
        let scan = Arc::new(Redactor::builtin());
        let v = read_pack(&bytes[..], &key, Some(&scan), &mut DiscardSink)?;
        if let Some((artifact, counts)) = v.leaks.iter().next() {
            bail!(
                "post-pack scan: {artifact} still matches {}",
                serde_json::to_string(counts)?
            );
        }
        println!(
            "valid: pack with {} artifacts, signature and digests verified, no PII pattern found",
            v.artifacts
        );
        return Ok(());
    }
    let env = Envelope::from_json(&bytes)?;
    let statement = verify_envelope(&env, &key)?;
    match blobs {
        Some(src) => {
            let store = dir_store(src)?;
            let n = verify_subjects(&statement, &store).await?;
            println!("valid: signature verified, {n} artifact digests match {src}");
        }
        None => println!(
            "valid: signature verified ({} subjects; digests not checked, pass --blobs)",
            statement.subject.len()
        ),
    }
    Ok(())
}

async fn manifest(
    tenant: &str,
    execution: &str,
    source: Option<&str>,
    key: Option<&Path>,
) -> anyhow::Result<()> {
    let tenant = TenantId::new(tenant)?;
    let id = ExecutionId::new(execution)?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = Arc::new(MemoryStore::new());
    let flags = Arc::new(MemoryFlagStore::new());
    let blobs: Arc<dyn BlobStore> = match source {
        Some(src) => {
            // A local directory has blobs but no execution store: register the
            // execution so the manifest can be built.
            let mut unit = ActionCommit::new(tenant.clone(), clock.now());
            unit.create = Some(Execution::new(
                tenant.clone(),
                id.clone(),
                Digest::of(b""),
                Digest::of(b""),
                clock.now(),
            ));
            store.commit(unit).await?;
            Arc::new(dir_store(src)?)
        }
        None => demo_store(&tenant, &store, clock.clone()).await?,
    };
    flags.set(&tenant, Flag::EvidenceV2Enabled, true).await?;
    let mut svc = EvidenceService::new(store, flags, blobs, clock);
    if let Some(k) = key {
        svc = svc.with_signing_key(read_key(k)?);
    }
    let signed = svc.manifest(&tenant, &id).await?;
    if signed.envelope.is_some() {
        println!("{}", serde_json::to_string_pretty(&signed)?);
    } else {
        println!("{}", signed.manifest.to_json_pretty());
    }
    Ok(())
}

async fn demo_store(
    tenant: &TenantId,
    store: &MemoryStore,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Arc<dyn BlobStore>> {
    let blobs = Arc::new(MemoryBlobStore::new(clock.clone()));
    let id = ExecutionId::new("exec_demo")?;
    let mut unit = ActionCommit::new(tenant.clone(), clock.now());
    unit.create = Some(Execution::new(
        tenant.clone(),
        id.clone(),
        Digest::of(b"workflow manifest"),
        Digest::of(b"inputs"),
        clock.now(),
    ));
    store.commit(unit).await?;
    for (kind, name, body) in [
        (
            "logs",
            "run.log",
            "2025-12-10T18:00:00Z INFO started\n2025-12-10T18:00:05Z INFO done\n",
        ),
        ("receipts", "receipt.json", "{\"status\":\"succeeded\"}\n"),
        (
            "attestations",
            "build.intoto.jsonl",
            "{\"_type\":\"https://in-toto.io/Statement/v1\"}\n",
        ),
    ] {
        let key = BlobKey::for_execution(tenant, kind, &id, name)?;
        blobs
            .put(&key, body.to_string().into(), PutMode::Create)
            .await?;
    }
    Ok(blobs)
}
