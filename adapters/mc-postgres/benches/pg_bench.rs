//! PostgreSQL benchmarks (a `--release` binary that prints its figures).
//!
//! ```text
//! cargo bench -p mc-postgres --bench pg_bench            # everything
//! cargo bench -p mc-postgres --bench pg_bench -- search  # only the search bench
//! cargo bench -p mc-postgres --bench pg_bench -- actions # only the action bench
//! ```
//!
//! 1. **search** — `ExecutionStore::search` pages on a tenant with 1,000,000
//!    executions (`MC_BENCH_ROWS`), seeded once with `INSERT … SELECT
//!    generate_series` into the schema `mc_bench` (`MC_BENCH_SCHEMA`) and reused by
//!    later runs. Target: p95 ≤ 20 ms per page.
//!
//! 2. **actions** — the action round-trip through `mc_actions::ActionService::perform`
//!    (idempotency lookup, flag, execution read, policy, HMAC step-up, one-transaction
//!    commit with the audit event) on PostgreSQL: latency at concurrency 1 (target
//!    p95 ≤ 5 ms) and throughput with 16 concurrent clients on 16 connections (target
//!    ≥ 1,000 actions/s). Executions are prepared in bulk beforehand, untimed, for a
//!    fresh tenant per run.
//!
//! The server is `MC_BENCH_DATABASE_URL`, else `MC_TEST_DATABASE_URL`, else
//! `postgres://postgres@127.0.0.1:5432/test`; for the Unix socket use
//! `postgres://postgres@localhost/test?host=/var/run/postgresql`. The action bench
//! prints the load average, which moves the figures a lot on a shared machine.

use std::str::FromStr;
use std::time::{Duration, Instant};

use std::sync::Arc;

use mc_actions::{ActionRequest, ActionService, HmacStepUp};
use mc_core::{
    ActionKind, Actor, ActorId, AuditLog, Clock, ExecutionId, ExecutionQuery, ExecutionState,
    ExecutionStore, Flag, FlagStore, IdempotencyKey, StepUpBinding, SystemClock, TenantId,
};
use mc_postgres::{CommitStats, GroupCommit, PgStore};
use sqlx::Executor;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use time::macros::datetime;

const BIG_TENANT: &str = "bench-big";
const OTHER_TENANT: &str = "bench-other";

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn database_url() -> String {
    std::env::var("MC_BENCH_DATABASE_URL")
        .or_else(|_| std::env::var("MC_TEST_DATABASE_URL"))
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

/// A pool whose connections work in `schema`.
async fn pool_in(schema: &str, max_conns: u32, synchronous_commit: bool) -> PgPool {
    let opts = PgConnectOptions::from_str(&database_url()).expect("a valid database URL");
    let set_path = format!(
        "SET search_path TO \"{schema}\"; SET synchronous_commit TO {}",
        if synchronous_commit { "on" } else { "off" }
    );
    PgPoolOptions::new()
        .max_connections(max_conns)
        .min_connections(max_conns)
        .acquire_timeout(Duration::from_secs(60))
        .after_connect(move |conn, _| {
            let set_path = set_path.clone();
            Box::pin(async move {
                conn.execute(sqlx::AssertSqlSafe(set_path)).await?;
                Ok(())
            })
        })
        .connect_with(opts.application_name("mc-bench"))
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is not reachable at {}: {e}; start it with \
                 `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`",
                database_url()
            )
        })
}

/// Latency figures of one scenario.
struct Figures {
    name: String,
    samples: Vec<Duration>,
}

impl Figures {
    fn pct(&self, p: f64) -> Duration {
        let mut s = self.samples.clone();
        s.sort();
        let i = ((s.len() as f64 - 1.0) * p).round() as usize;
        s[i]
    }
    fn ms(d: Duration) -> f64 {
        d.as_secs_f64() * 1000.0
    }
    fn print(&self, target_p95_ms: f64) {
        let p95 = Self::ms(self.pct(0.95));
        println!(
            "  {:<46} n={:<5} p50={:>7.2} ms  p95={:>7.2} ms  p99={:>7.2} ms  max={:>7.2} ms  {}",
            self.name,
            self.samples.len(),
            Self::ms(self.pct(0.50)),
            p95,
            Self::ms(self.pct(0.99)),
            Self::ms(self.pct(1.0)),
            if p95 <= target_p95_ms {
                "ok"
            } else {
                "OVER TARGET"
            }
        );
    }
}

