//! An in-process S3 protocol server (s3s-fs) on 127.0.0.1 with SigV4 checking, and a
//! store wrapper that counts multipart uploads.

#![allow(dead_code)]

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use futures::stream::BoxStream;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use mc_objectstore::BlobStoreOptions;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use tokio::net::TcpListener;

pub const ACCESS_KEY: &str = "mc-test-access";
pub const SECRET_KEY: &str = "mc-test-secret-key-0123456789";
pub const BUCKET: &str = "mc-test";

/// A running s3s-fs server; it stops when the test's runtime ends.
pub struct S3Server {
    pub endpoint: String,
    /// Keeps the server's data directory alive.
    pub dir: tempfile::TempDir,
}

impl S3Server {
    /// Options that reach this server with the right credentials.
    pub fn options(&self) -> BlobStoreOptions {
        BlobStoreOptions {
            credentials_from_env: false,
            access_key_id: Some(ACCESS_KEY.into()),
            secret_access_key: Some(SECRET_KEY.into()),
            region: Some("us-east-1".into()),
            endpoint: Some(self.endpoint.clone()),
            allow_http: true,
            max_retries: 1,
            ..BlobStoreOptions::default()
        }
    }
}

/// Starts s3s-fs on 127.0.0.1 with a random port and one bucket, [`BUCKET`].
pub async fn start_s3() -> S3Server {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join(BUCKET)).expect("bucket dir");
    let fs = s3s_fs::FileSystem::new(dir.path()).expect("s3s-fs");
    let service = {
        let mut b = S3ServiceBuilder::new(fs);
        // SigV4 is checked against this key pair: wrong secrets, tampered and
        // expired pre-signed URLs get 403.
        b.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        b.build()
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let http = ConnBuilder::new(TokioExecutor::new());
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                continue;
            };
            let conn = http
                .serve_connection(TokioIo::new(socket), service.clone())
                .into_owned();
            tokio::spawn(async move {
                let _ = conn.await;
            });
        }
    });
    S3Server {
        endpoint: format!("http://{addr}"),
        dir,
    }
}

/// Delegates to a store and counts the multipart uploads started through it.
#[derive(Debug)]
pub struct CountingStore {
    pub inner: Arc<dyn ObjectStore>,
    pub multipart_uploads: AtomicUsize,
    pub single_puts: AtomicUsize,
}

impl CountingStore {
    pub fn new(inner: Arc<dyn ObjectStore>) -> Arc<Self> {
        Arc::new(CountingStore {
            inner,
            multipart_uploads: AtomicUsize::new(0),
            single_puts: AtomicUsize::new(0),
        })
    }
    pub fn multipart(&self) -> usize {
        self.multipart_uploads.load(Ordering::SeqCst)
    }
    pub fn singles(&self) -> usize {
        self.single_puts.load(Ordering::SeqCst)
    }
}

impl fmt::Display for CountingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Counting({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for CountingStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.single_puts.fetch_add(1, Ordering::SeqCst);
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.multipart_uploads.fetch_add(1, Ordering::SeqCst);
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}
