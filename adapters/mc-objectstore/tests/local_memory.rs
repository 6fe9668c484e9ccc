//! ObjectBlobStore on a local directory and in memory: conformance, HMAC-signed URLs,
//! URL parsing errors.

use std::time::Duration;

use bytes::Bytes;
use mc_core::signed_url::SignedUrlError;
use mc_core::{BlobError, BlobKey, BlobStore, PutMode, testkit};
use mc_objectstore::{BlobStoreOptions, ObjectBlobStore, OpenError};
use time::OffsetDateTime;

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

fn key(s: &str) -> BlobKey {
    BlobKey::new(format!("tenants/acme/logs/exec_1/{s}")).expect("key")
}

fn signing() -> BlobStoreOptions {
    BlobStoreOptions {
        signing_secret: Some(SECRET.to_vec()),
        signing_base_url: Some("http://127.0.0.1:8080/blobs".into()),
        ..BlobStoreOptions::default()
    }
}

fn dir_url(dir: &std::path::Path) -> String {
    url::Url::from_directory_path(dir).expect("url").to_string()
}

#[tokio::test]
async fn conformance_in_memory() {
    let store = ObjectBlobStore::from_url("memory://", &BlobStoreOptions::default()).expect("open");
    assert!(!store.is_natively_signed());
    testkit::blob_store_conformance(&store).await;
}

#[tokio::test]
async fn conformance_in_memory_with_prefix() {
    let store = ObjectBlobStore::from_url("memory://scoped/area", &BlobStoreOptions::default())
        .expect("open");
    assert_eq!(store.prefix(), "scoped/area");
    testkit::blob_store_conformance(&store).await;
}

#[tokio::test]
async fn conformance_on_local_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The directory does not exist yet: from_url creates it.
    let root = dir.path().join("blobs/nested");
    let store =
        ObjectBlobStore::from_url(&dir_url(&root), &BlobStoreOptions::default()).expect("open");
    assert!(root.is_dir());
    testkit::blob_store_conformance(&store).await;
    // Objects live as plain files under the root, nowhere else.
    let k = key("on-disk.log");
    store
        .put(&k, Bytes::from_static(b"disk"), PutMode::Create)
        .await
        .expect("put");
    assert_eq!(
        std::fs::read(root.join("tenants/acme/logs/exec_1/on-disk.log")).expect("file"),
        b"disk"
    );
    // Last-modified is the file's time (an object's age for retention).
    let head = store.head(&k).await.expect("head");
    let listed = store.list("tenants/acme/").await.expect("list");
    assert_eq!(listed, vec![head.clone()], "list and head agree");
    let age = OffsetDateTime::now_utc() - head.last_modified;
    assert!(
        age >= -time::Duration::minutes(1) && age < time::Duration::minutes(10),
        "last_modified {} is the write time",
        head.last_modified
    );
}

#[tokio::test]
async fn local_large_stream_and_write_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ObjectBlobStore::from_url(&dir_url(dir.path()), &BlobStoreOptions::default())
        .expect("open");
    let data: Vec<u8> = (0..12_000_000u32).map(|i| (i % 253) as u8).collect();
    let stream = |d: &[u8]| -> mc_core::ByteStream {
        let chunks: Vec<Result<Bytes, BlobError>> = d
            .chunks(1 << 20)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        Box::pin(futures::stream::iter(chunks))
    };
    let k = key("large.bin");
    let meta = store
        .put_stream(&k, stream(&data), PutMode::Create)
        .await
        .expect("create");
    assert_eq!(meta.size, data.len() as u64);
    assert!(store.get(&k).await.expect("get") == data);
    assert!(matches!(
        store.put_stream(&k, stream(&data), PutMode::Create).await,
        Err(BlobError::AlreadyExists { .. })
    ));
    let listed = store.list("").await.expect("list");
    assert_eq!(listed.len(), 1, "no staging leftovers: {listed:?}");
    assert!(
        !dir.path()
            .join("_mc_staging")
            .read_dir()
            .is_ok_and(|mut d| d.next().is_some())
    );
}

