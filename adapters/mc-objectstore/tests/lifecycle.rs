//! The janitor and the receipts' retention floor on real adapters: S3 (s3s-fs,
//! in-process, SigV4 on) and a local directory. Ages come from the stores' own
//! last-modified times; the janitor's clock is moved forward.

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::{BUCKET, start_s3};
use mc_core::{BlobError, BlobKey, BlobStore, ManualClock, MemoryStore, PutMode, TenantId};
use mc_evidence::EvidenceKey;
use mc_lifecycle::{
    Janitor, Outcome, PurgeOptions, Retaining, Retention, verify_deletion_manifest,
};
use mc_objectstore::ObjectBlobStore;
use time::{Duration, OffsetDateTime};

fn key(s: &str) -> BlobKey {
    BlobKey::new(s).expect("key")
}

async fn scenario(raw: Arc<dyn BlobStore>) {
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let store: Arc<dyn BlobStore> =
        Arc::new(Retaining::new(raw.clone(), Retention::new(), clock.clone()));
    let log = key("tenants/acme/logs/exec_1/run.log");
    let receipt = key("tenants/acme/receipts/exec_1/receipt.json");
    let other = key("tenants/globex/logs/exec_2/run.log");
    for k in [&log, &receipt, &other] {
        store
            .put(k, Bytes::from_static(b"data\n"), PutMode::Create)
            .await
            .expect("put");
    }
    let audit = Arc::new(MemoryStore::new());
    let signer = EvidenceKey::from_seed([3; 32]);
    let janitor = Janitor::new(
        store.clone(),
        audit,
        clock.clone(),
        EvidenceKey::from_seed([3; 32]),
        Retention::new(),
    );
    let acme = TenantId::new("acme").unwrap();

    clock.advance(Duration::days(91));
    let r = janitor
        .purge(&acme, "logs", &PurgeOptions::default())
        .await
        .expect("purge logs");
    assert_eq!((r.expired, r.deleted, r.failed), (1, 1, 0), "{r:?}");
    assert!(matches!(
        store.head(&log).await,
        Err(BlobError::NotFound { .. })
    ));
    assert!(
        store.head(&other).await.is_ok(),
        "another tenant's log was touched"
    );
    let result = verify_deletion_manifest(
        &store.get(r.result_key.as_ref().unwrap()).await.unwrap(),
        &signer.verifying_key(),
    )
    .expect("manifest verifies");
    assert_eq!(result.entries[0].key, log.as_str());
    assert_eq!(result.entries[0].outcome, Some(Outcome::Deleted));
    // Manifests are write-once on the store itself.
    assert!(matches!(
        raw.put(
            r.result_key.as_ref().unwrap(),
            Bytes::from_static(b"x"),
            PutMode::Create
        )
        .await,
        Err(BlobError::AlreadyExists { .. })
    ));

    // The receipt: neither deletable nor overwritable at 91 days, nor purged.
    assert!(matches!(
        store.delete(&receipt).await,
        Err(BlobError::Retained { .. })
    ));
    assert!(matches!(
        store
            .put(&receipt, Bytes::from_static(b"forged"), PutMode::Overwrite)
            .await,
        Err(BlobError::Retained { .. })
    ));
    let r = janitor
        .purge(&acme, "receipts", &PurgeOptions::default())
        .await
        .unwrap();
    assert_eq!(r.expired, 0);
    assert_eq!(
        store.get(&receipt).await.unwrap(),
        Bytes::from_static(b"data\n")
    );
    // Seven years and a day later it goes.
    clock.advance(Duration::days(7 * 366));
    let r = janitor
        .purge(&acme, "receipts", &PurgeOptions::default())
        .await
        .unwrap();
    assert_eq!((r.expired, r.deleted), (1, 1), "{r:?}");
    assert!(store.head(&receipt).await.is_err());
}

#[tokio::test]
async fn janitor_and_retention_floor_on_s3() {
    let server = start_s3().await;
    let store = ObjectBlobStore::from_url(&format!("s3://{BUCKET}/lifecycle"), &server.options())
        .expect("open");
    scenario(Arc::new(store)).await;
}

#[tokio::test]
async fn janitor_and_retention_floor_on_a_local_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("file://{}", dir.path().display());
    let store = ObjectBlobStore::from_url(&url, &Default::default()).expect("open");
    scenario(Arc::new(store)).await;
}
