//! The janitor and the retention floor on the in-memory store, with a manual clock
//! ("seven years later" in microseconds).

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use mc_core::{
    ActorId, AuditLog, BlobError, BlobKey, BlobMeta, BlobStore, ByteStream, ManualClock,
    MemoryBlobStore, MemoryStore, PutMode, RetentionCommit, RetentionStore, SignedUrl, TenantId,
};
use mc_evidence::EvidenceKey;
use mc_lifecycle::{
    Janitor, LifecycleError, Outcome, OverrideChange, PURGE_EVENT, Phase, PurgeOptions, Retaining,
    Retention, Ttl, load_overrides, set_override_audited, set_override_if, tenant_retention,
    verify_deletion_manifest,
};
use sha2::Digest as _;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const T0: OffsetDateTime = datetime!(2025-01-01 03:00 UTC);

fn key(s: &str) -> BlobKey {
    BlobKey::new(s).unwrap()
}

fn acme() -> TenantId {
    TenantId::new("acme").unwrap()
}

struct Rig {
    clock: Arc<ManualClock>,
    blobs: Arc<dyn BlobStore>,
    audit: Arc<MemoryStore>,
    signer: EvidenceKey,
}

fn rig_with(wrap: impl FnOnce(Arc<dyn BlobStore>) -> Arc<dyn BlobStore>) -> Rig {
    let clock = Arc::new(ManualClock::new(T0));
    let inner: Arc<dyn BlobStore> = Arc::new(MemoryBlobStore::new(clock.clone()));
    Rig {
        blobs: wrap(inner),
        clock,
        audit: Arc::new(MemoryStore::new()),
        signer: EvidenceKey::from_seed([7; 32]),
    }
}

impl Rig {
    fn janitor(&self, retention: Retention) -> Janitor {
        Janitor::new(
            self.blobs.clone(),
            self.audit.clone(),
            self.clock.clone(),
            EvidenceKey::from_seed([7; 32]),
            retention,
        )
    }

    async fn put_at(&self, k: &str, at: OffsetDateTime) {
        self.clock.set(at);
        self.blobs
            .put(&key(k), Bytes::from_static(b"line\n"), PutMode::Overwrite)
            .await
            .unwrap();
    }

    async fn exists(&self, k: &str) -> bool {
        self.blobs.head(&key(k)).await.is_ok()
    }
}

