//! In-memory adapters: the embedded default and the fast test double. They pass the
//! same conformance suite (`mc_core::testkit`, feature `testkit`) as the PostgreSQL and S3 adapters.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use time::OffsetDateTime;

use crate::audit::{AuditEvent, GENESIS_HASH, NewAuditEvent};
use crate::blob::{BlobError, BlobKey, BlobMeta, BlobStore, ByteStream, PutMode, SignedUrl};
use crate::clock::Clock;
use crate::drift::{
    Alert, ChangeProposal, ChangeProposer, DriftSource, LiveObject, Pager, ProposalRef,
};
use crate::execution::Execution;
use crate::flag::Flag;
use crate::id::{ExecutionId, IdempotencyKey, TenantId};
use crate::retention::{RetentionCommit, RetentionStore, show};
use crate::signed_url::{SignedUrlError, UrlSigner};
use crate::store::{
    ActionCommit, AuditLog, CommitResult, Cursor, ExecutionQuery, ExecutionStore, FlagStore,
    IdempotencyRecord, Page, StoreError,
};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave half a commit behind: every commit
    // validates fully before its first write.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Default)]
struct State {
    executions: HashMap<(TenantId, ExecutionId), Execution>,
    by_time: HashMap<TenantId, BTreeSet<(OffsetDateTime, ExecutionId)>>,
    audit: HashMap<TenantId, Vec<AuditEvent>>,
    idempotency: HashMap<(TenantId, IdempotencyKey), IdempotencyRecord>,
    retention: HashMap<TenantId, BTreeMap<String, String>>,
}

impl State {
    fn append(&mut self, ev: NewAuditEvent) -> AuditEvent {
        let chain = self.audit.entry(ev.tenant().clone()).or_default();
        let (seq, prev) = chain
            .last()
            .map(|l| (l.seq + 1, l.hash.clone()))
            .unwrap_or((1, GENESIS_HASH.to_string()));
        let sealed = ev.seal(seq, &prev);
        chain.push(sealed.clone());
        sealed
    }
}

/// Executions, audit chains and idempotency records in one process's memory.
///
/// Cloning shares the same data.
#[derive(Clone, Default)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").finish_non_exhaustive()
    }
}

fn check_tenant(
    commit_tenant: &TenantId,
    other: &TenantId,
    what: &'static str,
) -> Result<(), StoreError> {
    if commit_tenant != other {
        return Err(StoreError::InvalidInput {
            field: what,
            reason: format!("belongs to tenant {other}, commit is for {commit_tenant}"),
        });
    }
    Ok(())
}

#[async_trait]
impl ExecutionStore for MemoryStore {
    async fn get(&self, tenant: &TenantId, id: &ExecutionId) -> Result<Execution, StoreError> {
        lock(&self.state)
            .executions
            .get(&(tenant.clone(), id.clone()))
            .cloned()
            .ok_or_else(|| StoreError::NotFound { id: id.to_string() })
    }

    async fn commit(&self, c: ActionCommit) -> Result<CommitResult, StoreError> {
        let mut st = lock(&self.state);
        // 1. Idempotency first: a repeat writes nothing.
        if let Some(rec) = &c.idempotency
            && let Some(existing) = st.idempotency.get(&(c.tenant.clone(), rec.key.clone()))
        {
            return if existing.fingerprint == rec.fingerprint {
                Ok(CommitResult::Replayed {
                    outcome: existing.outcome.clone(),
                })
            } else {
                Err(StoreError::IdempotencyConflict {
                    key: rec.key.to_string(),
                })
            };
        }
        // 2. Validate everything before the first write.
        for ev in &c.audit {
            check_tenant(&c.tenant, ev.tenant(), "audit event")?;
        }
        let updated = match &c.transition {
            Some(t) => {
                let cur = st
                    .executions
                    .get(&(c.tenant.clone(), t.execution_id.clone()))
                    .ok_or_else(|| StoreError::NotFound {
                        id: t.execution_id.to_string(),
                    })?;
                if cur.version != t.expected_version {
                    return Err(StoreError::VersionConflict {
                        id: t.execution_id.to_string(),
                        expected: t.expected_version,
                        actual: cur.version,
                    });
                }
                if !cur.state.can_transition_to(t.to) {
                    return Err(StoreError::IllegalTransition {
                        id: t.execution_id.to_string(),
                        from: cur.state,
                        to: t.to,
                    });
                }
                let mut next = cur.clone();
                next.state = t.to;
                next.version += 1;
                next.updated_at = c.at;
                if t.next_attempt {
                    next.attempt += 1;
                }
                Some(next)
            }
            None => None,
        };
        if let Some(new) = &c.create {
            check_tenant(&c.tenant, &new.tenant, "created execution")?;
            if st
                .executions
                .contains_key(&(c.tenant.clone(), new.id.clone()))
            {
                return Err(StoreError::AlreadyExists {
                    id: new.id.to_string(),
                });
            }
        }
        // 3. Write.
        if let Some(u) = &updated {
            st.executions
                .insert((c.tenant.clone(), u.id.clone()), u.clone());
        }
        if let Some(new) = &c.create {
            st.executions
                .insert((c.tenant.clone(), new.id.clone()), new.clone());
            st.by_time
                .entry(c.tenant.clone())
                .or_default()
                .insert((new.created_at, new.id.clone()));
        }
        let audit = c.audit.into_iter().map(|e| st.append(e)).collect();
        if let Some(rec) = c.idempotency {
            st.idempotency
                .insert((c.tenant.clone(), rec.key.clone()), rec);
        }
        Ok(CommitResult::Committed {
            updated,
            created: c.create,
            audit,
        })
    }