/// Seeds `rows` executions for the big tenant (and a tenth of that for another
/// tenant, so every query must filter by tenant), unless already there.
async fn seed(pool: &PgPool, rows: i64) {
    let have: i64 = sqlx::query_scalar("SELECT count(*) FROM mc_executions WHERE tenant = $1")
        .bind(BIG_TENANT)
        .fetch_one(pool)
        .await
        .expect("count");
    if have == rows {
        println!("reusing seeded tenant {BIG_TENANT} ({rows} executions)");
        return;
    }
    println!("seeding {rows} executions for {BIG_TENANT} (once; later runs reuse them)…");
    let started = Instant::now();
    for t in [BIG_TENANT, OTHER_TENANT] {
        sqlx::query("DELETE FROM mc_executions WHERE tenant = $1")
            .bind(t)
            .execute(pool)
            .await
            .expect("clear tenant");
    }
    // State mix: 1% running, 3% failed, 2% cancelled, 0.1% pending, rest succeeded.
    // Labels: team (4 values), env (prod 90% / staging 10%), incident on 0.1%.
    // Two executions share each timestamp, so the id tie-break is exercised.
    let seed_sql = "INSERT INTO mc_executions (tenant, id, state, attempt, manifest_digest, \
             inputs_digest, parent, root, labels, version, created_at, created_sub_ns, \
             updated_at, updated_sub_ns) \
         SELECT $1, 'exec_' || lpad(g::text, 8, '0'), \
                CASE WHEN g % 100 = 0 THEN 'running' \
                     WHEN g % 100 BETWEEN 1 AND 3 THEN 'failed' \
                     WHEN g % 100 BETWEEN 4 AND 5 THEN 'cancelled' \
                     WHEN g % 1000 = 7 THEN 'pending' \
                     ELSE 'succeeded' END, \
                1, repeat('a', 64), md5(g::text) || md5(g::text), NULL, \
                'exec_' || lpad(g::text, 8, '0'), \
                jsonb_build_object('team', (ARRAY['payments','search','infra','data'])[g % 4 + 1], \
                                   'env', CASE WHEN g % 10 = 0 THEN 'staging' ELSE 'prod' END) \
                  || CASE WHEN g % 1000 = 0 THEN '{\"incident\":\"inc-42\"}'::jsonb ELSE '{}'::jsonb END, \
                1, timestamptz '2025-01-01 00:00:00+00' + (g / 2) * interval '30 seconds', 0, \
                timestamptz '2025-01-01 00:00:00+00' + (g / 2) * interval '30 seconds', 0 \
           FROM generate_series(1, $2) AS g";
    sqlx::query(seed_sql)
        .bind(BIG_TENANT)
        .bind(rows)
        .execute(pool)
        .await
        .expect("seed big tenant");
    sqlx::query(seed_sql)
        .bind(OTHER_TENANT)
        .bind(rows / 10)
        .execute(pool)
        .await
        .expect("seed other tenant");
    pool.execute("VACUUM ANALYZE mc_executions")
        .await
        .expect("vacuum analyze");
    println!("seeded in {:.1} s", started.elapsed().as_secs_f64());
}

/// Walks `pages` pages of `query` (continuing with the cursor; starting again from
/// a new random point when a walk ends), timing each page.
async fn walk(
    store: &PgStore,
    name: &str,
    mut query: ExecutionQuery,
    pages: usize,
    restart: impl Fn(usize) -> ExecutionQuery,
) -> Figures {
    let tenant = TenantId::new(BIG_TENANT).expect("tenant");
    let mut samples = Vec::with_capacity(pages);
    let mut restarts = 0;
    let mut items = 0usize;
    while samples.len() < pages {
        let t = Instant::now();
        let page = store.search(&tenant, &query).await.expect("search");
        samples.push(t.elapsed());
        items += page.items.len();
        match page.next_cursor {
            Some(c) => query.cursor = Some(c),
            None => {
                restarts += 1;
                query = restart(restarts);
            }
        }
    }
    assert!(items > 0, "{name}: the seeded data must match");
    Figures {
        name: name.to_string(),
        samples,
    }
}

