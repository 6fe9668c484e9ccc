//! ObjectBlobStore against a real S3 protocol server (s3s-fs, in-process, SigV4 on).

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{ACCESS_KEY, BUCKET, CountingStore, SECRET_KEY, start_s3};
use futures::StreamExt;
use mc_core::{BlobError, BlobKey, BlobStore, PutMode, testkit};
use mc_objectstore::{BlobStoreOptions, ObjectBlobStore};
use object_store::ObjectStore;
use object_store::aws::{AmazonS3Builder, S3CopyIfNotExists};
use time::OffsetDateTime;

fn key(s: &str) -> BlobKey {
    BlobKey::new(format!("tenants/acme/evidence/exec_1/{s}")).expect("key")
}

/// A deterministic payload of `len` bytes whose pattern (period 251, prime) never
/// lines up with part or chunk boundaries, so a misplaced part shows up.
fn payload(len: usize) -> Vec<u8> {
    let cycle: Vec<u8> = (0..251u32).map(|i| (i * 7 % 256) as u8).collect();
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        let take = (len - out.len()).min(cycle.len());
        out.extend_from_slice(&cycle[..take]);
    }
    out
}

fn chunked(data: &[u8], chunk: usize) -> mc_core::ByteStream {
    let chunks: Vec<Result<Bytes, BlobError>> = data
        .chunks(chunk)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    Box::pin(futures::stream::iter(chunks))
}

async fn collect(store: &ObjectBlobStore, k: &BlobKey) -> Vec<u8> {
    let mut out = Vec::new();
    let mut s = store.get_stream(k).await.expect("get_stream");
    while let Some(c) = s.next().await {
        out.extend_from_slice(&c.expect("chunk"));
    }
    out
}

#[tokio::test]
async fn conformance_on_s3s() {
    let server = start_s3().await;
    let store =
        ObjectBlobStore::from_url(&format!("s3://{BUCKET}/conf"), &server.options()).expect("open");
    assert!(store.is_natively_signed());
    testkit::blob_store_conformance(&store).await;
}

#[tokio::test]
async fn presigned_urls_are_checked_by_the_server() {
    let server = start_s3().await;
    let store = ObjectBlobStore::from_url(&format!("s3://{BUCKET}/signed"), &server.options())
        .expect("open");
    let k = key("pack.tar");
    store
        .put(&k, Bytes::from_static(b"evidence bytes"), PutMode::Create)
        .await
        .expect("put");
    let now = OffsetDateTime::now_utc();
    let signed = store
        .signed_get_url(&k, Duration::from_secs(300), now)
        .await
        .expect("sign");
    assert!(signed.url.contains("X-Amz-Signature="), "{}", signed.url);
    assert!(
        signed.url.contains("/signed/tenants/acme/"),
        "prefix in URL"
    );
    let http = reqwest::Client::new();

    let ok = http.get(&signed.url).send().await.expect("GET");
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.bytes().await.expect("body").as_ref(), b"evidence bytes");

    // Another key with the same signature.
    store
        .put(
            &key("other.tar"),
            Bytes::from_static(b"secret"),
            PutMode::Create,
        )
        .await
        .expect("put other");
    let other_key = signed.url.replace("pack.tar", "other.tar");
    assert_eq!(
        http.get(&other_key).send().await.expect("GET").status(),
        403
    );

    // A changed signature.
    let (head, sig) = signed
        .url
        .split_once("X-Amz-Signature=")
        .expect("signature param");
    let flipped: String = sig
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i == 0 {
                if c == '0' { '1' } else { '0' }
            } else {
                c
            }
        })
        .collect();
    let tampered = format!("{head}X-Amz-Signature={flipped}");
    assert_ne!(tampered, signed.url);
    assert_eq!(http.get(&tampered).send().await.expect("GET").status(), 403);

    // A longer lifetime than signed.
    let stretched = signed.url.replace("X-Amz-Expires=300", "X-Amz-Expires=600");
    assert_ne!(stretched, signed.url);
    assert_eq!(
        http.get(&stretched).send().await.expect("GET").status(),
        403
    );

    // More than 10 minutes is refused before anything is signed.
    assert!(matches!(
        store
            .signed_get_url(&k, Duration::from_secs(601), now)
            .await,
        Err(BlobError::TtlTooLong {
            requested_secs: 601,
            max_secs: 600
        })
    ));
}