    async fn idempotency(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        Ok(lock(&self.state)
            .idempotency
            .get(&(tenant.clone(), key.clone()))
            .cloned())
    }

    async fn search(
        &self,
        tenant: &TenantId,
        q: &ExecutionQuery,
    ) -> Result<Page<Execution>, StoreError> {
        let limit = q.effective_limit()? as usize;
        let after = q.cursor.as_ref().map(Cursor::decode).transpose()?;
        let st = lock(&self.state);
        let Some(index) = st.by_time.get(tenant) else {
            return Ok(Page {
                items: vec![],
                next_cursor: None,
            });
        };
        let iter: Box<dyn Iterator<Item = &(OffsetDateTime, ExecutionId)>> = match &after {
            Some(pos) => Box::new(index.range(..pos.clone()).rev()),
            None => Box::new(index.iter().rev()),
        };
        let mut items = Vec::with_capacity(limit + 1);
        for (_, id) in iter {
            let Some(e) = st.executions.get(&(tenant.clone(), id.clone())) else {
                continue;
            };
            if q.matches(e) {
                items.push(e.clone());
                if items.len() > limit {
                    break;
                }
            }
        }
        let next_cursor = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|l| Cursor::after(l.created_at, &l.id))
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }
}

#[async_trait]
impl AuditLog for MemoryStore {
    async fn append(&self, event: NewAuditEvent) -> Result<AuditEvent, StoreError> {
        Ok(lock(&self.state).append(event))
    }

    async fn read(
        &self,
        tenant: &TenantId,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let st = lock(&self.state);
        Ok(st
            .audit
            .get(tenant)
            .map(|chain| {
                chain
                    .iter()
                    .skip(after_seq as usize)
                    .take(limit as usize)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn head(&self, tenant: &TenantId) -> Result<Option<AuditEvent>, StoreError> {
        Ok(lock(&self.state)
            .audit
            .get(tenant)
            .and_then(|c| c.last().cloned()))
    }
}

/// Overrides live beside the audit chain under one lock, so a change and its event
/// are applied together.
#[async_trait]
impl RetentionStore for MemoryStore {
    async fn overrides(&self, tenant: &TenantId) -> Result<BTreeMap<String, String>, StoreError> {
        Ok(lock(&self.state)
            .retention
            .get(tenant)
            .cloned()
            .unwrap_or_default())
    }

    async fn commit_override(&self, commit: RetentionCommit) -> Result<AuditEvent, StoreError> {
        commit.validate()?;
        let mut st = lock(&self.state);
        let current = st
            .retention
            .get(&commit.tenant)
            .and_then(|o| o.get(&commit.kind))
            .cloned();
        if current != commit.expected {
            return Err(StoreError::Conflict {
                what: commit.what(),
                expected: show(commit.expected.as_deref()),
                actual: show(current.as_deref()),
            });
        }
        let overrides = st.retention.entry(commit.tenant.clone()).or_default();
        match commit.ttl {
            Some(ttl) => {
                overrides.insert(commit.kind, ttl);
            }
            None => {
                overrides.remove(&commit.kind);
                if overrides.is_empty() {
                    st.retention.remove(&commit.tenant);
                }
            }
        }
        Ok(st.append(commit.event))
    }
}

/// Per-tenant flags in memory.
#[derive(Clone, Default, Debug)]
pub struct MemoryFlagStore {
    flags: Arc<Mutex<HashMap<(TenantId, Flag), bool>>>,
}

impl MemoryFlagStore {
    /// An empty store: every flag off.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl FlagStore for MemoryFlagStore {
    async fn is_enabled(&self, tenant: &TenantId, flag: Flag) -> Result<bool, StoreError> {
        Ok(lock(&self.flags)
            .get(&(tenant.clone(), flag))
            .copied()
            .unwrap_or(false))
    }

    async fn set(&self, tenant: &TenantId, flag: Flag, enabled: bool) -> Result<(), StoreError> {
        lock(&self.flags).insert((tenant.clone(), flag), enabled);
        Ok(())
    }
}

/// Chunk size of [`MemoryBlobStore::get_stream`].
const CHUNK: usize = 64 * 1024;

/// Blobs in memory, with HMAC pre-signed URLs (`memory://mc/...`).
#[derive(Clone)]
pub struct MemoryBlobStore {
    blobs: Arc<Mutex<BTreeMap<String, (Bytes, OffsetDateTime)>>>,
    clock: Arc<dyn Clock>,
    signer: UrlSigner,
}

impl std::fmt::Debug for MemoryBlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBlobStore").finish_non_exhaustive()
    }
}

/// 32 bytes of per-process randomness from the standard library's hasher seeds.
fn process_secret() -> Vec<u8> {
    let mut out = Vec::with_capacity(32);
    for i in 0..4u64 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(i);
        out.extend_from_slice(&h.finish().to_le_bytes());
    }
    out
}

impl MemoryBlobStore {
    /// An empty store whose objects' `last_modified` comes from `clock`, signing URLs
    /// with a random per-process key.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self::with_signer(clock, UrlSigner::new(process_secret(), "memory://mc"))
    }

