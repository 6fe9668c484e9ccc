//! Test harness: one fresh schema per test on the server named by
//! `MC_TEST_DATABASE_URL`, so tests run in parallel and leave nothing behind.

#![allow(dead_code)] // each test binary uses a different part of the harness

use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::panic::AssertUnwindSafe;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::FutureExt;
use mc_postgres::PgStore;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, Executor};

/// The server the tests use.
pub fn database_url() -> String {
    std::env::var("MC_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

const START_HINT: &str = "start it with `pg_ctlcluster --skip-systemctl-redirect \
     $(ls /etc/postgresql) main start` (install with `apt-get install postgresql`), \
     or point MC_TEST_DATABASE_URL at a PostgreSQL 15 server";

fn options() -> PgConnectOptions {
    let url = database_url();
    PgConnectOptions::from_str(&url)
        .unwrap_or_else(|e| panic!("MC_TEST_DATABASE_URL={url} is not a valid URL: {e}"))
}

/// Connects once to the test database, creating it when the server runs but the
/// database does not exist yet. Panics (fails the test) with a hint when no server
/// answers: a missing database server is a failure, never a skip.
async fn admin_connection() -> sqlx::PgConnection {
    let opts = options();
    match opts.connect().await {
        Ok(c) => c,
        Err(e) if e.as_database_error().and_then(|d| d.code()).as_deref() == Some("3D000") => {
            let db = opts.get_database().unwrap_or("test").to_string();
            let mut maint = opts
                .clone()
                .database("postgres")
                .connect()
                .await
                .unwrap_or_else(|e| {
                    panic!(
                        "cannot reach PostgreSQL at {}: {e}; {START_HINT}",
                        database_url()
                    )
                });
            // Another test may create it at the same moment: ignore "already exists".
            let _ = maint
                .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{db}\"")))
                .await;
            let _ = maint.close().await;
            opts.connect().await.unwrap_or_else(|e| {
                panic!("cannot connect to {}: {e}; {START_HINT}", database_url())
            })
        }
        Err(e) => panic!(
            "PostgreSQL is not reachable at {}: {e}; {START_HINT}",
            database_url()
        ),
    }
}

/// A unique schema name for one test.
fn schema_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    format!("mc_test_{:016x}", h.finish())
}

/// A pool whose every connection works in `schema` (set by `after_connect`), named
/// `schema` in `pg_stat_activity` so a test can find its own backends.
pub async fn pool_in(schema: &str, max_conns: u32) -> PgPool {
    let set_path = format!("SET search_path TO \"{schema}\"");
    PgPoolOptions::new()
        .max_connections(max_conns)
        .acquire_timeout(Duration::from_secs(30))
        .after_connect(move |conn, _meta| {
            let set_path = set_path.clone();
            Box::pin(async move {
                conn.execute(sqlx::AssertSqlSafe(set_path)).await?;
                Ok(())
            })
        })
        .connect_with(options().application_name(schema))
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {}: {e}; {START_HINT}", database_url()))
}

/// What a test body gets.
pub struct Ctx {
    /// The store on a fresh, migrated schema.
    pub store: PgStore,
    /// The schema's name.
    pub schema: String,
}

impl Ctx {
    /// Another store ("replica") on the same schema, with its own pool.
    pub async fn replica(&self, max_conns: u32) -> PgStore {
        PgStore::from_pool(pool_in(&self.schema, max_conns).await)
    }
}

/// Runs `body` against a fresh schema, migrated, and drops the schema afterwards —
/// also when the body panics (the panic is then resumed).
pub async fn with_store<F, Fut>(max_conns: u32, body: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = ()>,
{
    let schema = schema_name();
    let mut admin = admin_connection().await;
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\"")))
        .await
        .expect("create test schema");
    let store = PgStore::from_pool(pool_in(&schema, max_conns).await);
    store
        .migrate()
        .await
        .expect("migrations apply to an empty schema");
    let pool = store.pool().clone();
    let result = AssertUnwindSafe(body(Ctx {
        store,
        schema: schema.clone(),
    }))
    .catch_unwind()
    .await;
    pool.close().await;
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA \"{schema}\" CASCADE"
        )))
        .await
        .expect("drop test schema");
    let _ = admin.close().await;
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

/// A commit instant shared by the tests.
pub const T0: time::OffsetDateTime = time::macros::datetime!(2025-12-10 18:00 UTC);

/// A cancel of `e` expecting `expected` as its version, five minutes after [`T0`], with
/// its `mc.exec.action` event and idempotency record (`key`; the fingerprint covers
/// the execution and `reason`).
pub fn cancel_unit(
    e: &mc_core::Execution,
    expected: u64,
    key: &str,
    reason: &str,
) -> mc_core::ActionCommit {
    use mc_core::{ActionKind, ActorId, Digest, IdempotencyKey, IdempotencyRecord};
    let t = e.tenant.clone();
    let mut c = mc_core::ActionCommit::new(t.clone(), T0 + time::Duration::minutes(5));
    c.transition = Some(mc_core::Transition {
        execution_id: e.id.clone(),
        expected_version: expected,
        to: mc_core::ExecutionState::Cancelled,
        next_attempt: false,
    });
    c.audit.push(mc_core::NewAuditEvent::exec_action(
        &t,
        &ActorId::new("alice@company").unwrap(),
        &e.id,
        ActionKind::Cancel,
        reason,
        c.at,
    ));
    c.idempotency = Some(IdempotencyRecord {
        key: IdempotencyKey::new(key).unwrap(),
        fingerprint: Digest::of(format!("{}|cancel|{reason}", e.id).as_bytes()),
        outcome: serde_json::json!({ "execution": e.id.as_str(), "reason": reason }),
        created_at: c.at,
    });
    c
}

/// The tenant most tests use.
pub fn tenant() -> mc_core::TenantId {
    mc_core::TenantId::new("acme").unwrap()
}

/// An execution `id` of [`tenant`] in `state`, created at [`T0`].
pub fn exec(id: &str, state: mc_core::ExecutionState) -> mc_core::Execution {
    let mut e = mc_core::Execution::new(
        tenant(),
        mc_core::ExecutionId::new(id).unwrap(),
        mc_core::Digest::of(b"manifest"),
        mc_core::Digest::of(id.as_bytes()),
        T0,
    );
    e.state = state;
    e
}

/// Stores `e` through a unit of work that creates it.
pub async fn create(store: &PgStore, e: &mc_core::Execution) {
    use mc_core::ExecutionStore as _;
    let mut c = mc_core::ActionCommit::new(e.tenant.clone(), e.created_at);
    c.create = Some(e.clone());
    store.commit(c).await.expect("create execution");
}
