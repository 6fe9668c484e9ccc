//! Pack builder end to end on the in-memory store: round trip, redaction proof,
//! progress, cancellation and every kind of bad input.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use mc_core::*;
use mc_evidence::pack::{ENVELOPE_PATH, MANIFEST_PATH};
use mc_evidence::unpack::{DiscardSink, PackSink, read_pack};
use mc_evidence::*;
use time::macros::datetime;

const LOG: &str = "2025-12-10T18:00:01Z INFO user=alice@example.com ip=10.1.2.3 card=4111 1111 1111 1111\n\
2025-12-10T18:00:02Z WARN Authorization: Bearer abcdefghijklmnop from 2001:db8::42 phone +1 415-555-0123\n";

struct Fixture {
    blobs: Arc<MemoryBlobStore>,
    clock: Arc<ManualClock>,
    key: EvidenceKey,
}

async fn fixture(n: usize) -> Fixture {
    let clock = Arc::new(ManualClock::new(datetime!(2025-12-10 18:00 UTC)));
    let blobs = Arc::new(MemoryBlobStore::new(clock.clone()));
    for i in 0..n {
        let body = LOG.repeat(200 + i * 50);
        let key = BlobKey::new(format!("src/logs/run-{i:02}.log")).unwrap();
        blobs.put(&key, body.into(), PutMode::Create).await.unwrap();
    }
    Fixture {
        blobs,
        clock,
        key: EvidenceKey::from_seed([11; 32]),
    }
}

fn builder(f: &Fixture, source: Arc<dyn BlobStore>) -> PackBuilder {
    let mut opts = PackOptions::new(
        TenantId::new("acme").unwrap(),
        ExecutionId::new("exec_1").unwrap(),
    );
    opts.concurrency = 3;
    opts.queue = 2;
    PackBuilder::new(
        source,
        Arc::new(Redactor::builtin()),
        f.key.clone(),
        f.clock.clone(),
        opts,
    )
}

struct Collect(Vec<(String, Vec<u8>)>);
impl PackSink for Collect {
    fn artifact(
        &mut self,
        path: &str,
        _: u64,
        data: &mut dyn std::io::Read,
    ) -> std::io::Result<()> {
        let mut v = Vec::new();
        data.read_to_end(&mut v)?;
        self.0.push((path.to_string(), v));
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pack_round_trip_redacts_everything_and_verifies() {
    let f = fixture(6).await;
    let artifacts = PackArtifact::list(f.blobs.as_ref(), "src/").await.unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let b = builder(&f, f.blobs.clone())
        .with_progress(Arc::new(move |p| s2.lock().unwrap().push(p.clone())));
    let (report, pack) = b.build(artifacts.clone(), Vec::new()).await.unwrap();
    let lines: u64 = artifacts.iter().map(|a| a.size).sum::<u64>() / LOG.len() as u64 * 2;
    for rule in ["email", "ipv4", "card", "bearer_token", "ipv6", "phone"] {
        assert_eq!(
            report.redactions.get(rule),
            lines / 2,
            "{rule}: {:?}",
            report.redactions
        );
    }
    assert_eq!(report.manifest.artifacts.len(), 6);
    assert_eq!(report.bytes_out, pack.len() as u64);
    let progress = seen.lock().unwrap().clone();
    let last = progress.last().unwrap();
    assert_eq!(last.artifacts_done, 6);
    assert_eq!(last.bytes_done, report.bytes_in);
    assert!(
        progress
            .windows(2)
            .all(|w| w[0].bytes_done <= w[1].bytes_done)
    );

    let scan = Arc::new(Redactor::builtin());
    let mut sink = Collect(Vec::new());
    let v = read_pack(&pack[..], &f.key.verifying_key(), Some(&scan), &mut sink).unwrap();
    assert!(v.leaks.is_empty(), "{:?}", v.leaks);
    assert_eq!(v.artifacts, 6);
    assert_eq!(sink.0.len(), 6);
    for ((path, body), a) in sink.0.iter().zip(&artifacts) {
        assert_eq!(path, &format!("artifacts/{}", a.name));
        assert_eq!(body.len() as u64, a.size, "redaction keeps sizes");
        let text = String::from_utf8_lossy(body);
        assert!(
            !text.contains("alice@example.com")
                && !text.contains("4111")
                && !text.contains("10.1.2.3")
        );
        assert!(text.contains("[email"));
        let entry = v
            .manifest()
            .artifacts
            .iter()
            .find(|e| &e.name == path)
            .unwrap();
        assert_eq!(entry.redacted.as_ref().unwrap().sha256, Digest::of(body));
        let orig = f.blobs.get(&a.key).await.unwrap();
        assert_eq!(entry.sha256, Digest::of(&orig));
    }
    // The signed statement names the redacted digests.
    let st = verify_envelope(&report.envelope, &f.key.verifying_key()).unwrap();
    assert_eq!(st.subject.len(), 6);
}

/// Long names (GNU long-name entries), sizes on and off the 512-byte tar blocks
/// and an empty artifact all read back exactly as `Redactor::redact` gives them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_names_and_every_padding_round_trip() {
    let f = fixture(0).await;
    let long = format!("src/{}/deep.log", "d".repeat(140));
    let bodies: Vec<(String, Vec<u8>)> = [0usize, 1, 511, 512, 513, 1023, 70_001]
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let name = if i == 3 {
                long.clone()
            } else {
                format!("src/b-{i}.log")
            };
            let body = LOG.bytes().cycle().take(n).collect();
            (name, body)
        })
        .collect();
    for (name, body) in &bodies {
        let key = BlobKey::new(name.clone()).unwrap();
        f.blobs
            .put(&key, Bytes::from(body.clone()), PutMode::Create)
            .await
            .unwrap();
    }
    let artifacts = PackArtifact::list(f.blobs.as_ref(), "src/").await.unwrap();
    assert_eq!(artifacts.len(), bodies.len());
    let (report, pack) = builder(&f, f.blobs.clone())
        .build(artifacts.clone(), Vec::new())
        .await
        .unwrap();
    let want: Vec<(String, Vec<u8>)> = artifacts
        .iter()
        .map(|a| {
            let (_, original) = bodies.iter().find(|(n, _)| n.ends_with(&a.name)).unwrap();
            let (redacted, _) = Redactor::builtin().redact(original);
            (format!("artifacts/{}", a.name), redacted)
        })
        .collect();
    let got = unpack_all(&pack);
    assert_eq!(got.len(), want.len() + 2, "artifacts + manifest + envelope");
    assert_eq!(&got[..want.len()], &want[..]);
    assert!(
        got.iter().any(|(p, _)| p.len() > 100),
        "a long name survived"
    );
    let v = read_pack(&pack[..], &f.key.verifying_key(), None, &mut DiscardSink).unwrap();
    assert_eq!(v.artifacts, bodies.len());
    assert_eq!(report.manifest.artifacts.len(), bodies.len());
}