/// Creates the bench schema if needed and returns a migrated store on it.
async fn bench_store(max_conns: u32, synchronous_commit: bool) -> PgStore {
    let schema = env_or("MC_BENCH_SCHEMA", "mc_bench");
    {
        let admin = pool_in("public", 1, true).await;
        admin
            .execute(sqlx::AssertSqlSafe(format!(
                "CREATE SCHEMA IF NOT EXISTS \"{schema}\""
            )))
            .await
            .expect("create bench schema");
        admin.close().await;
    }
    let store = PgStore::from_pool(pool_in(&schema, max_conns, synchronous_commit).await);
    store.migrate().await.expect("migrate bench schema");
    store
}

async fn bench_search(rows: i64) {
    let store = bench_store(4, true).await;
    let pool = store.pool().clone();
    seed(&pool, rows).await;

    let t0 = datetime!(2025-01-01 00:00 UTC);
    // Seeded time span: rows/2 timestamps, 30 s apart.
    let span_s = rows / 2 * 30;
    // A deterministic spread of start points across the whole history.
    let at = move |i: usize| {
        let frac = ((i as i64 * 7919) % 1000) as f64 / 1000.0;
        t0 + time::Duration::seconds((span_s as f64 * frac) as i64)
    };
    let q = |limit: u32| ExecutionQuery {
        limit,
        ..Default::default()
    };
    let before = move |i: usize, mut q: ExecutionQuery| {
        q.created_before = Some(at(i));
        q
    };
    const PAGES: usize = 400;

    println!(
        "\nsearch on tenant {BIG_TENANT} ({rows} executions, plus {} on another tenant), page = 50",
        rows / 10
    );
    let mut all = Vec::new();
    all.push(
        walk(
            &store,
            "newest first, no filter, consecutive pages",
            q(50),
            PAGES,
            |_| q(50),
        )
        .await,
    );
    all.push(
        walk(
            &store,
            "no filter, from random points in history",
            before(1, q(50)),
            PAGES,
            move |i| before(i + 1, q(50)),
        )
        .await,
    );
    let state = |s: Vec<ExecutionState>| ExecutionQuery {
        states: s,
        limit: 50,
        ..Default::default()
    };
    all.push(
        walk(
            &store,
            "state = failed (3%)",
            before(2, state(vec![ExecutionState::Failed])),
            PAGES,
            move |i| before(i + 2, state(vec![ExecutionState::Failed])),
        )
        .await,
    );
    all.push(
        walk(
            &store,
            "state = running (1%)",
            state(vec![ExecutionState::Running]),
            PAGES,
            move |i| before(i, state(vec![ExecutionState::Running])),
        )
        .await,
    );
    all.push(
        walk(
            &store,
            "state = pending (0.1%)",
            state(vec![ExecutionState::Pending]),
            PAGES,
            move |i| before(i, state(vec![ExecutionState::Pending])),
        )
        .await,
    );
    all.push(
        walk(
            &store,
            "state in (failed, cancelled) (5%)",
            state(vec![ExecutionState::Failed, ExecutionState::Cancelled]),
            PAGES,
            move |i| {
                before(
                    i,
                    state(vec![ExecutionState::Failed, ExecutionState::Cancelled]),
                )
            },
        )
        .await,
    );
    let label = |k: &str, v: &str| ExecutionQuery {
        label: Some((k.to_string(), v.to_string())),
        limit: 50,
        ..Default::default()
    };
    all.push(
        walk(
            &store,
            "label team=payments (25%)",
            label("team", "payments"),
            PAGES,
            move |i| before(i, label("team", "payments")),
        )
        .await,
    );
    all.push(
        walk(
            &store,
            "label env=staging (10%)",
            label("env", "staging"),
            PAGES,
            move |i| before(i, label("env", "staging")),
        )
        .await,
    );
    all.push(
        walk(
            &store,
            "label incident=inc-42 (0.1%)",
            label("incident", "inc-42"),
            PAGES,
            move |i| before(i, label("incident", "inc-42")),
        )
        .await,
    );
    let combo = move |i: usize| ExecutionQuery {
        states: vec![ExecutionState::Failed],
        label: Some(("team".into(), "search".into())),
        created_from: Some(at(i) - time::Duration::days(2)),
        created_before: Some(at(i)),
        limit: 50,
        ..Default::default()
    };
    all.push(
        walk(
            &store,
            "failed + team=search + 2-day window",
            combo(3),
            PAGES,
            move |i| combo(i + 3),
        )
        .await,
    );
    let window = move |i: usize| ExecutionQuery {
        created_from: Some(at(i) - time::Duration::hours(6)),
        created_before: Some(at(i)),
        limit: 100,
        ..Default::default()
    };
    all.push(
        walk(
            &store,
            "6-hour window, page = 100",
            window(4),
            PAGES,
            move |i| window(i + 4),
        )
        .await,
    );

    println!("target: p95 <= 20 ms per page");
    for f in &all {
        f.print(20.0);
    }
    let mut merged = Figures {
        name: "all search scenarios".into(),
        samples: all.iter().flat_map(|f| f.samples.clone()).collect(),
    };
    merged.samples.shrink_to_fit();
    merged.print(20.0);
    pool.close().await;
}

