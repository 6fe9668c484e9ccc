//! End-to-end tests of `mc janitor` on a local-directory store.

mod common;

use common::{TempDir, mc, run};

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Writes an object of the local store with a last-modified time `age` ago.
fn object(store: &Path, key: &str, age: Duration) {
    let p = store.join(key);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, b"line\n").unwrap();
    let f = std::fs::File::options().write(true).open(&p).unwrap();
    f.set_modified(SystemTime::now() - age).unwrap();
}

const DAY: Duration = Duration::from_secs(86_400);

#[test]
fn purge_deletes_expired_logs_and_leaves_a_verifiable_manifest() {
    let tmp = TempDir::new("purge");
    let store = tmp.path().join("store");
    object(&store, "tenants/acme/logs/exec_1/old.log", 100 * DAY);
    object(&store, "tenants/acme/logs/exec_2/new.log", 10 * DAY);
    object(&store, "tenants/globex/logs/exec_3/old.log", 100 * DAY);
    object(
        &store,
        "tenants/acme/receipts/exec_1/receipt.json",
        400 * DAY,
    );
    let key = tmp.path().join("janitor.pem");
    let (code, _, err) = run(mc().args(["evidence", "keygen", "--out"]).arg(&key));
    assert_eq!(code, 0, "{err}");
    let url = format!("file://{}", store.display());

    // A dry run changes nothing.
    let (code, out, err) = run(mc()
        .args([
            "janitor",
            "purge",
            "--blobs",
            &url,
            "--kind=logs",
            "--ttl=90d",
            "--dry-run",
            "--key",
        ])
        .arg(&key));
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("acme: logs 1 of 2 examined past 90d (would delete 1"),
        "{out}"
    );
    assert!(store.join("tenants/acme/logs/exec_1/old.log").exists());

    let audit = tmp.path().join("audit.jsonl");
    let (code, out, err) = run(mc()
        .args([
            "janitor",
            "purge",
            "--blobs",
            &url,
            "--kind=logs",
            "--ttl=90d",
            "--run-id",
            "nightly-1",
            "--key",
        ])
        .arg(&key)
        .arg("--audit-out")
        .arg(&audit));
    assert_eq!(code, 0, "{out}{err}");
    assert!(!store.join("tenants/acme/logs/exec_1/old.log").exists());
    assert!(!store.join("tenants/globex/logs/exec_3/old.log").exists());
    assert!(store.join("tenants/acme/logs/exec_2/new.log").exists());
    assert!(
        store
            .join("tenants/acme/receipts/exec_1/receipt.json")
            .exists()
    );
    let events = std::fs::read_to_string(&audit).unwrap();
    assert_eq!(events.lines().count(), 2, "{events}");
    assert!(
        events.contains("\"type\":\"mc.lifecycle.purge\""),
        "{events}"
    );

    let manifest = store.join("tenants/acme/deletion-manifests/nightly-1/result.dsse.json");
    let public = PathBuf::from(format!("{}.pub", key.display()));
    let (code, out, _) = run(mc()
        .args(["janitor", "verify"])
        .arg(&manifest)
        .arg("--key")
        .arg(&public));
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("valid result of run nightly-1 for tenant acme"),
        "{out}"
    );
    assert!(
        out.contains("tenants/acme/logs/exec_1/old.log (5 bytes): deleted"),
        "{out}"
    );
    // Tampered: invalid, exit 1.
    let mut env: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    env["payload"] = "e30=".into();
    let forged = tmp.path().join("forged.json");
    std::fs::write(&forged, serde_json::to_vec(&env).unwrap()).unwrap();
    let (code, out, _) = run(mc()
        .args(["janitor", "verify"])
        .arg(&forged)
        .arg("--key")
        .arg(&public));
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("invalid:"), "{out}");
}

