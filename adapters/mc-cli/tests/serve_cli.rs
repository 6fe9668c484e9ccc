//! `mc serve` end to end: start the binary on a free port, read the printed demo
//! tokens, run the demo step-up ceremony and a retry over plain HTTP/1.1.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One request on a fresh connection; returns (status, body).
fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let status: u16 = raw[9..12].parse().unwrap();
    let (head, rest) = raw.split_once("\r\n\r\n").unwrap();
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    (status, body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, rest) = s.split_once("\r\n").unwrap();
        let n = usize::from_str_radix(size.trim(), 16).unwrap();
        if n == 0 {
            return out;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

/// A running `mc serve` and what its banner printed.
struct Started {
    _server: Server,
    addr: String,
    alice: String,
    carol: String,
    /// The demo retention admin.
    rita: String,
    /// Retries and replays the rollback watch recovered from the audit chains.
    recovered: usize,
}

/// Starts `mc serve --listen 127.0.0.1:0 ARGS…` and reads its banner.
fn start(args: &[&str]) -> Started {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mc"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let server = Server(child);
    let mut addr = None;
    let mut alice = None;
    let mut carol = None;
    let mut rita = None;
    let mut recovered = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("mc serve: listening on http://") {
            addr = Some(rest.split_whitespace().next().unwrap().to_string());
        }
        for (name, slot) in [
            ("ALICE", &mut alice),
            ("CAROL", &mut carol),
            ("RITA", &mut rita),
        ] {
            if let Some(rest) = line
                .trim()
                .strip_prefix(&format!("export MC_TOKEN_{name}="))
            {
                *slot = Some(rest.split_whitespace().next().unwrap().to_string());
            }
        }
        if let Some(rest) = line.strip_prefix("rollback watch: ") {
            recovered = rest
                .split("; ")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .and_then(|n| n.parse::<usize>().ok());
        }
        if line.contains(":retry") {
            break; // the last line of the banner
        }
    }
    Started {
        _server: server,
        addr: addr.expect("address printed (see the server's stderr above)"),
        alice: format!("Bearer {}", alice.expect("alice's token printed")),
        carol: format!("Bearer {}", carol.expect("carol's token printed")),
        rita: format!("Bearer {}", rita.expect("rita's token printed")),
        recovered: recovered.expect("the rollback watch line printed"),
    }
}

