//! A `BlobStore` over a local directory (feature `dir-store`), for the `mc` CLI and
//! the benchmark: keys are relative paths below the root. This is an adapter, kept
//! behind a feature so the domain crate stays I/O-free by default; hosts should use
//! `mc-objectstore` (`file://`, `s3://`) instead.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use mc_core::signed_url::UrlSigner;
use mc_core::{BlobError, BlobKey, BlobMeta, BlobStore, ByteStream, PutMode, SignedUrl};
use time::OffsetDateTime;

/// Read size of [`DirBlobStore::get_stream`].
pub const READ_CHUNK: usize = 256 * 1024;

/// Blobs as files under a root directory.
#[derive(Debug, Clone)]
pub struct DirBlobStore {
    root: PathBuf,
    signer: UrlSigner,
}

fn io_err(key: &str, e: std::io::Error) -> BlobError {
    if e.kind() == std::io::ErrorKind::NotFound {
        BlobError::NotFound { key: key.into() }
    } else {
        BlobError::Backend(format!("{key}: {e}"))
    }
}

impl DirBlobStore {
    /// A store rooted at `root`, signing URLs with `signer`.
    pub fn new(root: impl Into<PathBuf>, signer: UrlSigner) -> Self {
        DirBlobStore {
            root: root.into(),
            signer,
        }
    }

    fn path(&self, key: &BlobKey) -> PathBuf {
        // BlobKey forbids `..`, `.`, empty segments and a leading `/`.
        self.root.join(key.as_str())
    }

    fn meta(key: BlobKey, md: &std::fs::Metadata) -> BlobMeta {
        let modified = md
            .modified()
            .ok()
            .map(OffsetDateTime::from)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        BlobMeta {
            key,
            size: md.len(),
            last_modified: modified,
        }
    }
}

fn walk(root: &Path, dir: &Path, prefix: &str, out: &mut Vec<BlobMeta>) -> std::io::Result<()> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in rd {
        let entry = entry?;
        let ft = entry.file_type()?;
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue; // temporary files of an unfinished put
        }
        if ft.is_dir() {
            walk(root, &path, prefix, out)?;
        } else if ft.is_file() {
            let Ok(rel) = path.strip_prefix(root) else {
                continue;
            };
            let rel: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            let key = rel.join("/");
            if !key.starts_with(prefix) {
                continue;
            }
            match BlobKey::new(key) {
                Ok(k) => out.push(DirBlobStore::meta(k, &entry.metadata()?)),
                Err(e) => {
                    tracing::warn!(error = %e, "skipping a file whose name is not a blob key")
                }
            }
        }
    }
    Ok(())
}

#[async_trait]
impl BlobStore for DirBlobStore {
    async fn put(&self, key: &BlobKey, bytes: Bytes, mode: PutMode) -> Result<BlobMeta, BlobError> {
        let stream: ByteStream = Box::pin(futures::stream::iter([Ok(bytes)]));
        self.put_stream(key, stream, mode).await
    }

