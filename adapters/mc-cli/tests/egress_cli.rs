//! End-to-end tests of `mc egress check` and `mc egress proxy`.

mod common;

use common::{mc, run};

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Stdio;

fn manifest(tag: &str, text: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("mc-egress-cli-{tag}-{}.yaml", std::process::id()));
    std::fs::write(&p, text).unwrap();
    p
}

const MANIFEST: &str = "tasks:\n  - id: fetch\n    uses: pkg:http/get@1.0.0\n    egress:\n      allow:\n        - host: api.example.com\n          ports: [443]\n  - id: build\n";

#[test]
fn check_reports_each_destination_and_exits_by_verdict() {
    let m = manifest("check", MANIFEST);
    let (code, out, _) = run(mc().args(["egress", "check", "--manifest"]).arg(&m).args([
        "--task",
        "fetch",
        "api.example.com:443",
    ]));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("allow api.example.com:443"), "{out}");
    let (code, out, _) = run(mc().args(["egress", "check", "--manifest"]).arg(&m).args([
        "--task",
        "fetch",
        "api.example.com:443",
        "smtp.example.com:25",
        "2130706433:443",
    ]));
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("deny  smtp.example.com:25: host is not on"),
        "{out}"
    );
    assert!(out.contains("deny  2130706433:443: bad target"), "{out}");
    // A task without an egress: section reaches nothing.
    let (code, out, _) = run(mc().args(["egress", "check", "--manifest"]).arg(&m).args([
        "--task",
        "build",
        "api.example.com:443",
    ]));
    assert_eq!(code, 1, "{out}");
    let (code, _, err) = run(mc().args(["egress", "check", "--manifest"]).arg(&m).args([
        "--task",
        "nope",
        "a.example:1",
    ]));
    assert_eq!(code, 2);
    assert!(err.contains("no task \"nope\""), "{err}");
    let bad = manifest(
        "bad",
        "tasks:\n  - id: a\n    egress:\n      allow:\n        - host: '*.com'\n          ports: [443]\n",
    );
    let (code, _, err) = run(mc()
        .args(["egress", "check", "--manifest"])
        .arg(&bad)
        .args(["--task", "a", "x.com:443"]));
    assert_eq!(code, 2);
    assert!(err.contains("tasks[0].egress.allow[0].host"), "{err}");
    let _ = std::fs::remove_file(m);
    let _ = std::fs::remove_file(bad);
}

#[test]
fn proxy_serves_the_manifest_tasks() {
    let m = manifest("proxy", MANIFEST);
    let mut child = mc()
        .args(["egress", "proxy", "--manifest"])
        .arg(&m)
        .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let metrics_line = lines.next().unwrap().unwrap();
    let metrics_addr = metrics_line
        .strip_prefix("metrics on http://")
        .and_then(|r| r.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("unexpected first line {metrics_line:?}"))
        .to_string();
    let first = lines.next().unwrap().unwrap();
    let addr = first
        .strip_prefix("egress proxy on ")
        .and_then(|r| r.split(' ').next())
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_string();
    let mut url = None;
    for _ in 0..2 {
        let line = lines.next().unwrap().unwrap();
        if let Some(rest) = line.strip_prefix("task fetch: HTTPS_PROXY=http://task:") {
            url = Some(rest.split('@').next().unwrap().to_string());
        }
    }
    let token = url.expect("a proxy URL for task fetch");
    // SMTP through the proxy with fetch's credential: refused with the reason.
    let mut s = TcpStream::connect(&addr).unwrap();
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("task:{token}"));
    write!(
        s,
        "CONNECT smtp.example.com:25 HTTP/1.1\r\nProxy-Authorization: Basic {auth}\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    // The refusal is counted on the proxy's metrics endpoint.
    let mut m_conn = TcpStream::connect(&metrics_addr).unwrap();
    write!(
        m_conn,
        "GET /metrics HTTP/1.1\r\nHost: {metrics_addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut metrics = String::new();
    let _ = m_conn.read_to_string(&mut metrics);
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_file(m);
    assert!(resp.starts_with("HTTP/1.1 403"), "{resp}");
    assert!(
        resp.contains("X-MC-Egress-Reason: host_not_allowed"),
        "{resp}"
    );
    assert!(
        metrics.contains("mc_egress_block_total{mode=\"enforce\",reason=\"host_not_allowed\"} 1"),
        "{metrics}"
    );
}
