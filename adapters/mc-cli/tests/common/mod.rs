//! Helpers shared by the `mc` end-to-end tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `mc` binary under test.
pub fn mc() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mc"))
}

/// Runs a command: exit code, stdout, stderr.
pub fn run(cmd: &mut Command) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("mc runs");
    (
        status.code().expect("exit code"),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

/// A scratch directory removed on drop (no dev-dependency needed).
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new, empty directory named after `tag`, this process and a counter.
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("mc-cli-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The test server (`MC_TEST_DATABASE_URL`, default the machine's PostgreSQL).
pub fn database_url() -> String {
    std::env::var("MC_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

/// Runs one SQL statement on the test server (creating and dropping this test's
/// schema); fails with the command that starts PostgreSQL when it is not running.
pub fn admin_sql(sql: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&database_url())
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "PostgreSQL is not reachable at {}: {e}; start it with \
                     `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`",
                    database_url()
                )
            });
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    });
}

/// Drops the schema when the test ends, passed or not.
pub struct Schema(String);

impl Drop for Schema {
    fn drop(&mut self) {
        admin_sql(&format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.0));
    }
}

/// A fresh schema on the test server, dropped with the returned guard, and a
/// database URL whose every connection works in it.
pub fn pg_schema(tag: &str) -> (Schema, String) {
    let name = format!(
        "mc_{tag}_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    admin_sql(&format!("CREATE SCHEMA \"{name}\""));
    let schema = Schema(name.clone());
    let base = database_url();
    let sep = if base.contains('?') { '&' } else { '?' };
    // libpq-style `options`: every pooled connection works in this schema.
    (
        schema,
        format!("{base}{sep}options=-c%20search_path%3D{name}"),
    )
}