    async fn put_stream(
        &self,
        key: &BlobKey,
        mut stream: ByteStream,
        mode: PutMode,
    ) -> Result<BlobMeta, BlobError> {
        let path = self.path(key);
        let k = key.as_str();
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| io_err(k, e))?;
        }
        // Write to a hidden temporary name, then link/rename: nothing is visible under
        // the key unless the whole stream succeeded.
        let tmp = path.with_file_name(format!(".{}.tmp-{}", key.name(), std::process::id()));
        let result = async {
            let mut f = tokio::fs::File::create(&tmp)
                .await
                .map_err(|e| io_err(k, e))?;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk?;
                tokio::io::AsyncWriteExt::write_all(&mut f, &chunk)
                    .await
                    .map_err(|e| io_err(k, e))?;
            }
            f.sync_all().await.map_err(|e| io_err(k, e))?;
            match mode {
                PutMode::Create => tokio::fs::hard_link(&tmp, &path).await.map_err(|e| {
                    if e.kind() == std::io::ErrorKind::AlreadyExists {
                        BlobError::AlreadyExists { key: k.into() }
                    } else {
                        io_err(k, e)
                    }
                }),
                PutMode::Overwrite => tokio::fs::rename(&tmp, &path)
                    .await
                    .map_err(|e| io_err(k, e)),
            }
        }
        .await;
        let _ = tokio::fs::remove_file(&tmp).await;
        result?;
        self.head(key).await
    }

    async fn get(&self, key: &BlobKey) -> Result<Bytes, BlobError> {
        tokio::fs::read(self.path(key))
            .await
            .map(Bytes::from)
            .map_err(|e| io_err(key.as_str(), e))
    }

    async fn get_stream(&self, key: &BlobKey) -> Result<ByteStream, BlobError> {
        let k = key.to_string();
        let file = tokio::fs::File::open(self.path(key))
            .await
            .map_err(|e| io_err(&k, e))?
            .into_std()
            .await;
        // Each chunk is one blocking task that reads straight into the chunk's own
        // buffer: `tokio::fs::File` would read into its internal buffer and copy
        // (and a zeroed `BytesMut` costs a memset), a whole extra pass per byte.
        Ok(Box::pin(futures::stream::unfold(
            Some((file, k)),
            |state| async move {
                let (file, k) = state?;
                let read = tokio::task::spawn_blocking(move || {
                    let mut buf = Vec::with_capacity(READ_CHUNK);
                    let r = std::io::Read::read_to_end(
                        &mut std::io::Read::take(&file, READ_CHUNK as u64),
                        &mut buf,
                    );
                    (file, r.map(|_| buf))
                })
                .await;
                match read {
                    Err(e) => Some((Err(io_err(&k, std::io::Error::other(e))), None)),
                    Ok((_, Err(e))) => Some((Err(io_err(&k, e)), None)),
                    Ok((_, Ok(buf))) if buf.is_empty() => None,
                    Ok((file, Ok(buf))) => Some((Ok(Bytes::from(buf)), Some((file, k)))),
                }
            },
        )))
    }

    async fn head(&self, key: &BlobKey) -> Result<BlobMeta, BlobError> {
        let md = tokio::fs::metadata(self.path(key))
            .await
            .map_err(|e| io_err(key.as_str(), e))?;
        if !md.is_file() {
            return Err(BlobError::NotFound {
                key: key.to_string(),
            });
        }
        Ok(Self::meta(key.clone(), &md))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<BlobMeta>, BlobError> {
        let root = self.root.clone();
        let prefix = prefix.to_string();
        let mut out = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            walk(&root, &root, &prefix, &mut out).map(|()| out)
        })
        .await
        .map_err(|e| BlobError::Backend(e.to_string()))?
        .map_err(|e| BlobError::Backend(e.to_string()))?;
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError> {
        match tokio::fs::remove_file(self.path(key)).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err(key.as_str(), e)),
            _ => Ok(()),
        }
    }

    async fn signed_get_url(
        &self,
        key: &BlobKey,
        ttl: std::time::Duration,
        now: OffsetDateTime,
    ) -> Result<SignedUrl, BlobError> {
        self.signer.signed_get(key, ttl, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dir_store_passes_the_conformance_suite() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirBlobStore::new(dir.path(), UrlSigner::new(vec![5; 32], "file://mc"));
        mc_core::testkit::blob_store_conformance(&store).await;
    }

    #[tokio::test]
    async fn streams_large_blobs_in_full_chunks_and_names_a_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirBlobStore::new(dir.path(), UrlSigner::new(vec![5; 32], "file://mc"));
        let key = BlobKey::new("tenants/acme/logs/exec_1/big.log").unwrap();
        let body: Vec<u8> = (0..READ_CHUNK * 2 + 12_345)
            .map(|i| (i % 251) as u8)
            .collect();
        store
            .put(&key, Bytes::from(body.clone()), mc_core::PutMode::Create)
            .await
            .unwrap();
        let chunks: Vec<Bytes> = store
            .get_stream(&key)
            .await
            .unwrap()
            .map(|c| c.unwrap())
            .collect()
            .await;
        let sizes: Vec<usize> = chunks.iter().map(Bytes::len).collect();
        assert_eq!(sizes, [READ_CHUNK, READ_CHUNK, 12_345]);
        assert_eq!(chunks.concat(), body);
        let missing = BlobKey::new("tenants/acme/logs/exec_1/none.log").unwrap();
        assert!(matches!(
            store.get_stream(&missing).await.err(),
            Some(BlobError::NotFound { .. })
        ));
    }
}