/// Step-up (demo HMAC mode) then a retry of `exec` with `key`; returns the response.
fn stepped_up_retry(addr: &str, token: &str, exec: &str, key: &str) -> (u16, String) {
    let h = vec![
        ("Authorization", token),
        ("Content-Type", "application/json"),
    ];
    let (status, body) = request(
        addr,
        "POST",
        "/api/stepup/challenge",
        &h,
        &format!(r#"{{"action":"retry","executionId":"{exec}"}}"#),
    );
    assert_eq!(status, 200, "{body}");
    let challenge = json(&body)["challengeId"].as_str().unwrap().to_string();
    let (status, body) = request(
        addr,
        "POST",
        "/api/stepup/verify",
        &h,
        &format!(r#"{{"challengeId":"{challenge}"}}"#),
    );
    assert_eq!(status, 200, "{body}");
    let grant = json(&body)["grant"].as_str().unwrap().to_string();
    let mut with_key = h.clone();
    with_key.push(("Idempotency-Key", key));
    request(
        addr,
        "POST",
        &format!("/api/executions/{exec}:retry"),
        &with_key,
        &format!(r#"{{"reason":"transient_error","stepUp":"{grant}"}}"#),
    )
}

#[test]
fn serve_prints_tokens_and_serves_the_demo_ceremony() {
    let Started {
        _server,
        addr,
        alice,
        carol,
        ..
    } = start(&[]);

    let (status, body) = request(
        &addr,
        "GET",
        "/api/executions?state=failed",
        &[("Authorization", &alice)],
        "",
    );
    assert_eq!(status, 200, "{body}");
    let ids: Vec<_> = json(&body)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, ["exec_1005", "exec_1001"]);

    let (status, body) = stepped_up_retry(&addr, &alice, "exec_1001", "cli-1");
    assert_eq!(status, 202, "{body}");
    assert_eq!(json(&body)["attempt"], 2);
    // The same request again (with a fresh grant) is answered from the stored key.
    let (status, again) = stepped_up_retry(&addr, &alice, "exec_1001", "cli-1");
    assert_eq!(status, 202);
    assert_eq!(json(&again)["idempotentReplay"], true);

    // The action's latency is exported with the SLO's 800 ms bucket.
    let (status, metrics) = request(&addr, "GET", "/metrics", &[], "");
    assert_eq!(status, 200, "{metrics}");
    assert!(
        metrics.contains(
            "mc_action_latency_ms_bucket{action=\"retry\",outcome=\"accepted\",le=\"800\"}"
        ),
        "{metrics}"
    );
    // It is described with the catalogue's help text.
    let latency = mc_core::telemetry::ACTION_LATENCY;
    assert!(
        metrics.contains(&format!("# HELP {} {}", latency.name, latency.help)),
        "{metrics}"
    );

    // A read-only token cannot write; the evidence manifest lists the seeded log.
    let c = [
        ("Authorization", carol.as_str()),
        ("Content-Type", "application/json"),
    ];
    let (status, _) = request(&addr, "POST", "/api/executions/exec_1002:cancel", &c, "{}");
    assert_eq!(status, 403);
    let (status, body) = request(&addr, "GET", "/api/executions/exec_1003/evidence", &c, "");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        json(&body)["manifest"]["artifacts"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert!(json(&body)["envelope"].is_object());
}

#[test]
fn serve_on_postgres_keeps_state_and_audit_across_restarts() {
    let (_schema, url) = common::pg_schema("serve");

    // First run: migrate, seed the demo tenants, retry a failed execution.
    {
        let s = start(&[
            "--database-url",
            &url,
            "--seed-demo",
            "--max-connections",
            "4",
        ]);
        assert_eq!(s.recovered, 0, "nothing to watch on a new database");
        let (status, body) = stepped_up_retry(&s.addr, &s.alice, "exec_1001", "pg-1");
        assert_eq!(status, 202, "{body}");
        assert_eq!(json(&body)["attempt"], 2);
        assert_eq!(json(&body)["idempotentReplay"], false);

        // The retention admin shortens acme's log retention over the API.
        let (status, body) = request(
            &s.addr,
            "PUT",
            "/api/retention/logs",
            &[
                ("Authorization", &s.rita),
                ("Content-Type", "application/json"),
                ("If-Match", "\"none\""),
            ],
            r#"{"ttl":"30d","reason":"contract 2025-17"}"#,
        );
        assert_eq!(status, 200, "{body}");
        assert_eq!(json(&body)["previous"], "90d", "{body}");
    }

    // Second run on the same database, without seeding: the retry is still there,
    // the same request is answered from the stored idempotency record, and the
    // audit chain holds exactly one action event.
    let s = start(&["--database-url", &url, "--max-connections", "4"]);
    // The first run's retry is watched again (MC-SRE-1161 across a restart).
    assert_eq!(s.recovered, 1);
    let (status, body) = request(
        &s.addr,
        "GET",
        "/api/executions/exec_1001",
        &[("Authorization", &s.carol)],
        "",
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["attempt"], 2, "{body}");
    assert_eq!(json(&body)["state"], "pending", "{body}");
    let (status, body) = stepped_up_retry(&s.addr, &s.alice, "exec_1001", "pg-1");
    assert_eq!(status, 202, "{body}");
    assert_eq!(json(&body)["idempotentReplay"], true, "{body}");

    // The override outlived the process (PostgreSQL), and the janitor's CLI reads it.
    let (status, body) = request(
        &s.addr,
        "GET",
        "/api/retention/logs",
        &[("Authorization", &s.carol)],
        "",
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["override"], "30d", "{body}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mc"))
        .args([
            "janitor",
            "show",
            "--database-url",
            &url,
            "--tenant",
            "acme",
        ])
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("30d"), "{shown}");

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let events: i64 = rt.block_on(async {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query_scalar(
            "SELECT count(*) FROM mc_audit_events \
              WHERE tenant = 'acme' AND kind IN ('mc.exec.action', 'mc.lifecycle.override')",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap()
    });
    assert_eq!(
        events, 2,
        "one audit event for one accepted action, one for the override"
    );
}