/// `n` running executions of a fresh tenant, inserted in one statement (untimed).
async fn prepare_executions(store: &PgStore, tenant: &TenantId, n: i64) {
    sqlx::query(
        "INSERT INTO mc_executions (tenant, id, state, attempt, manifest_digest, inputs_digest, \
             parent, root, labels, version, created_at, created_sub_ns, updated_at, updated_sub_ns) \
         SELECT $1, 'exec_' || g, 'running', 1, repeat('a', 64), repeat('b', 64), NULL, \
                'exec_' || g, '{}'::jsonb, 1, now(), 0, now(), 0 \
           FROM generate_series(1, $2) AS g",
    )
    .bind(tenant.as_str())
    .bind(n)
    .execute(store.pool())
    .await
    .expect("prepare executions");
}

/// A cancel request for `exec_{i}` with its step-up grant.
fn cancel_request(step_up: &HmacStepUp, actor: &Actor, i: i64) -> ActionRequest {
    let id = ExecutionId::new(format!("exec_{i}")).expect("id");
    let grant = step_up.issue(
        &StepUpBinding {
            tenant: actor.tenant.clone(),
            actor: actor.sub.clone(),
            action: ActionKind::Cancel,
            execution_id: id.clone(),
        },
        SystemClock.now(),
    );
    ActionRequest {
        tenant: actor.tenant.clone(),
        execution_id: id,
        kind: ActionKind::Cancel,
        actor: actor.clone(),
        reason: "stuck in provisioning".into(),
        idempotency_key: IdempotencyKey::new(format!("bench-{i}")).expect("key"),
        step_up: Some(grant),
    }
}