#[tokio::test]
async fn hmac_urls_for_local_stores() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ObjectBlobStore::from_url(&dir_url(dir.path()), &signing()).expect("open");
    let k = key("run.log");
    store
        .put(&k, Bytes::from_static(b"log"), PutMode::Create)
        .await
        .expect("put");
    let now = OffsetDateTime::now_utc();
    let signed = store
        .signed_get_url(&k, Duration::from_secs(600), now)
        .await
        .expect("sign");
    assert!(
        signed
            .url
            .starts_with("http://127.0.0.1:8080/blobs/tenants/acme/logs/exec_1/run.log?expires="),
        "{}",
        signed.url
    );
    assert_eq!(signed.expires_at, now + Duration::from_secs(600));
    assert_eq!(store.verify_signed_url(&signed.url, now).expect("valid"), k);

    // The HTTP layer's view: path after the base, and the raw query.
    let (path, query) = signed
        .url
        .strip_prefix("http://127.0.0.1:8080/blobs/")
        .and_then(|r| r.split_once('?'))
        .expect("shape");
    assert_eq!(
        store.verify_signed_request(path, query, now).expect("ok"),
        k
    );

    // Another replica with the same secret accepts it; another secret does not.
    let replica = ObjectBlobStore::from_url(&dir_url(dir.path()), &signing()).expect("open");
    assert_eq!(replica.verify_signed_url(&signed.url, now).expect("ok"), k);
    let mut other = signing();
    other.signing_secret = Some(vec![9; 32]);
    let stranger = ObjectBlobStore::from_url(&dir_url(dir.path()), &other).expect("open");
    assert_eq!(
        stranger.verify_signed_url(&signed.url, now),
        Err(SignedUrlError::BadSignature)
    );

    // Tampered key or signature, and expiry.
    assert_eq!(
        store.verify_signed_url(&signed.url.replace("run.log", "db.dump"), now),
        Err(SignedUrlError::BadSignature)
    );
    let sig_at = signed.url.find("sig=").expect("sig") + 4;
    let mut tampered = signed.url.clone();
    let first = if &tampered[sig_at..=sig_at] == "0" {
        "1"
    } else {
        "0"
    };
    tampered.replace_range(sig_at..=sig_at, first);
    assert_eq!(
        store.verify_signed_url(&tampered, now),
        Err(SignedUrlError::BadSignature)
    );
    assert_eq!(
        store.verify_signed_url(&signed.url, now + Duration::from_secs(600)),
        Err(SignedUrlError::Expired)
    );
    assert!(matches!(
        store
            .signed_get_url(&k, Duration::from_secs(601), now)
            .await,
        Err(BlobError::TtlTooLong { .. })
    ));
}

#[tokio::test]
async fn memory_urls_default_to_the_store_url() {
    let store =
        ObjectBlobStore::from_url("memory://demo", &BlobStoreOptions::default()).expect("open");
    let k = key("a.log");
    let now = OffsetDateTime::now_utc();
    let signed = store
        .signed_get_url(&k, Duration::from_secs(60), now)
        .await
        .expect("sign");
    assert!(
        signed.url.starts_with("memory://demo/tenants/acme/"),
        "{}",
        signed.url
    );
    assert_eq!(store.verify_signed_url(&signed.url, now).expect("ok"), k);

    let bare = ObjectBlobStore::from_url("memory://", &BlobStoreOptions::default()).expect("open");
    let signed = bare
        .signed_get_url(&k, Duration::from_secs(60), now)
        .await
        .expect("sign");
    assert!(
        signed.url.starts_with("memory://mc/tenants/acme/"),
        "{}",
        signed.url
    );
    assert_eq!(bare.verify_signed_url(&signed.url, now).expect("ok"), k);
    // Each process-random secret is its own: another store cannot verify it.
    assert_eq!(
        store.verify_signed_url(&signed.url, now),
        Err(SignedUrlError::Malformed("not under this signer's base"))
    );
}

