//! The whole ceremony and the store conformance suite on PostgreSQL, plus what only a
//! shared database can show: single use across replicas, and a real outage.
//!
//! Connects to `MC_TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`);
//! each test works in its own schema (`search_path` set by `after_connect`), so tests
//! run in parallel. A missing server fails the test with the command that starts it.

mod common;

use std::sync::Arc;
use std::time::Duration as StdDuration;

use mc_core::Clock;
use mc_core::{ActionKind, StepUpError, StepUpVerifier};
use mc_webauthn::api::ChallengeFinishRequest;
use mc_webauthn::testkit::{Fixtures, step_up_store_conformance};
use mc_webauthn::{PgStepUpStore, StepUpStore, WebauthnStepUpError};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Executor};

const START_HINT: &str = "PostgreSQL is not answering; start it with \
    `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` \
    or set MC_TEST_DATABASE_URL";

fn database_url() -> String {
    std::env::var("MC_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

/// A fresh schema of its own for one test.
struct Schema {
    name: String,
    admin: PgPool,
}

impl Schema {
    async fn create() -> Self {
        let admin = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(StdDuration::from_secs(10))
            .connect(&database_url())
            .await
            .unwrap_or_else(|e| panic!("{START_HINT} ({}): {e}", database_url()));
        let name = format!("mcwa_{}", uuid::Uuid::new_v4().simple());
        admin
            .execute(AssertSqlSafe(format!("CREATE SCHEMA \"{name}\"")))
            .await
            .expect("create test schema");
        Schema { name, admin }
    }

    /// A pool (one "replica") whose connections all work in this schema.
    async fn pool(&self) -> PgPool {
        let set_path = format!("SET search_path TO \"{}\"", self.name);
        PgPoolOptions::new()
            .max_connections(6)
            .acquire_timeout(StdDuration::from_secs(10))
            .after_connect(move |conn, _meta| {
                let sql = set_path.clone();
                Box::pin(async move {
                    conn.execute(AssertSqlSafe(sql)).await?;
                    Ok(())
                })
            })
            .connect(&database_url())
            .await
            .unwrap_or_else(|e| panic!("{START_HINT}: {e}"))
    }

    async fn store(&self) -> PgStepUpStore {
        let store = PgStepUpStore::new(self.pool().await);
        store.migrate().await.expect("migrate");
        store
    }

    async fn drop_schema(self) {
        self.admin
            .execute(AssertSqlSafe(format!(
                "DROP SCHEMA \"{}\" CASCADE",
                self.name
            )))
            .await
            .expect("drop test schema");
    }
}

async fn postgres() -> (Arc<dyn StepUpStore>, Schema) {
    let schema = Schema::create().await;
    (Arc::new(schema.store().await), schema)
}

async fn drop_schema(schema: Schema) {
    schema.drop_schema().await;
}

scenario_tests!(postgres, drop_schema);

#[tokio::test]
async fn postgres_store_conformance() {
    let schema = Schema::create().await;
    let store = schema.store().await;
    step_up_store_conformance(&store, &Fixtures::generate()).await;
    schema.drop_schema().await;
}

#[tokio::test]
async fn migrate_is_idempotent_and_safe_to_race() {
    let schema = Schema::create().await;
    let (a, b) = (
        PgStepUpStore::new(schema.pool().await),
        PgStepUpStore::new(schema.pool().await),
    );
    let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
    ra.expect("replica a migrates");
    rb.expect("replica b migrates");
    a.migrate().await.expect("migrate again is a no-op");
    let versions: Vec<i32> =
        sqlx::query_scalar("SELECT version FROM mc_stepup_schema_version ORDER BY version")
            .fetch_all(a.pool())
            .await
            .unwrap();
    assert_eq!(versions, vec![1], "each migration recorded exactly once");
    schema.drop_schema().await;
}

/// Two replicas (two pools, two services, one key) share the database: a grant is
/// consumed once in total, and a challenge answered once in total.
#[tokio::test]
async fn single_use_holds_across_replicas() {
    let schema = Schema::create().await;
    let store_a: Arc<dyn StepUpStore> = Arc::new(schema.store().await);
    let store_b: Arc<dyn StepUpStore> = Arc::new(PgStepUpStore::new(schema.pool().await));
    let mut h = common::Harness::new(store_a).await;
    let replica_b = common::service(store_b, h.clock.clone());

    // Grant: 8 concurrent verifications split over both replicas.
    let granted = h.grant(ActionKind::Cancel, "exec_1").await;
    let binding = h.binding(ActionKind::Cancel, "exec_1");
    let now = h.clock.now();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let verifier = if i % 2 == 0 {
            h.stepup.clone()
        } else {
            replica_b.clone()
        };
        let (grant, binding) = (granted.grant.clone(), binding.clone());
        tasks.push(tokio::spawn(async move {
            verifier.verify_and_consume(&grant, &binding, now).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => ok += 1,
            Err(e) => assert_eq!(e, StepUpError::AlreadyUsed),
        }
    }
    assert_eq!(ok, 1, "exactly one replica accepts the grant");

    // Challenge: the same assertion sent to both replicas at once.
    let ch = h.challenge(ActionKind::Retry, "exec_2").await;
    let cred = h.answer(&ch);
    let req = || ChallengeFinishRequest {
        challenge_id: ch.challenge_id,
        credential: cred.clone(),
    };
    let (ra, rb) = tokio::join!(
        h.stepup.finish_challenge(&h.tenant, &h.alice, req()),
        replica_b.finish_challenge(&h.tenant, &h.alice, req())
    );
    let results = [ra, rb];
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "exactly one replica issues a grant: {results:?}"
    );
    assert!(
        results
            .iter()
            .any(|r| r.as_ref().err() == Some(&WebauthnStepUpError::ChallengeNotFound))
    );
    schema.drop_schema().await;
}

/// A real outage: the database is unreachable (nothing listens on the port).
#[tokio::test]
async fn unreachable_database_means_read_only_console() {
    // Take a grant while the database is up...
    let schema = Schema::create().await;
    let mut h = common::Harness::new(Arc::new(schema.store().await)).await;
    let granted = h.grant(ActionKind::Cancel, "exec_1").await;
    let binding = h.binding(ActionKind::Cancel, "exec_1");

    // ...then a replica whose database is gone.
    let dead_pool = PgPoolOptions::new()
        .acquire_timeout(StdDuration::from_secs(3))
        .connect_lazy("postgres://postgres@127.0.0.1:1/test")
        .unwrap();
    let dead = common::service(Arc::new(PgStepUpStore::new(dead_pool)), h.clock.clone());
    let refused = dead
        .verify_and_consume(&granted.grant, &binding, h.clock.now())
        .await
        .unwrap_err();
    assert!(
        matches!(refused, StepUpError::Unavailable(_)),
        "{refused:?}"
    );
    assert!(
        refused
            .to_string()
            .starts_with("step-up unavailable, console is read-only"),
        "{refused}"
    );
    let err = dead
        .start_challenge(
            &h.tenant,
            &h.alice,
            mc_webauthn::api::ChallengeStartRequest {
                action: ActionKind::Cancel,
                execution_id: common::exec("exec_1"),
            },
        )
        .await
        .unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    // The refused grant was not consumed: the healthy replica still accepts it.
    h.stepup
        .verify_and_consume(&granted.grant, &binding, h.clock.now())
        .await
        .unwrap();
    schema.drop_schema().await;
}

/// Tampered rows are reported as corrupt, not as a panic or an outage.
#[tokio::test]
async fn corrupt_rows_are_typed_errors() {
    let schema = Schema::create().await;
    let store = schema.store().await;
    let mut h = common::Harness::new(Arc::new(store.clone())).await;
    let ch = h.challenge(ActionKind::Cancel, "exec_1").await;
    sqlx::query("UPDATE mc_stepup_challenge SET action = 'delete_everything'")
        .execute(store.pool())
        .await
        .unwrap();
    let cred = h.answer(&ch);
    let err = h.finish(ch.challenge_id, cred).await.unwrap_err();
    assert!(
        matches!(&err, WebauthnStepUpError::Corrupt(m) if m.contains("action")),
        "{err:?}"
    );
    schema.drop_schema().await;
}