#[tokio::test]
async fn logs_older_than_90_days_are_purged_with_a_signed_manifest() {
    let rig = rig_with(|s| s);
    rig.put_at("tenants/acme/logs/exec_1/run.log", T0).await;
    rig.put_at("tenants/acme/logs/exec_2/run.log", T0 + Duration::days(50))
        .await;
    rig.put_at("tenants/globex/logs/exec_9/run.log", T0).await;
    rig.put_at("tenants/acme/receipts/exec_1/receipt.json", T0)
        .await;
    rig.clock.set(T0 + Duration::days(100));
    let report = rig
        .janitor(Retention::new())
        .purge(&acme(), "logs", &PurgeOptions::default())
        .await
        .unwrap();
    assert_eq!((report.examined, report.expired, report.deleted), (2, 1, 1));
    assert!(!rig.exists("tenants/acme/logs/exec_1/run.log").await);
    assert!(rig.exists("tenants/acme/logs/exec_2/run.log").await);
    // Another tenant's logs and this tenant's receipts are untouched.
    assert!(rig.exists("tenants/globex/logs/exec_9/run.log").await);
    assert!(
        rig.exists("tenants/acme/receipts/exec_1/receipt.json")
            .await
    );
    assert_eq!(report.run_id, "logs-20250411T0300Z");

    let pubkey = rig.signer.verifying_key();
    let plan_bytes = rig
        .blobs
        .get(report.plan_key.as_ref().unwrap())
        .await
        .unwrap();
    let result_bytes = rig
        .blobs
        .get(report.result_key.as_ref().unwrap())
        .await
        .unwrap();
    let plan = verify_deletion_manifest(&plan_bytes, &pubkey).unwrap();
    let result = verify_deletion_manifest(&result_bytes, &pubkey).unwrap();
    assert_eq!(plan.phase, Phase::Plan);
    assert_eq!(result.phase, Phase::Result);
    assert_eq!(result.entries.len(), 1);
    assert_eq!(result.entries[0].key, "tenants/acme/logs/exec_1/run.log");
    assert_eq!(result.entries[0].outcome, Some(Outcome::Deleted));
    assert_eq!(result.entries[0].expired_at, T0 + Duration::days(90));
    assert_eq!(
        result.plan_sha256.as_deref(),
        Some(hex::encode(sha2::Sha256::digest(&plan_bytes)).as_str())
    );
    // The run is in the tenant's audit chain, naming the manifest by digest.
    let events = rig.audit.read(&acme(), 0, 10).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, PURGE_EVENT);
    assert_eq!(events[0].data["deleted"], 1);
    assert_eq!(
        events[0].data["manifestSha256"],
        hex::encode(sha2::Sha256::digest(&result_bytes))
    );
    // Verification fails with another key, on a tampered payload, on another type.
    let other = EvidenceKey::from_seed([8; 32]).verifying_key();
    assert!(matches!(
        verify_deletion_manifest(&result_bytes, &other),
        Err(LifecycleError::Manifest { .. })
    ));
    let mut env: serde_json::Value = serde_json::from_slice(&result_bytes).unwrap();
    env["payloadType"] = "application/vnd.in-toto+json".into();
    assert!(verify_deletion_manifest(&serde_json::to_vec(&env).unwrap(), &pubkey).is_err());
    assert!(verify_deletion_manifest(b"not json", &pubkey).is_err());
    // The same run id again: refused, nothing deleted twice.
    let again = rig
        .janitor(Retention::new())
        .purge(
            &acme(),
            "logs",
            &PurgeOptions {
                run_id: Some(report.run_id.clone()),
                ..Default::default()
            },
        )
        .await;
    assert!(matches!(again, Ok(r) if r.expired == 0));
}

#[tokio::test]
async fn a_run_id_already_planned_is_refused() {
    let rig = rig_with(|s| s);
    rig.put_at("tenants/acme/logs/exec_1/a.log", T0).await;
    rig.put_at("tenants/acme/logs/exec_1/b.log", T0).await;
    rig.clock.set(T0 + Duration::days(91));
    let opts = PurgeOptions {
        run_id: Some("nightly-1".into()),
        ..Default::default()
    };
    let j = rig.janitor(Retention::new());
    j.purge(&acme(), "logs", &opts).await.unwrap();
    rig.put_at("tenants/acme/logs/exec_1/c.log", T0).await;
    rig.clock.set(T0 + Duration::days(91));
    assert!(matches!(
        j.purge(&acme(), "logs", &opts).await,
        Err(LifecycleError::RunExists { .. })
    ));
    assert!(rig.exists("tenants/acme/logs/exec_1/c.log").await);
    assert!(matches!(
        j.purge(
            &acme(),
            "logs",
            &PurgeOptions {
                run_id: Some("../x".into()),
                ..Default::default()
            }
        )
        .await,
        Err(LifecycleError::InvalidRunId { .. })
    ));
}