/// Digests in the manifest when redaction changes nothing, only a late region, or
/// the first one: the redacted digest is hashed only from the first changed region
/// on (the original's hash stands in before it) and must still be the SHA-256 of
/// exactly the bytes in the pack.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redacted_digests_hold_with_and_without_matches() {
    let dir = tempfile::tempdir().unwrap();
    let clean = "2025-12-10T18:00:01Z INFO worker-3 step 7 finished state=ok\n";
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("clean.log", clean.repeat(20_000).into_bytes()),
        (
            "late.log",
            format!("{}{LOG}", clean.repeat(20_000)).into_bytes(),
        ),
        (
            "early.log",
            format!("{LOG}{}", clean.repeat(20_000)).into_bytes(),
        ),
    ];
    for (name, body) in &bodies {
        std::fs::write(dir.path().join(name), body).unwrap();
    }
    let store = Arc::new(mc_evidence::dir::DirBlobStore::new(
        dir.path(),
        mc_core::signed_url::UrlSigner::new(vec![3; 32], "file://test"),
    ));
    let f = fixture(0).await;
    let artifacts = PackArtifact::list(store.as_ref(), "").await.unwrap();
    let (report, pack) = builder(&f, store.clone())
        .build(artifacts, Vec::new())
        .await
        .unwrap();
    for (name, body) in &bodies {
        let entry = report
            .manifest
            .artifacts
            .iter()
            .find(|a| a.name.ends_with(name))
            .unwrap_or_else(|| panic!("{name} not in {:?}", report.manifest.artifacts));
        let (redacted, counts) = Redactor::builtin().redact(body);
        let red = entry.redacted.as_ref().unwrap();
        assert_eq!(entry.sha256, Digest::of(body), "{name}");
        assert_eq!(red.sha256, Digest::of(&redacted), "{name}");
        assert_eq!(red.redactions, counts, "{name}");
        assert_eq!(red.sha256 == entry.sha256, counts.total() == 0, "{name}");
    }
    let v = read_pack(&pack[..], &f.key.verifying_key(), None, &mut DiscardSink).unwrap();
    assert_eq!(v.artifacts, bodies.len());
}

