//! The janitor on the in-memory store: `MC_BENCH_OBJECTS` (default 100,000) logs of
//! one tenant, half of them expired; one purge (list, plan, delete each after a
//! HEAD, result, audit). Prints objects per second, the manifests' sizes and the time
//! to verify the result manifest.
//!
//! `cargo bench -p mc-lifecycle --bench janitor`

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use mc_core::{BlobKey, BlobStore, ManualClock, MemoryBlobStore, MemoryStore, PutMode, TenantId};
use mc_evidence::EvidenceKey;
use mc_lifecycle::{Janitor, PurgeOptions, Retention, verify_deletion_manifest};
use time::{Duration, OffsetDateTime};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let n: usize = std::env::var("MC_BENCH_OBJECTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let t0 = OffsetDateTime::from_unix_timestamp(1_735_700_000).unwrap();
    let clock = Arc::new(ManualClock::new(t0));
    let store = Arc::new(MemoryBlobStore::new(clock.clone()));
    for i in 0..n {
        // Even objects written at t0, odd ones 60 days later.
        clock.set(if i % 2 == 0 {
            t0
        } else {
            t0 + Duration::days(60)
        });
        let k = BlobKey::new(format!("tenants/acme/logs/exec_{:06}/run.log", i)).unwrap();
        store
            .put(&k, Bytes::from_static(b"x"), PutMode::Create)
            .await
            .unwrap();
    }
    clock.set(t0 + Duration::days(100));
    let audit = Arc::new(MemoryStore::new());
    let janitor = Janitor::new(
        store.clone(),
        audit,
        clock,
        EvidenceKey::from_seed([1; 32]),
        Retention::new(),
    );
    let t = Instant::now();
    let r = janitor
        .purge(
            &TenantId::new("acme").unwrap(),
            "logs",
            &PurgeOptions::default(),
        )
        .await
        .unwrap();
    let e = t.elapsed();
    assert_eq!(r.deleted, n / 2 + n % 2);
    let plan = store.get(r.plan_key.as_ref().unwrap()).await.unwrap();
    let result = store.get(r.result_key.as_ref().unwrap()).await.unwrap();
    let t = Instant::now();
    let m = verify_deletion_manifest(&result, &EvidenceKey::from_seed([1; 32]).verifying_key())
        .unwrap();
    let v = t.elapsed();
    assert_eq!(m.entries.len(), r.deleted);
    println!(
        "purge of {n} logs ({} expired, deleted): {:.0} ms = {:.0} objects examined/s, {:.0} deletions/s; plan {} KiB, result {} KiB; verifying the result {:.1} ms",
        r.deleted,
        e.as_secs_f64() * 1e3,
        n as f64 / e.as_secs_f64(),
        r.deleted as f64 / e.as_secs_f64(),
        plan.len() / 1024,
        result.len() / 1024,
        v.as_secs_f64() * 1e3
    );
}