    /// An empty store signing URLs with `signer`.
    pub fn with_signer(clock: Arc<dyn Clock>, signer: UrlSigner) -> Self {
        MemoryBlobStore {
            blobs: Arc::default(),
            clock,
            signer,
        }
    }

    /// Verifies a URL from [`BlobStore::signed_get_url`] and returns the object.
    ///
    /// # Errors
    /// [`SignedUrlError`] for a malformed, tampered or expired URL; a missing object
    /// is `Ok(None)`.
    pub fn get_signed(&self, url: &str) -> Result<Option<Bytes>, SignedUrlError> {
        let key = self.signer.verify_url("GET", url, self.clock.now())?;
        Ok(lock(&self.blobs).get(key.as_str()).map(|(b, _)| b.clone()))
    }

    fn meta(key: &str, b: &Bytes, at: OffsetDateTime) -> BlobMeta {
        BlobMeta {
            key: BlobKey(key.to_string()),
            size: b.len() as u64,
            last_modified: at,
        }
    }
}

#[async_trait]
impl BlobStore for MemoryBlobStore {
    async fn put(&self, key: &BlobKey, bytes: Bytes, mode: PutMode) -> Result<BlobMeta, BlobError> {
        let now = self.clock.now();
        let mut blobs = lock(&self.blobs);
        if mode == PutMode::Create && blobs.contains_key(key.as_str()) {
            return Err(BlobError::AlreadyExists {
                key: key.to_string(),
            });
        }
        let meta = Self::meta(key.as_str(), &bytes, now);
        blobs.insert(key.as_str().to_string(), (bytes, now));
        Ok(meta)
    }

    async fn put_stream(
        &self,
        key: &BlobKey,
        mut stream: ByteStream,
        mode: PutMode,
    ) -> Result<BlobMeta, BlobError> {
        let mut buf = BytesMut::new();
        while let Some(chunk) = stream.next().await {
            buf.extend_from_slice(&chunk?);
        }
        self.put(key, buf.freeze(), mode).await
    }

    async fn get(&self, key: &BlobKey) -> Result<Bytes, BlobError> {
        lock(&self.blobs)
            .get(key.as_str())
            .map(|(b, _)| b.clone())
            .ok_or_else(|| BlobError::NotFound {
                key: key.to_string(),
            })
    }

    async fn get_stream(&self, key: &BlobKey) -> Result<ByteStream, BlobError> {
        let bytes = self.get(key).await?;
        let chunks: Vec<Result<Bytes, BlobError>> = (0..bytes.len())
            .step_by(CHUNK)
            .map(|i| Ok(bytes.slice(i..(i + CHUNK).min(bytes.len()))))
            .collect();
        Ok(Box::pin(futures::stream::iter(chunks)))
    }

    async fn head(&self, key: &BlobKey) -> Result<BlobMeta, BlobError> {
        lock(&self.blobs)
            .get(key.as_str())
            .map(|(b, at)| Self::meta(key.as_str(), b, *at))
            .ok_or_else(|| BlobError::NotFound {
                key: key.to_string(),
            })
    }