#[tokio::test]
async fn dry_runs_write_nothing() {
    let rig = rig_with(|s| s);
    rig.put_at("tenants/acme/logs/exec_1/a.log", T0).await;
    rig.clock.set(T0 + Duration::days(91));
    let r = rig
        .janitor(Retention::new())
        .purge(
            &acme(),
            "logs",
            &PurgeOptions {
                dry_run: true,
                run_id: None,
            },
        )
        .await
        .unwrap();
    assert_eq!((r.expired, r.deleted), (1, 0));
    assert!(r.plan_key.is_none());
    assert!(rig.exists("tenants/acme/logs/exec_1/a.log").await);
    assert!(
        rig.blobs
            .list("tenants/acme/deletion-manifests/")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(rig.audit.read(&acme(), 0, 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn receipts_are_kept_seven_years_and_immutable_until_then() {
    let clock = Arc::new(ManualClock::new(T0));
    let inner: Arc<dyn BlobStore> = Arc::new(MemoryBlobStore::new(clock.clone()));
    let guarded: Arc<dyn BlobStore> =
        Arc::new(Retaining::new(inner, Retention::new(), clock.clone()));
    let receipt = key("tenants/acme/receipts/exec_1/receipt.json");
    guarded
        .put(&receipt, Bytes::from_static(b"{}"), PutMode::Create)
        .await
        .unwrap();
    let audit = Arc::new(MemoryStore::new());
    let janitor = Janitor::new(
        guarded.clone(),
        audit.clone(),
        clock.clone(),
        EvidenceKey::from_seed([7; 32]),
        Retention::new(),
    );
    clock.set(T0 + Duration::days(6 * 365));
    let r = janitor
        .purge(&acme(), "receipts", &PurgeOptions::default())
        .await
        .unwrap();
    assert_eq!(r.expired, 0);
    // Neither deletion nor overwrite before the floor ends, on any path.
    let err = guarded.delete(&receipt).await.unwrap_err();
    assert!(
        matches!(&err, BlobError::Retained { until, .. } if until == "2032-01-01T03:00:00Z"),
        "{err}"
    );
    assert!(matches!(
        guarded
            .put(&receipt, Bytes::from_static(b"forged"), PutMode::Overwrite)
            .await,
        Err(BlobError::Retained { .. })
    ));
    assert_eq!(
        guarded.get(&receipt).await.unwrap(),
        Bytes::from_static(b"{}")
    );
    // Logs are not floored.
    let log = key("tenants/acme/logs/exec_1/run.log");
    guarded
        .put(&log, Bytes::from_static(b"x"), PutMode::Create)
        .await
        .unwrap();
    guarded.delete(&log).await.unwrap();
    // A batch mixing both: the log goes, the receipt is refused, results in order.
    guarded
        .put(&log, Bytes::from_static(b"x"), PutMode::Create)
        .await
        .unwrap();
    let results = guarded.delete_many(&[receipt.clone(), log.clone()]).await;
    assert!(matches!(results[0], Err(BlobError::Retained { .. })));
    assert!(results[1].is_ok());
    assert!(guarded.head(&log).await.is_err());
    assert!(guarded.head(&receipt).await.is_ok());
    // After seven calendar years the janitor deletes it.
    clock.set(datetime!(2032-01-01 03:00 UTC));
    let r = janitor
        .purge(&acme(), "receipts", &PurgeOptions::default())
        .await
        .unwrap();
    assert_eq!((r.expired, r.deleted, r.failed), (1, 1, 0));
    assert!(guarded.head(&receipt).await.is_err());
}

#[tokio::test]
async fn tenant_overrides_apply_to_that_tenant_only_and_are_audited() {
    let rig = rig_with(|s| s);
    rig.put_at("tenants/acme/logs/exec_1/a.log", T0).await;
    rig.put_at("tenants/globex/logs/exec_1/a.log", T0).await;
    let rules = Retention::new();
    let store = rig.audit.as_ref();
    let actor = ActorId::new("alice@company").unwrap();
    let tenant = acme();
    let change = |kind: &'static str, ttl: Option<&str>| OverrideChange {
        tenant: &tenant,
        actor: &actor,
        kind,
        ttl: ttl.map(|t| t.parse().unwrap()),
        reason: "contract 2025-17",
    };
    let prev = set_override_audited(&rules, store, change("logs", Some("30d")), T0)
        .await
        .unwrap();
    assert_eq!(prev, Ttl::days(90));
    // Out of bounds, or a kind without a rule: refused, nothing recorded or stored.
    assert!(matches!(
        set_override_audited(&rules, store, change("receipts", Some("1y")), T0).await,
        Err(LifecycleError::OverrideOutOfBounds { .. })
    ));
    assert!(matches!(
        set_override_audited(&rules, store, change("evidence", Some("1d")), T0).await,
        Err(LifecycleError::NoRule { .. })
    ));
    let events = rig.audit.read(&tenant, 0, 10).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, mc_lifecycle::OVERRIDE_EVENT);
    assert_eq!(events[0].data["ttl"], "30d");
    assert_eq!(events[0].data["previous"], "90d");
    assert_eq!(events[0].data["reason"], "contract 2025-17");
    assert_eq!(
        store.overrides(&tenant).await.unwrap().get("logs").cloned(),
        Some("30d".to_string())
    );

    // The janitor's rules come from the store.
    let mut retention = Retention::new();
    let globex = TenantId::new("globex").unwrap();
    load_overrides(&mut retention, store, &[tenant.clone(), globex.clone()], T0)
        .await
        .unwrap();
    assert_eq!(retention.effective(&tenant, "logs"), Some(Ttl::days(30)));
    assert_eq!(retention.effective(&globex, "logs"), Some(Ttl::days(90)));
    rig.clock.set(T0 + Duration::days(40));
    let j = rig.janitor(retention);
    assert_eq!(
        j.purge(&tenant, "logs", &PurgeOptions::default())
            .await
            .unwrap()
            .deleted,
        1
    );
    assert_eq!(
        j.purge(&globex, "logs", &PurgeOptions::default())
            .await
            .unwrap()
            .expired,
        0
    );
    assert!(matches!(
        j.purge(&tenant, "evidence", &PurgeOptions::default()).await,
        Err(LifecycleError::NoRule { .. })
    ));
}

#[tokio::test]
async fn removing_an_override_restores_the_default_and_bad_stored_values_stop_the_run() {
    let store = MemoryStore::new();
    let rules = Retention::new();
    let actor = ActorId::new("alice@company").unwrap();
    let tenant = acme();
    let change = |ttl: Option<&str>| OverrideChange {
        tenant: &tenant,
        actor: &actor,
        kind: "receipts",
        ttl: ttl.map(|t| t.parse().unwrap()),
        reason: "legal hold",
    };
    set_override_audited(&rules, &store, change(Some("12y")), T0)
        .await
        .unwrap();
    let prev = set_override_audited(&rules, &store, change(None), T0)
        .await
        .unwrap();
    assert_eq!(prev, Ttl::years(12), "the removal reports what it removed");
    assert!(store.overrides(&tenant).await.unwrap().is_empty());
    let events = store.read(&tenant, 0, 10).await.unwrap();
    assert_eq!(events.len(), 2);
    assert!(
        events[1].data["ttl"].is_null(),
        "a removal records ttl null"
    );
    assert_eq!(events[1].data["previous"], "12y");

    // A value written by another tool (or before the floor was raised) is refused,
    // not replaced by the default: the janitor must not purge on it.
    for bad in ["5y", "forever"] {
        let other = TenantId::new("initech").unwrap();
        let current = store.overrides(&other).await.unwrap().remove("receipts");
        store
            .commit_override(RetentionCommit {
                tenant: other.clone(),
                kind: "receipts".into(),
                expected: current,
                ttl: Some(bad.into()),
                event: store_event(&other),
            })
            .await
            .unwrap();
        let mut retention = Retention::new();
        let before = retention.clone();
        let err = load_overrides(&mut retention, &store, std::slice::from_ref(&other), T0)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, LifecycleError::StoredOverride { tenant, kind, .. }
                if tenant == "initech" && kind == "receipts"),
            "{err}"
        );
        assert_eq!(retention, before, "nothing loaded on error");
    }
}