#[tokio::test]
async fn expired_presigned_url_is_refused_by_the_server() {
    let server = start_s3().await;
    let store =
        ObjectBlobStore::from_url(&format!("s3://{BUCKET}"), &server.options()).expect("open");
    let k = key("short.txt");
    store
        .put(&k, Bytes::from_static(b"short-lived"), PutMode::Create)
        .await
        .expect("put");
    let signed = store
        .signed_get_url(&k, Duration::from_secs(1), OffsetDateTime::now_utc())
        .await
        .expect("sign");
    // SigV4 expiry has one-second resolution: wait past it (not a timing assertion,
    // only the clock moving on).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let resp = reqwest::get(&signed.url).await.expect("GET");
    assert_eq!(resp.status(), 403);
    let body = resp.text().await.expect("body");
    assert!(body.contains("AccessDenied"), "{body}");
}

#[tokio::test]
async fn wrong_secret_is_refused() {
    let server = start_s3().await;
    let mut options = server.options();
    options.secret_access_key = Some("not-the-secret".into());
    let store = ObjectBlobStore::from_url(&format!("s3://{BUCKET}"), &options).expect("open");
    let err = store
        .put(&key("x"), Bytes::from_static(b"x"), PutMode::Overwrite)
        .await
        .expect_err("bad signature");
    assert!(matches!(err, BlobError::Backend(_)), "{err:?}");
}

fn raw_s3(endpoint: &str) -> Arc<object_store::aws::AmazonS3> {
    Arc::new(
        AmazonS3Builder::new()
            .with_endpoint(endpoint)
            .with_allow_http(true)
            .with_bucket_name(BUCKET)
            .with_region("us-east-1")
            .with_access_key_id(ACCESS_KEY)
            .with_secret_access_key(SECRET_KEY)
            .with_copy_if_not_exists(S3CopyIfNotExists::Multipart)
            .build()
            .expect("s3"),
    )
}

#[tokio::test]
async fn large_streamed_put_uses_multipart() {
    let server = start_s3().await;
    let s3 = raw_s3(&server.endpoint);
    let counting = CountingStore::new(s3.clone());
    let store = ObjectBlobStore::with_native_signer(counting.clone(), s3.clone())
        .with_prefix("mp")
        .expect("prefix");

    // 20 MB in 1 MiB chunks, overwrite mode: one multipart upload of 3 parts.
    let data = payload(20_000_000);
    let k = key("big.bin");
    let meta = store
        .put_stream(&k, chunked(&data, 1024 * 1024), PutMode::Overwrite)
        .await
        .expect("put_stream");
    assert_eq!(meta.size, 20_000_000);
    assert_eq!(counting.multipart(), 1, "one multipart upload");
    assert_eq!(counting.singles(), 0, "no single-request put");
    assert!(collect(&store, &k).await == data, "bytes round-trip");

    // Write-once of a stream above one part (8 MiB): staged, then copied if absent;
    // no staging object left. (9 MB keeps the debug-build server quick.)
    let once = payload(9_000_000);
    let k2 = key("big-once.bin");
    store
        .put_stream(&k2, chunked(&once, 3 * 1024 * 1024), PutMode::Create)
        .await
        .expect("create big");
    assert_eq!(counting.multipart(), 2);
    assert!(collect(&store, &k2).await == once);
    let again = store
        .put_stream(&k2, chunked(&once, 3 * 1024 * 1024), PutMode::Create)
        .await;
    assert!(
        matches!(again, Err(BlobError::AlreadyExists { .. })),
        "{again:?}"
    );
    let raw: Vec<_> = s3
        .list(None)
        .map(|m| m.expect("meta").location.to_string())
        .collect()
        .await;
    assert!(
        raw.iter().all(|p| !p.contains("_mc_staging")),
        "staging objects removed: {raw:?}"
    );
    let listed = store.list("tenants/acme/").await.expect("list");
    let names: Vec<_> = listed.iter().map(|m| m.key.name()).collect();
    assert_eq!(names, ["big-once.bin", "big.bin"]);
    assert_eq!(listed[0].size, 9_000_000);
    assert_eq!(listed[1].size, 20_000_000);

    // A stream failing after a whole part was uploaded aborts the upload: nothing
    // under the key.
    let k3 = key("broken-big.bin");
    let mut chunks: Vec<Result<Bytes, BlobError>> = data[..10_000_000]
        .chunks(1024 * 1024)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    chunks.push(Err(BlobError::Backend("source died".into())));
    let broken = store
        .put_stream(
            &k3,
            Box::pin(futures::stream::iter(chunks)),
            PutMode::Overwrite,
        )
        .await;
    assert!(matches!(broken, Err(BlobError::Backend(ref m)) if m == "source died"));
    assert_eq!(counting.multipart(), 3, "the broken stream went multipart");
    assert!(matches!(
        store.head(&k3).await,
        Err(BlobError::NotFound { .. })
    ));
}