/// Overrides set with `mc janitor override` live in PostgreSQL with their audit
/// events, and `mc janitor purge --database-url` applies them and appends its own
/// events to the same chains.
#[test]
fn overrides_in_postgres_steer_the_purge_and_share_the_audit_chain() {
    let (_schema, db) = common::pg_schema("janitor");
    let tmp = TempDir::new("pg");
    let store = tmp.path().join("store");
    object(&store, "tenants/acme/logs/exec_1/old.log", 40 * DAY);
    object(&store, "tenants/globex/logs/exec_2/old.log", 40 * DAY);
    let key = tmp.path().join("janitor.pem");
    assert_eq!(
        run(mc().args(["evidence", "keygen", "--out"]).arg(&key)).0,
        0
    );
    let override_ = |extra: &[&str]| {
        run(mc()
            .args(["janitor", "override", "--database-url", &db])
            .args(["--tenant=acme", "--kind=logs", "--actor=alice@company"])
            .args(["--reason", "contract 2025-17"])
            .args(extra))
    };
    let (code, out, err) = override_(&["--ttl=30d"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.trim(), "acme: logs 90d -> 30d");
    // Out of bounds: refused, exit 2, nothing stored.
    let (code, _, err) = override_(&["--ttl=11y"]);
    assert_eq!(code, 2);
    assert!(err.contains("outside the allowed 1d..=10y"), "{err}");
    let (code, out, err) =
        run(mc().args(["janitor", "show", "--database-url", &db, "--tenant=acme"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("logs\t30d\toverride"), "{out}");
    assert!(out.contains("receipts\t7y\tdefault"), "{out}");

    let url = format!("file://{}", store.display());
    let audit = tmp.path().join("audit.jsonl");
    let (code, out, err) = run(mc()
        .args([
            "janitor",
            "purge",
            "--blobs",
            &url,
            "--kind=logs",
            "--database-url",
            &db,
        ])
        .arg("--key")
        .arg(&key)
        .arg("--audit-out")
        .arg(&audit));
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        !store.join("tenants/acme/logs/exec_1/old.log").exists(),
        "acme's 30-day override applied"
    );
    assert!(
        store.join("tenants/globex/logs/exec_2/old.log").exists(),
        "globex keeps the 90-day default"
    );
    let events = std::fs::read_to_string(&audit).unwrap();
    // Only this run's events (acme's chain also holds the override); globex had
    // nothing to delete, so no run was recorded for it.
    assert_eq!(events.lines().count(), 1, "{events}");
    assert!(events.contains("\"seq\":2"), "{events}");

    // acme's chain in PostgreSQL: the override, then the purge.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let kinds: Vec<(i64, String)> = rt.block_on(async {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&db).await.unwrap();
        sqlx::query_as("SELECT seq, kind FROM mc_audit_events WHERE tenant = 'acme' ORDER BY seq")
            .fetch_all(&mut conn)
            .await
            .unwrap()
    });
    assert_eq!(
        kinds,
        [
            (1, "mc.lifecycle.override".to_string()),
            (2, "mc.lifecycle.purge".to_string())
        ]
    );

    // Removing the override: the default is back.
    let (code, out, err) = override_(&["--clear"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.trim(), "acme: logs 30d -> default 90d");
    let (_, out, _) = run(mc().args(["janitor", "show", "--database-url", &db, "--tenant=acme"]));
    assert!(out.contains("logs\t90d\tdefault"), "{out}");
}

#[test]
fn bad_arguments_are_refused_before_anything_runs() {
    let tmp = TempDir::new("bad");
    let key = tmp.path().join("k.pem");
    assert_eq!(
        run(mc().args(["evidence", "keygen", "--out"]).arg(&key)).0,
        0
    );
    let url = format!("file://{}", tmp.path().display());
    for (args, needle) in [
        (
            vec!["--kind=receipts", "--ttl=1y"],
            "outside the allowed 7y..=100y",
        ),
        (vec!["--kind=logs", "--ttl=90x"], "not a retention period"),
        (
            vec!["--kind=evidence"],
            "no retention rule for kind \"evidence\"",
        ),
    ] {
        let (code, _, err) = run(mc()
            .args(["janitor", "purge", "--blobs", &url])
            .args(&args)
            .arg("--key")
            .arg(&key));
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn cronjob_renders_the_spec_job() {
    let (code, out, err) = run(mc().args(["janitor", "cronjob", "--kind", "logs", "--ttl", "90d"]));
    assert_eq!(code, 0, "{err}");
    let job: serde_json::Value = yaml_serde::from_str(&out).unwrap();
    assert_eq!(job["kind"], "CronJob");
    assert_eq!(job["metadata"]["name"], "mc-logs-ttl");
    assert_eq!(job["spec"]["schedule"], "0 3 * * *");
    assert_eq!(job["spec"]["concurrencyPolicy"], "Forbid");
    let args = &job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"];
    assert_eq!(args[2], "--kind=logs");
    assert_eq!(args[3], "--ttl=90d");
    let (code, _, _) = run(mc().args(["janitor", "cronjob", "--kind", "receipts", "--ttl", "1y"]));
    assert_eq!(code, 2);
}