#[test]
fn bad_urls_and_options_are_typed_errors() {
    let d = BlobStoreOptions::default();
    assert!(matches!(
        ObjectBlobStore::from_url("ftp://host/x", &d),
        Err(OpenError::UnsupportedScheme { ref scheme }) if scheme == "ftp"
    ));
    assert!(matches!(
        ObjectBlobStore::from_url("s3://", &d),
        Err(OpenError::MissingBucket { .. })
    ));
    assert!(matches!(
        ObjectBlobStore::from_url("s3:///only-a-prefix", &d),
        Err(OpenError::MissingBucket { .. })
    ));
    assert!(matches!(
        ObjectBlobStore::from_url("not a url", &d),
        Err(OpenError::InvalidUrl { .. })
    ));
    assert!(matches!(
        ObjectBlobStore::from_url("s3://bucket/a?region=x", &d),
        Err(OpenError::InvalidUrl { .. })
    ));
    // Dot segments are resolved by URL parsing, so a prefix never climbs out.
    assert_eq!(
        ObjectBlobStore::from_url("memory://a/%2E%2E/b", &d)
            .expect("resolved")
            .prefix(),
        "a/b"
    );
    assert_eq!(
        ObjectBlobStore::from_url("memory://area/my%20logs/", &d)
            .expect("decoded")
            .prefix(),
        "area/my logs"
    );
    assert!(matches!(
        ObjectBlobStore::from_url("memory://a/%00/b", &d),
        Err(OpenError::InvalidPrefix { .. })
    ));
    assert!(matches!(
        ObjectBlobStore::from_url("s3://bucket/a//b", &d),
        Err(OpenError::InvalidPrefix { .. })
    ));
    assert!(matches!(
        ObjectBlobStore::from_url("file://remote-host/srv/blobs", &d),
        Err(OpenError::InvalidUrl { .. })
    ));

    let half = BlobStoreOptions {
        access_key_id: Some("id".into()),
        ..BlobStoreOptions::default()
    };
    assert!(matches!(
        ObjectBlobStore::from_url("s3://bucket", &half),
        Err(OpenError::InvalidOption {
            field: "secret_access_key",
            ..
        })
    ));
    let http_without_allow = BlobStoreOptions {
        endpoint: Some("http://127.0.0.1:9000".into()),
        ..BlobStoreOptions::default()
    };
    assert!(matches!(
        ObjectBlobStore::from_url("s3://bucket", &http_without_allow),
        Err(OpenError::InvalidOption {
            field: "endpoint",
            ..
        })
    ));
    let tiny_parts = BlobStoreOptions {
        part_size: 1024,
        ..BlobStoreOptions::default()
    };
    assert!(matches!(
        ObjectBlobStore::from_url("memory://", &tiny_parts),
        Err(OpenError::InvalidOption {
            field: "part_size",
            ..
        })
    ));
    let no_concurrency = BlobStoreOptions {
        upload_concurrency: 0,
        ..BlobStoreOptions::default()
    };
    assert!(matches!(
        ObjectBlobStore::from_url("memory://", &no_concurrency),
        Err(OpenError::InvalidOption {
            field: "upload_concurrency",
            ..
        })
    ));
    let short_secret = BlobStoreOptions {
        signing_secret: Some(b"short".to_vec()),
        ..BlobStoreOptions::default()
    };
    assert!(matches!(
        ObjectBlobStore::from_url("memory://", &short_secret),
        Err(OpenError::InvalidOption {
            field: "signing_secret",
            ..
        })
    ));
    // Errors name the field in their message.
    let msg = ObjectBlobStore::from_url("memory://", &short_secret)
        .expect_err("short")
        .to_string();
    assert!(msg.contains("signing_secret"), "{msg}");
}

#[tokio::test]
async fn s3_store_does_not_verify_hmac_urls() {
    let options = BlobStoreOptions {
        credentials_from_env: false,
        access_key_id: Some("id".into()),
        secret_access_key: Some("secret".into()),
        region: Some("us-east-1".into()),
        ..BlobStoreOptions::default()
    };
    let s3 = ObjectBlobStore::from_url("s3://bucket/p", &options).expect("open");
    assert!(matches!(
        s3.verify_signed_url("https://x/y?expires=1&sig=00", OffsetDateTime::now_utc()),
        Err(SignedUrlError::Malformed(_))
    ));
}