#[tokio::test]
async fn publish_puts_the_pack_or_nothing() {
    let f = fixture(2).await;
    let dest = MemoryBlobStore::new(f.clock.clone());
    let dkey = BlobKey::new("tenants/acme/evidence/exec_1/pack.tar.zst").unwrap();
    let mut artifacts = PackArtifact::list(f.blobs.as_ref(), "src/").await.unwrap();
    let report = builder(&f, f.blobs.clone())
        .publish(artifacts.clone(), &dest, &dkey)
        .await
        .unwrap();
    let pack = dest.get(&dkey).await.unwrap();
    assert_eq!(report.bytes_out, pack.len() as u64);
    read_pack(&pack[..], &f.key.verifying_key(), None, &mut DiscardSink).unwrap();

    // A missing artifact fails the pack, names it, and publishes nothing.
    artifacts.push(PackArtifact {
        key: BlobKey::new("src/logs/gone.log").unwrap(),
        name: "logs/gone.log".into(),
        size: 10,
    });
    let other = BlobKey::new("tenants/acme/evidence/exec_1/pack2.tar.zst").unwrap();
    match builder(&f, f.blobs.clone())
        .publish(artifacts, &dest, &other)
        .await
    {
        Err(EvidenceError::ArtifactMissing { artifact }) => assert_eq!(artifact, "logs/gone.log"),
        r => panic!("{r:?}"),
    }
    assert!(matches!(
        dest.head(&other).await,
        Err(BlobError::NotFound { .. })
    ));
}

/// A store whose reads of one key fail half-way.
struct Flaky {
    inner: Arc<MemoryBlobStore>,
    bad: String,
}