fn store_event(t: &TenantId) -> mc_core::NewAuditEvent {
    mc_core::NewAuditEvent {
        id: None,
        kind: "test.raw-write".into(),
        actor: mc_core::audit::AuditActor {
            sub: ActorId::new("other-tool").unwrap(),
            tenant: t.clone(),
        },
        subject: mc_core::audit::AuditSubject {
            execution_id: None,
            resource: None,
        },
        data: serde_json::json!({}),
        ts: T0,
    }
}

/// A store that fails the first write of a result manifest (a janitor killed after
/// deleting, before recording), and rewrites one object when a plan is written (an
/// object updated between the plan and the deletion).
struct Faults {
    inner: Arc<dyn BlobStore>,
    fail_result_once: std::sync::atomic::AtomicBool,
    rewrite_on_plan: Option<BlobKey>,
    clock: Arc<ManualClock>,
}

#[async_trait]
impl BlobStore for Faults {
    async fn put(&self, key: &BlobKey, bytes: Bytes, mode: PutMode) -> Result<BlobMeta, BlobError> {
        if key.as_str().ends_with("result.dsse.json")
            && self
                .fail_result_once
                .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            return Err(BlobError::Unavailable("killed".into()));
        }
        let r = self.inner.put(key, bytes, mode).await;
        if key.as_str().ends_with("plan.dsse.json")
            && let Some(victim) = &self.rewrite_on_plan
        {
            self.clock.advance(Duration::seconds(1));
            self.inner
                .put(victim, Bytes::from_static(b"new data"), PutMode::Overwrite)
                .await?;
        }
        r
    }
    async fn put_stream(
        &self,
        key: &BlobKey,
        s: ByteStream,
        mode: PutMode,
    ) -> Result<BlobMeta, BlobError> {
        self.inner.put_stream(key, s, mode).await
    }
    async fn get(&self, key: &BlobKey) -> Result<Bytes, BlobError> {
        self.inner.get(key).await
    }
    async fn get_stream(&self, key: &BlobKey) -> Result<ByteStream, BlobError> {
        self.inner.get_stream(key).await
    }
    async fn head(&self, key: &BlobKey) -> Result<BlobMeta, BlobError> {
        self.inner.head(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<BlobMeta>, BlobError> {
        self.inner.list(prefix).await
    }
    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError> {
        self.inner.delete(key).await
    }
    async fn signed_get_url(
        &self,
        key: &BlobKey,
        ttl: std::time::Duration,
        now: OffsetDateTime,
    ) -> Result<SignedUrl, BlobError> {
        self.inner.signed_get_url(key, ttl, now).await
    }
}

#[tokio::test]
async fn an_interrupted_run_is_finished_by_the_next_and_rewrites_are_kept() {
    let clock = Arc::new(ManualClock::new(T0));
    let inner: Arc<dyn BlobStore> = Arc::new(MemoryBlobStore::new(clock.clone()));
    let victim = key("tenants/acme/logs/exec_1/b.log");
    let store = Arc::new(Faults {
        inner: inner.clone(),
        fail_result_once: true.into(),
        rewrite_on_plan: Some(victim.clone()),
        clock: clock.clone(),
    });
    for k in [
        "tenants/acme/logs/exec_1/a.log",
        "tenants/acme/logs/exec_1/b.log",
    ] {
        inner
            .put(&key(k), Bytes::from_static(b"x"), PutMode::Create)
            .await
            .unwrap();
    }
    let audit = Arc::new(MemoryStore::new());
    let janitor = Janitor::new(
        store.clone(),
        audit.clone(),
        clock.clone(),
        EvidenceKey::from_seed([7; 32]),
        Retention::new(),
    );
    clock.set(T0 + Duration::days(91));
    let first = janitor
        .purge(
            &acme(),
            "logs",
            &PurgeOptions {
                run_id: Some("run-1".into()),
                ..Default::default()
            },
        )
        .await;
    assert!(
        matches!(first, Err(LifecycleError::Blob(BlobError::Unavailable(_)))),
        "{first:?}"
    );
    // a.log was deleted, the rewritten b.log kept, and no result recorded yet.
    assert!(
        inner
            .head(&key("tenants/acme/logs/exec_1/a.log"))
            .await
            .is_err()
    );
    assert_eq!(
        inner.get(&victim).await.unwrap(),
        Bytes::from_static(b"new data")
    );
    assert!(
        inner
            .head(&key(
                "tenants/acme/deletion-manifests/run-1/result.dsse.json"
            ))
            .await
            .is_err()
    );
    // The next run finishes run-1 first.
    let second = janitor
        .purge(
            &acme(),
            "logs",
            &PurgeOptions {
                run_id: Some("run-2".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(second.recovered, vec!["run-1".to_string()]);
    assert_eq!(second.expired, 0, "the rewritten b.log is new data");
    let result = verify_deletion_manifest(
        &inner
            .get(&key(
                "tenants/acme/deletion-manifests/run-1/result.dsse.json",
            ))
            .await
            .unwrap(),
        &EvidenceKey::from_seed([7; 32]).verifying_key(),
    )
    .unwrap();
    let outcomes: Vec<_> = result
        .entries
        .iter()
        .map(|e| (e.key.as_str(), e.outcome.clone()))
        .collect();
    assert_eq!(
        outcomes[0],
        ("tenants/acme/logs/exec_1/a.log", Some(Outcome::AlreadyGone))
    );
    assert!(matches!(
        outcomes[1],
        (
            "tenants/acme/logs/exec_1/b.log",
            Some(Outcome::SkippedModified { .. })
        )
    ));
    let events = audit.read(&acme(), 0, 10).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].data["runId"], "run-1");
    assert_eq!(audit.verify(&acme()).await.unwrap(), 1);
}

#[tokio::test]
async fn a_conditional_change_applies_only_to_the_override_it_saw() {
    let store = MemoryStore::new();
    let rules = Retention::new();
    let actor = ActorId::new("alice@company").unwrap();
    let tenant = acme();
    let change = |ttl: &str| OverrideChange {
        tenant: &tenant,
        actor: &actor,
        kind: "logs",
        ttl: Some(ttl.parse().unwrap()),
        reason: "contract 2025-17",
    };
    // No override yet: expecting none succeeds.
    let prev = set_override_if(&rules, &store, change("30d"), None, T0)
        .await
        .unwrap();
    assert_eq!(prev, Ttl::days(90));
    // A second writer who also saw "none" is refused, naming both values; nothing
    // is stored or recorded.
    let err = set_override_if(&rules, &store, change("60d"), None, T0)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LifecycleError::PreconditionFailed { expected, actual, kind, .. }
            if expected == "none" && actual == "30d" && kind == "logs"),
        "{err}"
    );
    assert_eq!(store.read(&tenant, 0, 10).await.unwrap().len(), 1);
    // With the value it saw, it goes through.
    set_override_if(&rules, &store, change("60d"), Some(Ttl::days(30)), T0)
        .await
        .unwrap();
    let view = tenant_retention(&rules, &store, &tenant).await.unwrap();
    let logs = view.iter().find(|k| k.kind == "logs").unwrap();
    assert_eq!(logs.override_ttl, Some(Ttl::days(60)));
    assert_eq!(logs.effective, Ttl::days(60));
    let receipts = view.iter().find(|k| k.kind == "receipts").unwrap();
    assert_eq!(receipts.override_ttl, None);
    assert_eq!(receipts.effective, Ttl::years(7));
    assert_eq!(receipts.rule.min, Ttl::years(7));
    let json = serde_json::to_value(logs).unwrap();
    assert_eq!(json["override"], "60d");
    assert_eq!(json["default"], "90d");
    assert_eq!(json["enforcement"], "purge");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_eight_conditional_writers_who_saw_the_same_value_one_wins() {
    let store = Arc::new(MemoryStore::new());
    let tenant = acme();
    let tasks: Vec<_> = (1..=8)
        .map(|i| {
            let store = store.clone();
            let tenant = tenant.clone();
            tokio::spawn(async move {
                let actor = ActorId::new(format!("admin{i}@company")).unwrap();
                let ttl: Ttl = format!("{}d", 10 + i).parse().unwrap();
                set_override_if(
                    &Retention::new(),
                    store.as_ref(),
                    OverrideChange {
                        tenant: &tenant,
                        actor: &actor,
                        kind: "logs",
                        ttl: Some(ttl),
                        reason: "race",
                    },
                    None,
                    T0,
                )
                .await
            })
        })
        .collect();
    let mut won = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(prev) => {
                won += 1;
                assert_eq!(prev, Ttl::days(90));
            }
            Err(LifecycleError::PreconditionFailed { expected, .. }) => {
                assert_eq!(expected, "none");
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(won, 1);
    let events = store.read(&tenant, 0, 10).await.unwrap();
    assert_eq!(events.len(), 1, "one change, one event");
    assert_eq!(
        store.overrides(&tenant).await.unwrap().get("logs").cloned(),
        events[0].data["ttl"].as_str().map(str::to_string)
    );
}