    async fn list(&self, prefix: &str) -> Result<Vec<BlobMeta>, BlobError> {
        Ok(lock(&self.blobs)
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, (b, at))| Self::meta(k, b, *at))
            .collect())
    }

    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError> {
        lock(&self.blobs).remove(key.as_str());
        Ok(())
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

/// A drift source that returns a fixed, replaceable set of live objects.
#[derive(Clone, Debug, Default)]
pub struct MemoryDriftSource {
    name: String,
    objects: Arc<Mutex<Vec<LiveObject>>>,
}

impl MemoryDriftSource {
    /// A source called `name` with no objects.
    pub fn new(name: impl Into<String>) -> Self {
        MemoryDriftSource {
            name: name.into(),
            objects: Arc::default(),
        }
    }

    /// Replaces the live objects.
    pub fn set(&self, objects: Vec<LiveObject>) {
        *lock(&self.objects) = objects;
    }
}

#[async_trait]
impl DriftSource for MemoryDriftSource {
    fn name(&self) -> &str {
        &self.name
    }
    async fn snapshot(&self) -> Result<Vec<LiveObject>, StoreError> {
        Ok(lock(&self.objects).clone())
    }
}

/// A pager that keeps every page (one per open `dedup_key`).
#[derive(Clone, Debug, Default)]
pub struct MemoryPager {
    pages: Arc<Mutex<Vec<Alert>>>,
}

impl MemoryPager {
    /// No pages yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The pages sent, oldest first (a repeated `dedup_key` is kept once).
    pub fn pages(&self) -> Vec<Alert> {
        lock(&self.pages).clone()
    }
}

#[async_trait]
impl Pager for MemoryPager {
    async fn page(&self, page: Alert) -> Result<(), StoreError> {
        let mut pages = lock(&self.pages);
        if !pages.iter().any(|p| p.dedup_key == page.dedup_key) {
            pages.push(page);
        }
        Ok(())
    }
}

/// A change proposer that keeps proposals in memory, numbered from 1.
#[derive(Clone, Debug, Default)]
pub struct MemoryChangeProposer {
    open: Arc<Mutex<Vec<(ChangeProposal, ProposalRef)>>>,
}

impl MemoryChangeProposer {
    /// No proposals yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every proposal opened, oldest first.
    pub fn proposals(&self) -> Vec<(ChangeProposal, ProposalRef)> {
        lock(&self.open).clone()
    }

    /// Closes (merges or rejects) the proposal for `fingerprint`.
    pub fn close(&self, fingerprint: &str) {
        lock(&self.open).retain(|(p, _)| p.fingerprint != fingerprint);
    }
}

#[async_trait]
impl ChangeProposer for MemoryChangeProposer {
    async fn find_open(&self, fingerprint: &str) -> Result<Option<ProposalRef>, StoreError> {
        Ok(lock(&self.open)
            .iter()
            .find(|(p, _)| p.fingerprint == fingerprint)
            .map(|(_, r)| r.clone()))
    }

    async fn propose(&self, proposal: &ChangeProposal) -> Result<ProposalRef, StoreError> {
        let mut open = lock(&self.open);
        if let Some((_, r)) = open
            .iter()
            .find(|(p, _)| p.fingerprint == proposal.fingerprint)
        {
            return Ok(r.clone());
        }
        let number = open.len() as u64 + 1;
        let r = ProposalRef {
            number,
            url: format!("memory://proposals/{number}"),
        };
        open.push((proposal.clone(), r.clone()));
        Ok(r)
    }
}

#[cfg(all(test, feature = "testkit"))]
mod conformance {
    use super::*;
    use crate::testkit;

    #[tokio::test]
    async fn memory_store_passes_execution_store_conformance() {
        testkit::execution_store_conformance(&MemoryStore::new()).await;
    }

    #[tokio::test]
    async fn memory_store_passes_audit_log_conformance() {
        testkit::audit_log_conformance(&MemoryStore::new()).await;
    }

    #[tokio::test]
    async fn memory_store_passes_retention_store_conformance() {
        testkit::retention_store_conformance(&MemoryStore::new()).await;
    }

    #[tokio::test]
    async fn memory_change_proposer_passes_conformance() {
        testkit::change_proposer_conformance(&MemoryChangeProposer::new()).await;
    }

    #[tokio::test]
    async fn memory_flags_pass_flag_store_conformance() {
        testkit::flag_store_conformance(&MemoryFlagStore::new()).await;
    }

    #[tokio::test]
    async fn memory_blobs_pass_blob_store_conformance() {
        let clock = Arc::new(crate::ManualClock::new(
            time::macros::datetime!(2025-12-10 18:00 UTC),
        ));
        testkit::blob_store_conformance(&MemoryBlobStore::new(clock)).await;
    }
}
