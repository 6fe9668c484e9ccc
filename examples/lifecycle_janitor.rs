//! A host running the TTL janitor on the in-memory defaults, "100 days later": an
//! expired log is deleted with a signed deletion manifest, a young receipt is kept and
//! cannot be deleted early.
//!
//! `cargo run -p mc-examples --example lifecycle_janitor`

use std::sync::Arc;

use mc_core::*;
use mc_evidence::EvidenceKey;
use mc_lifecycle::{Janitor, PurgeOptions, Retaining, Retention, verify_deletion_manifest};
use time::Duration;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let raw: Arc<dyn BlobStore> = Arc::new(MemoryBlobStore::new(clock.clone()));
    // Receipts are retained 7 years on whatever store is below.
    let blobs: Arc<dyn BlobStore> = Arc::new(Retaining::new(raw, Retention::new(), clock.clone()));
    let log = BlobKey::new("tenants/acme/logs/exec_1/run.log")?;
    let receipt = BlobKey::new("tenants/acme/receipts/exec_1/receipt.json")?;
    blobs.put(&log, "line\n".into(), PutMode::Create).await?;
    blobs.put(&receipt, "{}".into(), PutMode::Create).await?;

    let key = EvidenceKey::generate()?;
    let public = key.verifying_key();
    let audit = Arc::new(MemoryStore::new());
    let janitor = Janitor::new(
        blobs.clone(),
        audit.clone(),
        clock.clone(),
        key,
        Retention::new(),
    );
    clock.advance(Duration::days(100));
    let tenant = TenantId::new("acme")?;
    for kind in ["logs", "receipts"] {
        let r = janitor
            .purge(&tenant, kind, &PurgeOptions::default())
            .await?;
        println!(
            "{kind}: {} examined, {} expired, {} deleted",
            r.examined, r.expired, r.deleted
        );
        if let Some(k) = &r.result_key {
            let m = verify_deletion_manifest(&blobs.get(k).await?, &public)?;
            println!(
                "  signed manifest {k}: {} entr(y/ies), verified",
                m.entries.len()
            );
        }
    }
    match blobs.delete(&receipt).await {
        Err(e) => println!("deleting the receipt early: {e}"),
        Ok(()) => println!("deleting the receipt early: allowed (unexpected)"),
    }
    for e in audit.read(&tenant, 0, 10).await? {
        println!("audit {} {}", e.kind, e.data);
    }
    Ok(())
}