/// One action scenario: `clients` concurrent clients, each performing `per_client`
/// cancels in sequence, on `tenants` tenants (client `c` uses tenant `c % tenants`).
async fn action_scenario(
    name: &str,
    synchronous_commit: bool,
    group: GroupCommit,
    clients: usize,
    tenants: usize,
    per_client: i64,
) -> (Figures, f64, CommitStats) {
    let store = bench_store(clients as u32, synchronous_commit)
        .await
        .with_group_commit(group);
    let step_up = Arc::new(HmacStepUp::new(vec![7; 32]));
    let service = Arc::new(ActionService::new(
        Arc::new(store.clone()),
        Arc::new(store.clone()),
        step_up.clone(),
        Arc::new(SystemClock),
    ));
    let run = SystemClock.now().unix_timestamp_nanos();
    let mut actors = Vec::new();
    for t in 0..tenants {
        let tenant = TenantId::new(format!("bench-act-{run}-{t}")).expect("tenant");
        prepare_executions(&store, &tenant, per_client * clients as i64 + 50).await;
        store
            .set(&tenant, Flag::ConsoleActionsEnabled, true)
            .await
            .expect("flag");
        actors.push(Actor::new(
            ActorId::new("alice@company").expect("actor"),
            tenant,
            ["operator"],
        ));
    }
    // Warm every connection's statement cache, as a long-running host would have
    // (three real actions per client, on executions beyond the measured ones).
    let base = per_client * clients as i64;
    let warm: Vec<_> = (0..clients as i64)
        .map(|c| {
            let (service, step_up, actor) = (service.clone(), step_up.clone(), actors[0].clone());
            tokio::spawn(async move {
                for i in (base + c * 3 + 1)..=(base + c * 3 + 3) {
                    service
                        .perform(cancel_request(&step_up, &actor, i))
                        .await
                        .expect("warm-up action");
                }
            })
        })
        .collect();
    for w in warm {
        w.await.expect("warm-up");
    }
    let stats_before = store.commit_stats();
    let server_pids = backend_pids(&store).await;
    let cpu_before = (cpu_ticks(&server_pids), cpu_ticks(&["self".to_string()]));
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let service = service.clone();
            let step_up = step_up.clone();
            let actor = actors[c % tenants].clone();
            let c = c as i64;
            tokio::spawn(async move {
                let mut samples = Vec::with_capacity(per_client as usize);
                for i in (c * per_client + 1)..=((c + 1) * per_client) {
                    let req = cancel_request(&step_up, &actor, i);
                    let t = Instant::now();
                    let out = service.perform(req).await.expect("action");
                    samples.push(t.elapsed());
                    assert_eq!(out.state, ExecutionState::Cancelled);
                }
                samples
            })
        })
        .collect();
    let mut samples = Vec::new();
    for t in tasks {
        samples.extend(t.await.expect("client task"));
    }
    let throughput = samples.len() as f64 / started.elapsed().as_secs_f64();
    let cpu_after = (cpu_ticks(&server_pids), cpu_ticks(&["self".to_string()]));
    let per_action_us = |before: u64, after: u64| {
        (after - before) as f64 * 1e6 / ticks_per_second() / samples.len() as f64
    };
    let (server_us, client_us) = (
        per_action_us(cpu_before.0, cpu_after.0),
        per_action_us(cpu_before.1, cpu_after.1),
    );
    if clients > 1 {
        println!(
            "  CPU per action: server {server_us:.0} µs + this process {client_us:.0} µs \
             (CPU-bound ceiling on {} cores: {:.0} actions/s)",
            cores(),
            cores() as f64 * 1e6 / (server_us + client_us)
        );
    }
    let stats_after = store.commit_stats();
    let stats = CommitStats {
        batches: stats_after.batches - stats_before.batches,
        units: stats_after.units - stats_before.units,
        units_set_path: stats_after.units_set_path - stats_before.units_set_path,
    };
    let mut audit = 0;
    for a in &actors {
        audit += store
            .read(&a.tenant, 0, u32::MAX)
            .await
            .expect("read audit")
            .len();
    }
    assert_eq!(
        audit,
        samples.len() + 3 * clients,
        "one audit event per action"
    );
    store.pool().close().await;
    (
        Figures {
            name: name.to_string(),
            samples,
        },
        throughput,
        stats,
    )
}

