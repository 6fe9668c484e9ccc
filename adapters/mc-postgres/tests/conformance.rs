//! mc-core's conformance suites, unchanged, against PostgreSQL.

mod common;

use common::with_store;
use mc_core::testkit;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_store_passes_execution_store_conformance() {
    with_store(8, |ctx| async move {
        testkit::execution_store_conformance(&ctx.store).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_store_passes_audit_log_conformance() {
    with_store(8, |ctx| async move {
        testkit::audit_log_conformance(&ctx.store).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_store_passes_flag_store_conformance() {
    with_store(2, |ctx| async move {
        testkit::flag_store_conformance(&ctx.store).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_store_passes_retention_store_conformance() {
    with_store(4, |ctx| async move {
        testkit::retention_store_conformance(&ctx.store).await;
    })
    .await;
}
