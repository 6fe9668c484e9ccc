//! `mc evidence` end to end: keygen, pack, verify, unpack, manifest, bad input.

use std::path::Path;
use std::process::{Command, Output};

fn mc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mc"))
        .args(args)
        .output()
        .expect("run mc")
}

/// A fresh directory removed on drop.
struct TempDir(std::path::PathBuf);
impl TempDir {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("mc-evidence-cli-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn keygen_pack_verify_unpack_round_trip() {
    let dir = TempDir::new("round");
    let d = dir.path();
    let src = d.join("src");
    std::fs::create_dir_all(src.join("svc")).unwrap();
    std::fs::write(
        src.join("svc/run.log"),
        "login alice@example.com from 10.0.0.7 card 4111 1111 1111 1111\nplain line\n",
    )
    .unwrap();
    std::fs::write(
        src.join("notes.txt"),
        "call +1 415-555-0123 or EMP-123456\n",
    )
    .unwrap();
    let key = d.join("ev.key");

    let out = mc(&["evidence", "keygen", "--out", s(&key)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        std::fs::read_to_string(&key)
            .unwrap()
            .contains("BEGIN PRIVATE KEY")
    );
    let pubk = d.join("ev.key.pub");
    assert!(
        std::fs::read_to_string(&pubk)
            .unwrap()
            .contains("BEGIN PUBLIC KEY")
    );
    // No silent overwrite.
    assert!(
        !mc(&["evidence", "keygen", "--out", s(&key)])
            .status
            .success()
    );

    let pack = d.join("out.tar.zst");
    let out = mc(&[
        "evidence",
        "pack",
        "--source",
        s(&src),
        "--out",
        s(&pack),
        "--key",
        s(&key),
        "--rule",
        r"employee=EMP-\d{6}",
        "--quiet",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("packed 2 artifacts"), "{text}");
    assert!(text.contains("\"employee\":1"), "{text}");

    let out = mc(&["evidence", "verify", s(&pack), "--key", s(&pubk)]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let un = d.join("un");
    let out = mc(&[
        "evidence",
        "unpack",
        s(&pack),
        "--key",
        s(&pubk),
        "--out",
        s(&un),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = std::fs::read_to_string(un.join("artifacts/svc/run.log")).unwrap();
    assert!(
        !log.contains("alice@example.com") && !log.contains("10.0.0.7"),
        "{log}"
    );
    assert!(log.contains("[email") && log.ends_with("plain line\n"));
    let env = un.join("envelope.dsse.json");
    let out = mc(&[
        "evidence",
        "verify",
        s(&env),
        "--key",
        s(&pubk),
        "--blobs",
        s(&un),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // Tampered artifact: verify fails naming it.
    std::fs::write(un.join("artifacts/notes.txt"), "changed\n").unwrap();
    let out = mc(&[
        "evidence",
        "verify",
        s(&env),
        "--key",
        s(&pubk),
        "--blobs",
        s(&un),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("artifacts/notes.txt"));

    // Wrong key.
    let other = d.join("other.key");
    assert!(
        mc(&["evidence", "keygen", "--out", s(&other)])
            .status
            .success()
    );
    let out = mc(&[
        "evidence",
        "verify",
        s(&pack),
        "--key",
        &format!("{}.pub", s(&other)),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("invalid"));

    // Truncated pack: invalid, and unpack leaves nothing behind.
    let bytes = std::fs::read(&pack).unwrap();
    let cut = d.join("cut.tar.zst");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    assert_eq!(
        mc(&["evidence", "verify", s(&cut), "--key", s(&pubk)])
            .status
            .code(),
        Some(1)
    );
    let un2 = d.join("un2");
    assert!(
        !mc(&[
            "evidence",
            "unpack",
            s(&cut),
            "--key",
            s(&pubk),
            "--out",
            s(&un2)
        ])
        .status
        .success()
    );
    assert!(!un2.exists());
    let leftovers: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn pack_of_a_missing_source_publishes_nothing() {
    let dir = TempDir::new("missing");
    let d = dir.path();
    let key = d.join("k");
    assert!(
        mc(&["evidence", "keygen", "--out", s(&key)])
            .status
            .success()
    );
    let pack = d.join("p.tar.zst");
    let out = mc(&[
        "evidence",
        "pack",
        "--source",
        s(&d.join("nope")),
        "--out",
        s(&pack),
        "--key",
        s(&key),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!pack.exists());
    let out = mc(&[
        "evidence",
        "pack",
        "--source",
        "s3://bucket/x",
        "--out",
        s(&pack),
        "--key",
        s(&key),
    ]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn manifest_on_the_demo_store_and_a_directory() {
    let out = mc(&["evidence", "manifest", "--execution", "exec_demo"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(m["executionId"], "exec_demo");
    assert_eq!(m["artifacts"].as_array().unwrap().len(), 3);
    assert!(m["artifacts"][0]["uri"].as_str().unwrap().contains("sig="));

    let out = mc(&["evidence", "manifest", "--execution", "exec_nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));

    let dir = TempDir::new("manifest");
    let blobs = dir.path().join("blobs");
    let p = blobs.join("tenants/acme/logs/exec_1");
    std::fs::create_dir_all(&p).unwrap();
    std::fs::write(p.join("run.log"), "hello\n").unwrap();
    let key = dir.path().join("k");
    assert!(
        mc(&["evidence", "keygen", "--out", s(&key)])
            .status
            .success()
    );
    let out = mc(&[
        "evidence",
        "manifest",
        "--tenant",
        "acme",
        "--execution",
        "exec_1",
        "--source",
        s(&blobs),
        "--key",
        s(&key),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["manifest"]["artifacts"][0]["size"], 6);
    let env = dir.path().join("env.json");
    std::fs::write(&env, serde_json::to_vec(&v["envelope"]).unwrap()).unwrap();
    let out = mc(&[
        "evidence",
        "verify",
        s(&env),
        "--key",
        &format!("{}.pub", s(&key)),
        "--blobs",
        s(&blobs),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Unknown payload type.
    let mut e: serde_json::Value = v["envelope"].clone();
    e["payloadType"] = "text/plain".into();
    std::fs::write(&env, serde_json::to_vec(&e).unwrap()).unwrap();
    let out = mc(&[
        "evidence",
        "verify",
        s(&env),
        "--key",
        &format!("{}.pub", s(&key)),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("payloadType"));
}