async fn bench_actions() {
    println!(
        "\naction round-trip through mc-actions on PostgreSQL (cancel of a running execution: \
         idempotency record + execution in one read alongside the flag, policy, HMAC step-up, \
         one-statement commit)"
    );
    let scale: i64 = env_or("MC_BENCH_ACTIONS", "1000")
        .parse()
        .expect("MC_BENCH_ACTIONS is a number");
    let transport = if database_url().contains("host=/") {
        "Unix socket"
    } else {
        "TCP"
    };
    println!(
        "server: {} ({transport}); {}",
        database_url(),
        load_average()
    );
    // MC_BENCH_MODES=durable skips the synchronous_commit=off runs;
    // MC_BENCH_GROUPING=grouped skips the one-unit-per-transaction reference runs.
    let modes = env_or("MC_BENCH_MODES", "durable,async");
    let grouping = env_or("MC_BENCH_GROUPING", "grouped,single");
    let durable: Vec<bool> = [true, false]
        .into_iter()
        .filter(|&d| modes.contains(if d { "durable" } else { "async" }))
        .collect();
    for sync in durable {
        let mode = if sync {
            "synchronous_commit=on (durable at ack)"
        } else {
            "synchronous_commit=off (host's choice)"
        };
        println!("{mode}:");
        let (f, _, _) = action_scenario(
            "concurrency 1, latency per action",
            sync,
            GroupCommit::default(),
            1,
            1,
            scale,
        )
        .await;
        f.print(5.0);
        println!("  ({})", load_average());
        let off = GroupCommit::new(1, 16).expect("valid settings");
        let runs = [
            ("grouped", GroupCommit::default()),
            ("one unit per tx", off),
        ]
        .into_iter()
        .filter(|(l, _)| grouping.contains(if *l == "grouped" { "grouped" } else { "single" }));
        for (label, group) in runs {
            for tenants in [1usize, 16] {
                let (f, tput, stats) = action_scenario(
                    &format!("16 clients, {tenants} tenant(s), {label}, latency"),
                    sync,
                    group,
                    16,
                    tenants,
                    scale / 4,
                )
                .await;
                f.print(f64::INFINITY);
                println!(
                    "  {:<46} {tput:>8.0} actions/s  {}  ({:.1} units per batch, {:.0} % on the set path; {})",
                    format!("16 clients, {tenants} tenant(s), {label}, throughput"),
                    if tput >= 1000.0 {
                        "ok (>= 1000/s)"
                    } else {
                        "under 1000/s"
                    },
                    stats.units as f64 / stats.batches.max(1) as f64,
                    100.0 * stats.units_set_path as f64 / stats.units.max(1) as f64,
                    load_average()
                );
            }
        }
    }
}

/// The server processes serving `store`'s pool (named `mc-bench`).
async fn backend_pids(store: &PgStore) -> Vec<String> {
    sqlx::query_scalar::<_, i32>(
        "SELECT pid FROM pg_stat_activity WHERE application_name = 'mc-bench'",
    )
    .fetch_all(store.pool())
    .await
    .expect("list backends")
    .into_iter()
    .map(|p| p.to_string())
    .collect()
}

/// User + system CPU ticks of the processes `pids` (`"self"` for this one), from
/// `/proc/<pid>/stat`; processes that are gone count 0.
fn cpu_ticks(pids: &[String]) -> u64 {
    pids.iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/stat")).ok())
        .map(|s| {
            // Fields after the parenthesised command name; utime and stime are the
            // 14th and 15th fields of the whole line.
            let rest = s.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
            let f: Vec<&str> = rest.split_whitespace().collect();
            let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            n(11) + n(12)
        })
        .sum()
}

/// Clock ticks per second of `/proc/*/stat` (USER_HZ, 100 on Linux).
fn ticks_per_second() -> f64 {
    100.0
}

/// Cores available to this process.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// The machine's load average (`/proc/loadavg`), printed next to the figures since
/// other work on the machine moves them a lot.
fn load_average() -> String {
    match std::fs::read_to_string("/proc/loadavg") {
        Ok(s) => format!(
            "load average {}",
            s.split_whitespace().take(3).collect::<Vec<_>>().join(", ")
        ),
        Err(_) => "load average unknown".to_string(),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wants = |name: &str| args.is_empty() || args.iter().any(|a| a == name);
    let rows: i64 = env_or("MC_BENCH_ROWS", "1000000")
        .parse()
        .expect("MC_BENCH_ROWS is a number");
    if wants("search") {
        bench_search(rows).await;
    }
    if wants("actions") {
        bench_actions().await;
        println!("done; {}", load_average());
    }
}
