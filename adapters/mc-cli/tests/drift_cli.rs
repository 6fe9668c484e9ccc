//! End-to-end tests of `mc drift check`.

mod common;

use common::{TempDir, mc, run};

const DESIRED: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: prod\nspec:\n  replicas: 3\n";

/// What `kubectl get deploy -o yaml` prints: a List, with server fields.
fn live(replicas: u32) -> String {
    format!(
        "apiVersion: v1\nkind: List\nitems:\n  - apiVersion: apps/v1\n    kind: Deployment\n    metadata:\n      name: web\n      namespace: prod\n      uid: 6b1c\n      resourceVersion: \"991\"\n    spec:\n      replicas: {replicas}\n      revisionHistoryLimit: 10\n    status:\n      readyReplicas: {replicas}\n"
    )
}

#[test]
fn check_reports_drift_and_writes_proposals() {
    let tmp = TempDir::new("check");
    let desired = tmp.path().join("web.yaml");
    let live_file = tmp.path().join("live.yaml");
    std::fs::write(&desired, DESIRED).unwrap();
    std::fs::write(&live_file, live(3)).unwrap();
    let (code, out, err) = run(mc()
        .args(["drift", "check", "--desired"])
        .arg(&desired)
        .arg("--live")
        .arg(&live_file));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("in sync: 1 object(s) compared"), "{out}");

    std::fs::write(&live_file, live(5)).unwrap();
    let props = tmp.path().join("proposals");
    let (code, out, err) = run(mc()
        .args(["drift", "check", "--env", "prod", "--desired"])
        .arg(&desired)
        .arg("--live")
        .arg(&live_file)
        .arg("--proposals")
        .arg(&props));
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("warning Deployment/prod/web: 1 field(s) differ"),
        "{out}"
    );
    assert!(out.contains("/spec/replicas: desired 3 live 5"), "{out}");
    assert!(
        out.contains(
            "proposal 1 (drift:auto): drift(prod): Deployment/prod/web differs from desired"
        ),
        "{out}"
    );
    let dirs: Vec<_> = std::fs::read_dir(&props).unwrap().collect();
    assert_eq!(dirs.len(), 1);
    let dir = dirs[0].as_ref().unwrap().path();
    let pr = std::fs::read_to_string(dir.join("PULL_REQUEST.md")).unwrap();
    assert!(pr.contains("+  replicas: 5"), "{pr}");
    let patched: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    assert_eq!(patched.len(), 1);
    assert!(
        std::fs::read_to_string(&patched[0])
            .unwrap()
            .contains("replicas: 5")
    );

    // An ignored field is not drift.
    let (code, out, _) = run(mc()
        .args([
            "drift",
            "check",
            "--ignore",
            "Deployment:/spec/replicas",
            "--desired",
        ])
        .arg(&desired)
        .arg("--live")
        .arg(&live_file));
    assert_eq!(code, 0, "{out}");
}

#[test]
fn bad_input_is_an_error_naming_it() {
    let tmp = TempDir::new("bad");
    let desired = tmp.path().join("bad.yaml");
    std::fs::write(&desired, "kind: Deployment\nmetadata: {}\n").unwrap();
    let live_file = tmp.path().join("live.yaml");
    std::fs::write(&live_file, live(3)).unwrap();
    let (code, _, err) = run(mc()
        .args(["drift", "check", "--desired"])
        .arg(&desired)
        .arg("--live")
        .arg(&live_file));
    assert_eq!(code, 2);
    assert!(
        err.contains("bad.yaml, document 0: no metadata.name"),
        "{err}"
    );
    std::fs::write(&desired, DESIRED).unwrap();
    let (code, _, err) = run(mc()
        .args(["drift", "check", "--ignore", "replicas", "--desired"])
        .arg(&desired)
        .arg("--live")
        .arg(&live_file));
    assert_eq!(code, 2);
    assert!(err.contains("KIND:/json/pointer"), "{err}");
    let (code, _, err) = run(mc()
        .args(["drift", "watch", "--interval", "0m", "--desired"])
        .arg(&desired)
        .arg("--live")
        .arg(&live_file));
    assert_eq!(code, 2);
    assert!(err.contains("longer than zero"), "{err}");
}

/// `mc drift watch --metrics-listen` serves the detector's metrics, including the
/// last-scan time that `McDriftScansStale` watches.
#[test]
fn watch_serves_metrics() {
    use std::io::{BufRead as _, BufReader, Read as _, Write as _};
    let tmp = TempDir::new("watch-metrics");
    let desired = tmp.path().join("web.yaml");
    let live_file = tmp.path().join("live.yaml");
    std::fs::write(&desired, DESIRED).unwrap();
    std::fs::write(&live_file, live(5)).unwrap();
    let mut child = mc()
        .args([
            "drift",
            "watch",
            "--interval",
            "1h",
            "--metrics-listen",
            "127.0.0.1:0",
        ])
        .arg("--desired")
        .arg(&desired)
        .arg("--live")
        .arg(&live_file)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stdout = child.stdout.take().unwrap();
    let _child = Kill(child);
    // Drain stdout on a thread for the child's whole life: a closed pipe would make
    // its next print fail and the process exit.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut addr = None;
    for line in rx.iter() {
        if let Some(rest) = line.strip_prefix("metrics on http://") {
            addr = rest.strip_suffix("/metrics").map(str::to_string);
        }
        // The first scan's output: the drift found.
        if line.contains("field(s) differ") {
            break;
        }
    }
    let addr = addr.expect("the metrics address was printed");
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.contains("mc_drift_open_findings{severity=\"warning\"} 1"),
        "{text}"
    );
    let last_scan: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("mc_drift_last_scan_timestamp_seconds "))
        .expect("last scan exported")
        .trim()
        .parse()
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        last_scan > 0.0 && last_scan <= now,
        "{last_scan} vs now {now}"
    );
}