#[async_trait]
impl BlobStore for Flaky {
    async fn put(&self, k: &BlobKey, b: Bytes, m: PutMode) -> Result<BlobMeta, BlobError> {
        self.inner.put(k, b, m).await
    }
    async fn put_stream(
        &self,
        k: &BlobKey,
        s: ByteStream,
        m: PutMode,
    ) -> Result<BlobMeta, BlobError> {
        self.inner.put_stream(k, s, m).await
    }
    async fn get(&self, k: &BlobKey) -> Result<Bytes, BlobError> {
        self.inner.get(k).await
    }
    async fn get_stream(&self, k: &BlobKey) -> Result<ByteStream, BlobError> {
        if k.as_str() != self.bad {
            return self.inner.get_stream(k).await;
        }
        let first = self.inner.get(k).await?.slice(..100);
        Ok(Box::pin(futures::stream::iter([
            Ok(first),
            Err(BlobError::Unavailable("connection reset".into())),
        ])))
    }
    async fn head(&self, k: &BlobKey) -> Result<BlobMeta, BlobError> {
        self.inner.head(k).await
    }
    async fn list(&self, p: &str) -> Result<Vec<BlobMeta>, BlobError> {
        self.inner.list(p).await
    }
    async fn delete(&self, k: &BlobKey) -> Result<(), BlobError> {
        self.inner.delete(k).await
    }
    async fn signed_get_url(
        &self,
        k: &BlobKey,
        ttl: std::time::Duration,
        now: time::OffsetDateTime,
    ) -> Result<SignedUrl, BlobError> {
        self.inner.signed_get_url(k, ttl, now).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_fetch_size_change_and_cancel_are_named() {
    let f = fixture(5).await;
    let artifacts = PackArtifact::list(f.blobs.as_ref(), "src/").await.unwrap();
    let flaky = Arc::new(Flaky {
        inner: f.blobs.clone(),
        bad: "src/logs/run-03.log".into(),
    });
    match builder(&f, flaky)
        .build(artifacts.clone(), Vec::new())
        .await
    {
        Err(EvidenceError::Fetch { artifact, source }) => {
            assert_eq!(artifact, "logs/run-03.log");
            assert!(matches!(source, BlobError::Unavailable(_)));
        }
        r => panic!("{:?}", r.map(|_| ())),
    }

    let mut wrong = artifacts.clone();
    wrong[1].size += 1;
    match builder(&f, f.blobs.clone()).build(wrong, Vec::new()).await {
        Err(EvidenceError::SizeMismatch { artifact, .. }) => {
            assert_eq!(artifact, artifacts[1].name)
        }
        r => panic!("{:?}", r.map(|_| ())),
    }

    let cancel = CancelToken::new();
    cancel.cancel();
    let r = builder(&f, f.blobs.clone())
        .with_cancel(cancel)
        .build(artifacts, Vec::new())
        .await;
    assert!(matches!(r, Err(EvidenceError::Cancelled)));
}

#[tokio::test]
async fn bad_packs_are_refused_with_the_reason() {
    let f = fixture(3).await;
    let artifacts = PackArtifact::list(f.blobs.as_ref(), "src/").await.unwrap();
    let (_, pack) = builder(&f, f.blobs.clone())
        .build(artifacts, Vec::new())
        .await
        .unwrap();
    let key = f.key.verifying_key();

    // Wrong key.
    let other = EvidenceKey::from_seed([12; 32]).verifying_key();
    assert!(matches!(
        read_pack(&pack[..], &other, None, &mut DiscardSink),
        Err(EvidenceError::BadSignature { .. })
    ));
    // Truncated at several points.
    for cut in [pack.len() / 3, pack.len() / 2, pack.len() - 40] {
        let r = read_pack(&pack[..cut], &key, None, &mut DiscardSink);
        assert!(
            matches!(
                r,
                Err(EvidenceError::TruncatedPack { .. }) | Err(EvidenceError::InvalidPack { .. })
            ),
            "cut at {cut}: {r:?}"
        );
    }
    // Rebuild the tar with a modified artifact, a missing one, an unknown payload type.
    let entries = unpack_all(&pack);
    let mut tampered = entries.clone();
    tampered[0].1[0] ^= 1;
    match read_pack(&repack(&tampered)[..], &key, None, &mut DiscardSink) {
        Err(EvidenceError::DigestMismatch { artifact, .. }) => assert_eq!(artifact, entries[0].0),
        r => panic!("{r:?}"),
    }
    let missing: Vec<_> = entries.iter().skip(1).cloned().collect();
    match read_pack(&repack(&missing)[..], &key, None, &mut DiscardSink) {
        Err(EvidenceError::ArtifactMissing { artifact }) => assert_eq!(artifact, entries[0].0),
        r => panic!("{r:?}"),
    }
    let mut retyped = entries.clone();
    let env_idx = retyped
        .iter()
        .position(|(p, _)| p == ENVELOPE_PATH)
        .unwrap();
    let mut env = Envelope::from_json(&retyped[env_idx].1).unwrap();
    env.payload_type = "application/json".into();
    retyped[env_idx].1 = env.to_json_pretty().into_bytes();
    assert!(matches!(
        read_pack(&repack(&retyped)[..], &key, None, &mut DiscardSink),
        Err(EvidenceError::UnknownPayloadType { .. })
    ));
    let no_env: Vec<_> = entries
        .iter()
        .filter(|(p, _)| p != ENVELOPE_PATH)
        .cloned()
        .collect();
    assert!(matches!(
        read_pack(&repack(&no_env)[..], &key, None, &mut DiscardSink),
        Err(EvidenceError::TruncatedPack { .. })
    ));
    let mut edited = entries.clone();
    let m_idx = edited.iter().position(|(p, _)| p == MANIFEST_PATH).unwrap();
    edited[m_idx].1 = String::from_utf8(edited[m_idx].1.clone())
        .unwrap()
        .replace("acme", "evil")
        .into_bytes();
    assert!(matches!(
        read_pack(&repack(&edited)[..], &key, None, &mut DiscardSink),
        Err(EvidenceError::InvalidPack { .. })
    ));
    // The post-pack scan reports what a (stricter) redactor still finds, per artifact.
    let stricter = Arc::new(
        Redactor::with_rules(&[CustomRule {
            name: "level".into(),
            pattern: "WARN".into(),
        }])
        .unwrap(),
    );
    let v = read_pack(&pack[..], &key, Some(&stricter), &mut DiscardSink).unwrap();
    assert_eq!(v.leaks.len(), 3);
    assert!(
        v.leaks
            .values()
            .all(|c| c.get("level") > 0 && c.get("email") == 0)
    );
}

fn unpack_all(pack: &[u8]) -> Vec<(String, Vec<u8>)> {
    let dec = zstd::stream::read::Decoder::new(pack).unwrap();
    let mut a = tar::Archive::new(dec);
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let p = e.path().unwrap().to_string_lossy().into_owned();
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut v).unwrap();
            (p, v)
        })
        .collect()
}

fn repack(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let enc = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
    let mut b = tar::Builder::new(enc);
    for (p, v) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(v.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, p, &v[..]).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap()
}
