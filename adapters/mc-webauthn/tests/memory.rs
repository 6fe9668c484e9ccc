//! The whole ceremony on the in-memory store, plus its conformance run.

mod common;

use std::sync::Arc;

use mc_webauthn::testkit::{Fixtures, step_up_store_conformance};
use mc_webauthn::{MemoryStepUpStore, StepUpStore};

async fn memory() -> (Arc<dyn StepUpStore>, ()) {
    (Arc::new(MemoryStepUpStore::new()), ())
}

async fn nothing_to_clean(_: ()) {}

scenario_tests!(memory, nothing_to_clean);

#[tokio::test]
async fn memory_store_conformance() {
    step_up_store_conformance(&MemoryStepUpStore::new(), &Fixtures::generate()).await;
}
