//! Throughput and latency of ObjectBlobStore on memory, a local directory and an
//! in-process S3 server (s3s-fs, SigV4 on). Run with
//! `cargo bench -p mc-objectstore --bench blob_throughput`; prints figures, asserts
//! nothing about speed.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use mc_core::{BlobError, BlobKey, BlobStore, ByteStream, PutMode};
use mc_objectstore::{BlobStoreOptions, ObjectBlobStore};
use time::OffsetDateTime;

const BIG: usize = 64 * 1024 * 1024;
const SMALL: usize = 4096;
const SMALL_COUNT: usize = 300;

fn stream_of(data: &Bytes, chunk: usize) -> ByteStream {
    let chunks: Vec<Result<Bytes, BlobError>> = (0..data.len())
        .step_by(chunk)
        .map(|i| Ok(data.slice(i..(i + chunk).min(data.len()))))
        .collect();
    Box::pin(futures::stream::iter(chunks))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

fn mib_s(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / d.as_secs_f64()
}

async fn run(name: &str, store: &ObjectBlobStore) {
    let big = Bytes::from((0..BIG).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
    let key = BlobKey::new("tenants/bench/evidence/exec_1/pack.bin").expect("key");

    let t = Instant::now();
    store
        .put_stream(&key, stream_of(&big, 1024 * 1024), PutMode::Overwrite)
        .await
        .expect("put_stream");
    let put = t.elapsed();

    let t = Instant::now();
    let mut s = store.get_stream(&key).await.expect("get_stream");
    let mut n = 0usize;
    while let Some(c) = s.next().await {
        n += c.expect("chunk").len();
    }
    let get = t.elapsed();
    assert_eq!(n, BIG);

    let small = Bytes::from(vec![7u8; SMALL]);
    let mut lat = Vec::with_capacity(SMALL_COUNT);
    for i in 0..SMALL_COUNT {
        let k = BlobKey::new(format!("tenants/bench/logs/exec_{i}/run.log")).expect("key");
        let t = Instant::now();
        store
            .put(&k, small.clone(), PutMode::Create)
            .await
            .expect("put small");
        lat.push(t.elapsed());
    }
    lat.sort();

    let t = Instant::now();
    let listed = store.list("tenants/bench/logs/").await.expect("list");
    let list = t.elapsed();
    assert_eq!(listed.len(), SMALL_COUNT);

    let t = Instant::now();
    let now = OffsetDateTime::now_utc();
    for _ in 0..1000 {
        store
            .signed_get_url(&key, Duration::from_secs(300), now)
            .await
            .expect("sign");
    }
    let sign = t.elapsed() / 1000;

    let keys: Vec<BlobKey> = listed.into_iter().map(|m| m.key).collect();
    let t = Instant::now();
    let results = store.delete_many(&keys).await;
    let del = t.elapsed();
    assert!(results.iter().all(Result::is_ok));

    println!(
        "{name:<8} put_stream 64 MiB {:>7.1} MiB/s | get_stream {:>7.1} MiB/s | 4 KiB create p50 {:>7.0} µs p95 {:>7.0} µs | list {SMALL_COUNT} {:>6.1} ms | delete_many {SMALL_COUNT} {:>6.1} ms | sign {:>5.1} µs",
        mib_s(BIG, put),
        mib_s(BIG, get),
        percentile(&lat, 0.50).as_secs_f64() * 1e6,
        percentile(&lat, 0.95).as_secs_f64() * 1e6,
        list.as_secs_f64() * 1e3,
        del.as_secs_f64() * 1e3,
        sign.as_secs_f64() * 1e6,
    );
}

#[tokio::main]
async fn main() {
    let memory =
        ObjectBlobStore::from_url("memory://", &BlobStoreOptions::default()).expect("memory");
    run("memory", &memory).await;

    let dir = tempfile::tempdir().expect("tempdir");
    let url = url::Url::from_directory_path(dir.path()).expect("url");
    let local =
        ObjectBlobStore::from_url(url.as_str(), &BlobStoreOptions::default()).expect("local");
    run("local", &local).await;

    let server = common::start_s3().await;
    let s3 =
        ObjectBlobStore::from_url(&format!("s3://{}/bench", common::BUCKET), &server.options())
            .expect("s3");
    run("s3s-fs", &s3).await;
}