#[tokio::test]
async fn prefixes_scope_keys() {
    let server = start_s3().await;
    let options = server.options();
    let a =
        ObjectBlobStore::from_url(&format!("s3://{BUCKET}/replica-a/blobs"), &options).expect("a");
    let b = ObjectBlobStore::from_url(&format!("s3://{BUCKET}/replica-b"), &options).expect("b");
    assert_eq!(a.prefix(), "replica-a/blobs");
    let k = key("same.log");
    a.put(&k, Bytes::from_static(b"from a"), PutMode::Create)
        .await
        .expect("a put");
    b.put(&k, Bytes::from_static(b"from b"), PutMode::Create)
        .await
        .expect("b put: other prefix, no conflict");
    assert_eq!(a.get(&k).await.expect("a get").as_ref(), b"from a");
    assert_eq!(b.get(&k).await.expect("b get").as_ref(), b"from b");
    let listed = a.list("").await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].key, k, "prefix stripped on list");
    assert_eq!(listed[0].size, 6);
    let age = OffsetDateTime::now_utc() - listed[0].last_modified;
    assert!(
        age >= -time::Duration::minutes(1) && age < time::Duration::minutes(10),
        "last_modified {} is the write time",
        listed[0].last_modified
    );
    // HEAD's Last-Modified is an HTTP date (whole seconds); the listing may be finer.
    let head = a.head(&k).await.expect("head");
    assert_eq!((&head.key, head.size), (&listed[0].key, listed[0].size));
    assert!((head.last_modified - listed[0].last_modified).abs() < time::Duration::seconds(1));

    let raw = raw_s3(&server.endpoint);
    let mut locations: Vec<String> = raw
        .list(None)
        .map(|m| m.expect("meta").location.to_string())
        .collect()
        .await;
    locations.sort();
    assert_eq!(
        locations,
        [
            "replica-a/blobs/tenants/acme/evidence/exec_1/same.log",
            "replica-b/tenants/acme/evidence/exec_1/same.log"
        ]
    );
    // Batched delete in one store leaves the other alone.
    let results = a.delete_many(&[k.clone(), key("never-written")]).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert!(a.list("").await.expect("list").is_empty());
    assert_eq!(b.list("").await.expect("list").len(), 1);
}

#[tokio::test]
async fn unreachable_server_is_unavailable() {
    // A port that was just free: nothing listens there.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let options = BlobStoreOptions {
        credentials_from_env: false,
        access_key_id: Some(ACCESS_KEY.into()),
        secret_access_key: Some(SECRET_KEY.into()),
        region: Some("us-east-1".into()),
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        allow_http: true,
        max_retries: 0,
        retry_timeout: Duration::from_secs(1),
        ..BlobStoreOptions::default()
    };
    let store = ObjectBlobStore::from_url("s3://down", &options).expect("open is lazy");
    let err = store.get(&key("x")).await.expect_err("nothing listens");
    assert!(matches!(err, BlobError::Unavailable(_)), "{err:?}");
}
