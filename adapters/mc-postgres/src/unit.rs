//! Units of work committed in batches: the `mc_commit_batch` function of migration
//! 0005, which replaced the one-unit `mc_commit` of migration 0004 (ADR 0304,
//! ADR 0305).
//!
//! Every [`ExecutionStore::commit`](mc_core::ExecutionStore::commit) of one tenant is
//! queued here. A **flusher** task takes the queued units — up to
//! [`GroupCommit::max_batch`], never a tenant that another flusher holds — and commits
//! them in one statement: one round trip, one transaction, one WAL flush. Inside it
//! the batch is written set-based when every unit commits as sent; otherwise each
//! unit runs in its own subtransaction, so a unit that fails rolls back alone and is
//! answered on its own; the units around it commit. At most
//! [`GroupCommit::max_in_flight`] flushers run at once; while they wait for the
//! server, new units queue up and form the next batch (group commit). A lone commit
//! is sent at once, as a batch of one.
//!
//! The audit events are sealed here, in Rust, with mc-core's
//! [`NewAuditEvent::seal`](mc_core::NewAuditEvent::seal) — the hash is SHA-256 over
//! mc-core's canonical JSON and is computed by nothing else — onto the chain head this
//! process last saw for the tenant (a hint), one unit after the other, each onto the
//! head the previous unit of its tenant will leave. `mc_commit_batch` locks the head
//! rows and compares: when the chain moved otherwise (another replica, a plain
//! [`AuditLog::append`](mc_core::AuditLog), or an earlier unit of the batch that
//! failed), that unit fails with SQLSTATE `MCC05` and the real head, and is sealed
//! again for the next batch. A tenant is held by one flusher at a time, so one process
//! never races itself for a head.
//!
//! After [`MAX_STALE`] stale heads in a row (a chain that keeps moving under us), a
//! unit falls back to the multi-statement transaction of [`crate::execution`], which
//! reads the head under its lock and cannot be stale. The flusher runs the fallback
//! itself while it still holds the tenant.
//!
//! The flusher is a spawned task, so a caller that stops waiting (a dropped future)
//! never leaves a batch half-answered: the batch completes and the answer is dropped.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex as StdMutex;
use std::sync::atomic::{AtomicU64, Ordering};

use mc_core::audit::GENESIS_HASH;
use mc_core::{ActionCommit, AuditEvent, CommitResult, ExecutionState, StoreError, TenantId};
use sqlx::Row;
use sqlx::postgres::PgRow;
use tokio::sync::oneshot;

use crate::PgStore;
use crate::codec::{AuditColumns, execution_from_row, split, to_i64};
use crate::error::{
    DEADLOCK_DETECTED, SERIALIZATION_FAILURE, corrupt, is_retryable, map_db, map_sqlx,
};

/// Stale chain heads tolerated in a row before a unit falls back to the transaction
/// that reads the head under its lock.
pub(crate) const MAX_STALE: usize = 3;

/// Chain-head hints kept before the hints of idle tenants are dropped.
const MAX_CACHED_TENANTS: usize = 4096;

/// Most units per batch. PostgreSQL keeps the first 64 subtransactions of a
/// transaction in shared memory; past that every snapshot taken meanwhile gets slower,
/// so a batch (one subtransaction per unit) stays below it.
pub const MAX_BATCH_LIMIT: usize = 60;

/// How [`PgStore`] groups concurrent commits (ADR 0305).
///
/// The default — up to 32 units per batch, 2 batches in flight — suits a host sharing
/// a small server; [`GroupCommit::new`] tunes it. `max_batch = 1` turns grouping off:
/// every unit is then its own transaction (and its own WAL flush).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupCommit {
    max_batch: usize,
    max_in_flight: usize,
}

impl Default for GroupCommit {
    fn default() -> Self {
        GroupCommit {
            max_batch: 32,
            max_in_flight: 2,
        }
    }
}

impl GroupCommit {
    /// Up to `max_batch` units per transaction (1 ..= [`MAX_BATCH_LIMIT`]) and up to
    /// `max_in_flight` batches at once, each on its own pooled connection (≥ 1).
    ///
    /// # Errors
    /// [`StoreError::InvalidInput`] naming the field that is out of range.
    pub fn new(max_batch: usize, max_in_flight: usize) -> Result<Self, StoreError> {
        if !(1..=MAX_BATCH_LIMIT).contains(&max_batch) {
            return Err(StoreError::InvalidInput {
                field: "max_batch",
                reason: format!("must be between 1 and {MAX_BATCH_LIMIT}, got {max_batch}"),
            });
        }
        if max_in_flight == 0 {
            return Err(StoreError::InvalidInput {
                field: "max_in_flight",
                reason: "at least one batch must be allowed in flight".into(),
            });
        }
        Ok(GroupCommit {
            max_batch,
            max_in_flight,
        })
    }

    /// Most units per transaction.
    pub fn max_batch(&self) -> usize {
        self.max_batch
    }

    /// Most batches in flight at once.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }
}

/// A queued unit and where its answer goes.
struct Pending {
    unit: ActionCommit,
    reply: oneshot::Sender<Result<CommitResult, StoreError>>,
    stale: usize,
    races: usize,
}

impl Pending {
    fn answer(self, r: Result<CommitResult, StoreError>) {
        // The caller may have stopped waiting; the unit's fate is decided either way.
        let _ = self.reply.send(r);
    }

    /// Counts a lost race (`why`): the unit to send again, or `None` once it is
    /// answered with [`crate::retries_exhausted`].
    fn raced(mut self, why: &str) -> Option<Self> {
        self.races += 1;
        if self.races >= crate::MAX_TX_ATTEMPTS {
            self.answer(Err(crate::retries_exhausted(why)));
            None
        } else {
            Some(self)
        }
    }
}

#[derive(Default)]
struct State {
    queue: VecDeque<Pending>,
    /// Tenants held by a flusher: their units wait for that flusher.
    busy: HashSet<TenantId>,
    flushers: usize,
    /// Chain head `(seq, hash)` of each tenant as this process last saw it.
    heads: HashMap<TenantId, (u64, String)>,
}

/// Counters of the group-commit queue since the store was made
/// ([`PgStore::commit_stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitStats {
    /// Batch statements that reached the server and answered.
    pub batches: u64,
    /// Units carried by those batches (a unit sent again after a stale head or a lost
    /// race counts again).
    pub units: u64,
    /// Units of batches written on the set-based fast path (every unit of the batch
    /// committed as sent; ADR 0305).
    pub units_set_path: u64,
}

/// The queue of units waiting to be committed, shared by clones of a [`PgStore`].
#[derive(Default)]
pub(crate) struct Committer {
    config: GroupCommit,
    state: StdMutex<State>,
    batches: AtomicU64,
    units: AtomicU64,
    units_set_path: AtomicU64,
}

impl Committer {
    pub(crate) fn new(config: GroupCommit) -> Self {
        Committer {
            config,
            ..Committer::default()
        }
    }

    pub(crate) fn stats(&self) -> CommitStats {
        CommitStats {
            batches: self.batches.load(Ordering::Relaxed),
            units: self.units.load(Ordering::Relaxed),
            units_set_path: self.units_set_path.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn config(&self) -> GroupCommit {
        self.config
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock only means a thread panicked while holding it; the queue and
        // hints are still consistent (every update is a single push/insert/remove).
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes the next batch for a flusher: queued units of tenants no other flusher
    /// holds, in queue order, up to `max_batch`; marks their tenants held. Empty when
    /// there is nothing this flusher may take — it then stops (counted out here, under
    /// the same lock that queues units, so no unit is ever left without a flusher).
    fn take(&self) -> Vec<Pending> {
        let mut st = self.lock();
        let mut taken = Vec::new();
        let mut mine: HashSet<TenantId> = HashSet::new();
        let mut rest = VecDeque::with_capacity(st.queue.len());
        while let Some(p) = st.queue.pop_front() {
            let free = mine.contains(&p.unit.tenant) || !st.busy.contains(&p.unit.tenant);
            if taken.len() < self.config.max_batch && free {
                mine.insert(p.unit.tenant.clone());
                taken.push(p);
            } else {
                rest.push_back(p);
            }
        }
        st.queue = rest;
        if taken.is_empty() {
            st.flushers -= 1;
        } else {
            st.busy.extend(mine);
        }
        taken
    }

    /// Gives the tenants of a finished batch back.
    fn release(&self, tenants: &[TenantId]) {
        let mut st = self.lock();
        for t in tenants {
            st.busy.remove(t);
        }
    }

    fn head(&self, tenant: &TenantId) -> (u64, String) {
        self.lock()
            .heads
            .get(tenant)
            .cloned()
            .unwrap_or_else(|| (0, GENESIS_HASH.to_string()))
    }

    fn set_heads(&self, learned: HashMap<TenantId, Option<(u64, String)>>) {
        let mut st = self.lock();
        if st.heads.len() + learned.len() > MAX_CACHED_TENANTS {
            // Only hints: drop those of tenants nobody is committing for right now.
            let busy = std::mem::take(&mut st.busy);
            st.heads.retain(|t, _| busy.contains(t));
            st.busy = busy;
        }
        for (t, h) in learned {
            match h {
                Some(h) => st.heads.insert(t, h),
                None => st.heads.remove(&t),
            };
        }
    }
}

/// Commits `units` (each already validated, every tenant equal to its unit's tenant)
/// through the queue; one answer per unit, in order.
pub(crate) async fn commit(
    store: &PgStore,
    units: Vec<ActionCommit>,
) -> Vec<Result<CommitResult, StoreError>> {
    let committer = &store.committer;
    let mut answers = Vec::with_capacity(units.len());
    let start_flusher = {
        let mut st = committer.lock();
        for unit in units {
            let (reply, rx) = oneshot::channel();
            st.queue.push_back(Pending {
                unit,
                reply,
                stale: 0,
                races: 0,
            });
            answers.push(rx);
        }
        let start = st.flushers < committer.config.max_in_flight;
        if start {
            st.flushers += 1;
        }
        start
    };
    if start_flusher {
        tokio::spawn(flush(store.clone()));
    }
    let mut out = Vec::with_capacity(answers.len());
    for rx in answers {
        out.push(rx.await.unwrap_or_else(|_| {
            Err(StoreError::Unavailable(
                "the commit task stopped before answering; the unit may or may not be \
                 committed, retry with the same idempotency key"
                    .into(),
            ))
        }));
    }
    out
}

/// A flusher: commits batches until there is nothing left it may take.
async fn flush(store: PgStore) {
    // Counts this flusher out if it ends abnormally (a panic, or its runtime shutting
    // down mid-batch); a normal end is counted out by `take`, under the queue's lock.
    let mut slot = FlusherSlot {
        committer: &store.committer,
        counted_out: false,
    };
    loop {
        let batch = store.committer.take();
        if batch.is_empty() {
            slot.counted_out = true;
            return;
        }
        let mut tenants: Vec<TenantId> = batch.iter().map(|p| p.unit.tenant.clone()).collect();
        tenants.sort();
        tenants.dedup();
        // Gives the tenants back even if the batch panics, so their queue moves on.
        let _held = Held {
            store: &store,
            tenants: &tenants,
        };
        run(&store, batch).await;
    }
}

struct FlusherSlot<'a> {
    committer: &'a Committer,
    counted_out: bool,
}

impl Drop for FlusherSlot<'_> {
    fn drop(&mut self) {
        if !self.counted_out {
            // Units still queued go out with the next commit, which starts a flusher.
            self.committer.lock().flushers -= 1;
        }
    }
}

struct Held<'a> {
    store: &'a PgStore,
    tenants: &'a [TenantId],
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.store.committer.release(self.tenants);
    }
}

/// What became of one unit of a batch.
enum Outcome {
    /// Written; the updated execution when the unit had a transition.
    Committed(Option<mc_core::Execution>),
    /// The key was recorded before: its fingerprint and outcome (nothing written).
    Recorded {
        fingerprint: String,
        outcome: String,
    },
    /// The events were sealed onto a stale head; this is the real one.
    StaleHead(u64, String),
    /// Lost a race (serialization failure, deadlock): run it again.
    Again(String),
    /// Not run: an earlier unit of its tenant is to be sent again first.
    Deferred,
    /// Final failure.
    Failed(StoreError),
}

/// Commits one batch, re-running its stale and raced units until each is answered.
async fn run(store: &PgStore, batch: Vec<Pending>) {
    let mut work = batch;
    // By tenant, stable: heads are locked in one order by every batch, and each
    // tenant's units keep their queue order.
    work.sort_by(|a, b| a.unit.tenant.cmp(&b.unit.tenant));
    while !work.is_empty() {
        // Seal every unit onto the head its predecessors of the tenant will leave.
        let mut heads: HashMap<TenantId, (u64, String)> = HashMap::new();
        let mut sealed_onto = Vec::with_capacity(work.len());
        let mut sealed = Vec::with_capacity(work.len());
        for p in &work {
            let head = heads
                .entry(p.unit.tenant.clone())
                .or_insert_with(|| store.committer.head(&p.unit.tenant));
            sealed_onto.push(head.clone());
            let events = seal(&p.unit, head);
            if let Some(last) = events.last() {
                *head = (last.seq, last.hash.clone());
            }
            sealed.push(events);
        }

        let outcomes = match call(store, &work, &sealed_onto, &sealed).await {
            Ok(o) => o,
            Err(e) => {
                work = whole_batch_failed(store, work, e).await;
                continue;
            }
        };

        // Answer, and learn each tenant's head: rows come back in commit order, so the
        // last thing seen of a tenant is its head after the batch.
        let mut learned: HashMap<TenantId, Option<(u64, String)>> = HashMap::new();
        let mut again = Vec::new();
        let mut fallback = Vec::new();
        for ((mut p, events), outcome) in work.into_iter().zip(sealed).zip(outcomes) {
            match outcome {
                Outcome::Committed(updated) => {
                    if let Some(last) = events.last() {
                        learned.insert(p.unit.tenant.clone(), Some((last.seq, last.hash.clone())));
                    }
                    let created = p.unit.create.clone();
                    p.answer(Ok(CommitResult::Committed {
                        updated,
                        created,
                        audit: events,
                    }));
                }
                Outcome::Recorded {
                    fingerprint,
                    outcome,
                } => {
                    let r = replayed(&p.unit, &fingerprint, &outcome);
                    p.answer(r);
                }
                Outcome::StaleHead(seq, hash) => {
                    learned.insert(p.unit.tenant.clone(), Some((seq, hash)));
                    p.stale += 1;
                    if p.stale >= MAX_STALE {
                        fallback.push(p);
                    } else {
                        again.push(p);
                    }
                }
                Outcome::Again(m) => again.extend(p.raced(&m)),
                Outcome::Deferred => again.push(p),
                Outcome::Failed(e) => p.answer(Err(e)),
            }
        }
        store.committer.set_heads(learned);

        for p in fallback {
            tracing::debug!(tenant = %p.unit.tenant, "chain head kept moving; multi-statement commit");
            // This flusher still holds the tenant: no unit of this process can move
            // its head meanwhile.
            let r = store.commit_in_tx(&p.unit).await;
            if let Ok(CommitResult::Committed { audit, .. }) = &r
                && let Some(last) = audit.last()
            {
                store.committer.set_heads(HashMap::from([(
                    p.unit.tenant.clone(),
                    Some((last.seq, last.hash.clone())),
                )]));
            }
            p.answer(r);
        }
        work = again;
    }
}

/// The statement of a batch failed as a whole (nothing of it is committed, unless the
/// connection broke at commit). Returns the units to try again.
async fn whole_batch_failed(store: &PgStore, work: Vec<Pending>, e: sqlx::Error) -> Vec<Pending> {
    if is_retryable(&e) {
        let m = e.to_string();
        return work.into_iter().filter_map(|p| p.raced(&m)).collect();
    }
    // The outcome is unknown (a broken connection) or the statement itself was
    // refused: forget the hints (the next commit learns the heads again).
    store
        .committer
        .set_heads(work.iter().map(|p| (p.unit.tenant.clone(), None)).collect());
    let err = map_sqlx(e);
    if work.len() > 1 && !matches!(err, StoreError::Unavailable(_)) {
        // Refused as a whole, so nothing was written: find the unit at fault by
        // committing each on its own.
        for p in work {
            let single = vec![p];
            Box::pin(run(store, single)).await;
        }
        return Vec::new();
    }
    for p in work {
        p.answer(Err(err.clone()));
    }
    Vec::new()
}

/// Answers a unit whose key was recorded before.
fn replayed(
    unit: &ActionCommit,
    fingerprint: &str,
    outcome: &str,
) -> Result<CommitResult, StoreError> {
    let rec = unit.idempotency.as_ref().ok_or_else(|| {
        corrupt(
            "mc_commit_batch result",
            "a recorded key for a unit without one",
        )
    })?;
    if fingerprint == rec.fingerprint.as_str() {
        Ok(CommitResult::Replayed {
            outcome: serde_json::from_str(outcome).map_err(|e| corrupt("outcome", e))?,
        })
    } else {
        Err(StoreError::IdempotencyConflict {
            key: rec.key.to_string(),
        })
    }
}

/// The states from which `to` is a legal transition, as SQL text values.
fn legal_sources(to: ExecutionState) -> Vec<String> {
    ExecutionState::ALL
        .into_iter()
        .filter(|s| s.can_transition_to(to))
        .map(|s| s.as_str().to_string())
        .collect()
}

/// Seals `c`'s events onto `head`.
fn seal(c: &ActionCommit, head: &(u64, String)) -> Vec<AuditEvent> {
    let (mut seq, mut prev) = head.clone();
    c.audit
        .iter()
        .map(|ev| {
            seq += 1;
            let s = ev.clone().seal(seq, &prev);
            prev.clone_from(&s.hash);
            s
        })
        .collect()
}

/// The SQL of one batch; the execution columns are renamed to those of
/// [`crate::codec::EXECUTION_COLUMNS`] so an updated row decodes like any other.
const BATCH_SQL: &str = "SELECT o_idx, o_kind, o_path, o_sqlstate, o_message, o_detail, o_constraint, \
     o_fingerprint, o_outcome, o_tenant AS tenant, o_id AS id, o_state AS state, \
     o_attempt AS attempt, o_manifest AS manifest_digest, o_inputs AS inputs_digest, \
     o_parent AS parent, o_root AS root, o_labels AS labels, o_version AS version, \
     o_created_at AS created_at, o_created_sub_ns AS created_sub_ns, \
     o_updated_at AS updated_at, o_updated_sub_ns AS updated_sub_ns \
     FROM mc_commit_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
     $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, \
     $33, $34, $35, $36, $37, $38, $39)";

/// The per-unit parameters of `mc_commit_batch`, one element per unit.
#[derive(Default)]
struct UnitColumns {
    tenant: Vec<String>,
    key: Vec<Option<String>>,
    fingerprint: Vec<Option<String>>,
    outcome: Vec<Option<String>>,
    key_at: Vec<Option<time::OffsetDateTime>>,
    key_sub_ns: Vec<Option<i16>>,
    tr_id: Vec<Option<String>>,
    tr_to: Vec<Option<String>>,
    tr_attempt_inc: Vec<Option<i64>>,
    tr_expected: Vec<Option<i64>>,
    legal_from: Vec<Option<String>>,
    at: Vec<time::OffsetDateTime>,
    at_sub_ns: Vec<i16>,
    new_id: Vec<Option<String>>,
    new_state: Vec<Option<String>>,
    new_attempt: Vec<Option<i64>>,
    new_manifest: Vec<Option<String>>,
    new_inputs: Vec<Option<String>>,
    new_parent: Vec<Option<String>>,
    new_root: Vec<Option<String>>,
    new_labels: Vec<Option<String>>,
    new_version: Vec<Option<i64>>,
    new_created_at: Vec<Option<time::OffsetDateTime>>,
    new_created_sub: Vec<Option<i16>>,
    new_updated_at: Vec<Option<time::OffsetDateTime>>,
    new_updated_sub: Vec<Option<i16>>,
    head_seq: Vec<i64>,
    head_hash: Vec<String>,
    ev_count: Vec<i32>,
}

fn bad_json(field: &'static str) -> impl Fn(serde_json::Error) -> StoreError {
    move |e| StoreError::InvalidInput {
        field,
        reason: e.to_string(),
    }
}

impl UnitColumns {
    fn push(
        &mut self,
        c: &ActionCommit,
        head: &(u64, String),
        events: usize,
    ) -> Result<(), StoreError> {
        self.tenant.push(c.tenant.as_str().to_string());
        let rec = c.idempotency.as_ref();
        self.key.push(rec.map(|r| r.key.as_str().to_string()));
        self.fingerprint
            .push(rec.map(|r| r.fingerprint.as_str().to_string()));
        self.outcome.push(
            rec.map(|r| serde_json::to_string(&r.outcome))
                .transpose()
                .map_err(bad_json("idempotency outcome"))?,
        );
        let key_at = rec.map(|r| split(r.created_at));
        self.key_at.push(key_at.map(|t| t.micros));
        self.key_sub_ns.push(key_at.map(|t| t.sub_ns));

        let t = c.transition.as_ref();
        self.tr_id
            .push(t.map(|t| t.execution_id.as_str().to_string()));
        self.tr_to.push(t.map(|t| t.to.as_str().to_string()));
        self.tr_attempt_inc
            .push(t.map(|t| i64::from(t.next_attempt)));
        self.tr_expected.push(
            t.map(|t| to_i64("expected_version", t.expected_version))
                .transpose()?,
        );
        self.legal_from
            .push(t.map(|t| legal_sources(t.to).join(",")));
        let at = split(c.at);
        self.at.push(at.micros);
        self.at_sub_ns.push(at.sub_ns);

        let e = c.create.as_ref();
        self.new_id.push(e.map(|e| e.id.as_str().to_string()));
        self.new_state.push(e.map(|e| e.state.as_str().to_string()));
        self.new_attempt.push(e.map(|e| i64::from(e.attempt)));
        self.new_manifest
            .push(e.map(|e| e.manifest_digest.as_str().to_string()));
        self.new_inputs
            .push(e.map(|e| e.inputs_digest.as_str().to_string()));
        self.new_parent
            .push(e.and_then(|e| e.parent.as_ref().map(|p| p.as_str().to_string())));
        self.new_root.push(e.map(|e| e.root.as_str().to_string()));
        self.new_labels.push(
            e.map(|e| serde_json::to_string(&e.labels))
                .transpose()
                .map_err(bad_json("labels"))?,
        );
        self.new_version
            .push(e.map(|e| to_i64("version", e.version)).transpose()?);
        let created = e.map(|e| split(e.created_at));
        let updated = e.map(|e| split(e.updated_at));
        self.new_created_at.push(created.map(|t| t.micros));
        self.new_created_sub.push(created.map(|t| t.sub_ns));
        self.new_updated_at.push(updated.map(|t| t.micros));
        self.new_updated_sub.push(updated.map(|t| t.sub_ns));

        self.head_seq.push(to_i64("seq", head.0)?);
        self.head_hash.push(head.1.clone());
        self.ev_count
            .push(i32::try_from(events).map_err(|_| StoreError::InvalidInput {
                field: "audit",
                reason: format!("{events} events in one unit of work"),
            })?);
        Ok(())
    }
}

/// One call of `mc_commit_batch` for `work`, unit `i` sealed onto `onto[i]` as
/// `sealed[i]`. `Err` when the statement failed as a whole.
async fn call(
    store: &PgStore,
    work: &[Pending],
    onto: &[(u64, String)],
    sealed: &[Vec<AuditEvent>],
) -> Result<Vec<Outcome>, sqlx::Error> {
    let mut units = UnitColumns::default();
    let mut events = AuditColumns::default();
    let mut early: Vec<Option<StoreError>> = Vec::with_capacity(work.len());
    for ((p, head), evs) in work.iter().zip(onto).zip(sealed) {
        // A unit whose values cannot be encoded never reaches the server; it is
        // answered with its own error and sent as an empty unit so indexes line up.
        let encoded = units
            .push(&p.unit, head, evs.len())
            .and_then(|()| evs.iter().try_for_each(|e| events.push(e)));
        early.push(encoded.err());
    }
    if early.iter().any(Option::is_some) {
        // Rare (values past i64, unserialisable JSON): keep the batch simple by
        // answering those units now and sending the others on their own batch.
        return Ok(early
            .into_iter()
            .map(|e| match e {
                Some(e) => Outcome::Failed(e),
                None => Outcome::Again("re-sent without a unit that could not be encoded".into()),
            })
            .collect());
    }
    let q = sqlx::query(BATCH_SQL)
        .bind(units.tenant)
        .bind(units.key)
        .bind(units.fingerprint)
        .bind(units.outcome)
        .bind(units.key_at)
        .bind(units.key_sub_ns)
        .bind(units.tr_id)
        .bind(units.tr_to)
        .bind(units.tr_attempt_inc)
        .bind(units.tr_expected)
        .bind(units.legal_from)
        .bind(units.at)
        .bind(units.at_sub_ns)
        .bind(units.new_id)
        .bind(units.new_state)
        .bind(units.new_attempt)
        .bind(units.new_manifest)
        .bind(units.new_inputs)
        .bind(units.new_parent)
        .bind(units.new_root)
        .bind(units.new_labels)
        .bind(units.new_version)
        .bind(units.new_created_at)
        .bind(units.new_created_sub)
        .bind(units.new_updated_at)
        .bind(units.new_updated_sub)
        .bind(units.head_seq)
        .bind(units.head_hash)
        .bind(units.ev_count);
    let rows = events.bind(q).fetch_all(store.pool()).await?;
    store.committer.batches.fetch_add(1, Ordering::Relaxed);
    store
        .committer
        .units
        .fetch_add(work.len() as u64, Ordering::Relaxed);
    if rows.len() != work.len() {
        let e = corrupt(
            "mc_commit_batch result",
            format!("{} rows for {} units", rows.len(), work.len()),
        );
        return Ok(work.iter().map(|_| Outcome::Failed(e.clone())).collect());
    }
    Ok(rows
        .iter()
        .zip(work)
        .enumerate()
        .map(|(i, (row, p))| {
            outcome(&store.committer, row, i, &p.unit).unwrap_or_else(Outcome::Failed)
        })
        .collect())
}

/// Reads unit `i`'s row of a batch.
fn outcome(
    committer: &Committer,
    row: &PgRow,
    i: usize,
    c: &ActionCommit,
) -> Result<Outcome, StoreError> {
    let idx: i32 = row.try_get("o_idx").map_err(|e| corrupt("o_idx", e))?;
    if usize::try_from(idx).ok() != Some(i + 1) {
        return Err(corrupt(
            "mc_commit_batch result",
            format!("row {} answers unit {idx}", i + 1),
        ));
    }
    let kind: String = row.try_get("o_kind").map_err(|e| corrupt("o_kind", e))?;
    let path: Option<String> = row.try_get("o_path").map_err(|e| corrupt("o_path", e))?;
    if path.as_deref() == Some("set") {
        committer.units_set_path.fetch_add(1, Ordering::Relaxed);
    }
    match kind.as_str() {
        "committed" => Ok(Outcome::Committed(match &c.transition {
            Some(_) => Some(execution_from_row(row)?),
            None => None,
        })),
        "replayed" => Ok(Outcome::Recorded {
            fingerprint: row
                .try_get("o_fingerprint")
                .map_err(|e| corrupt("fingerprint", e))?,
            outcome: row
                .try_get("o_outcome")
                .map_err(|e| corrupt("outcome", e))?,
        }),
        "deferred" => Ok(Outcome::Deferred),
        "failed" => {
            let text = |col: &str| -> Result<Option<String>, StoreError> {
                let v: Option<String> = row.try_get(col).map_err(|e| corrupt("error row", e))?;
                Ok(v.filter(|s| !s.is_empty()))
            };
            let code = text("o_sqlstate")?.unwrap_or_default();
            let message = text("o_message")?.unwrap_or_default();
            failed(&code, &message, text("o_detail")?, text("o_constraint")?, c)
        }
        other => Err(corrupt(
            "mc_commit_batch result",
            format!("unknown kind {other:?}"),
        )),
    }
}

/// Maps the error a unit failed with to its typed form.
fn failed(
    code: &str,
    message: &str,
    detail: Option<String>,
    constraint: Option<String>,
    c: &ActionCommit,
) -> Result<Outcome, StoreError> {
    let missing = |what: &str| {
        corrupt(
            "mc_commit_batch error",
            format!("{what} without its detail"),
        )
    };
    let e = match (code, &c.transition, &c.create) {
        (SERIALIZATION_FAILURE | DEADLOCK_DETECTED, _, _) => {
            return Ok(Outcome::Again(format!("{message} (SQLSTATE {code})")));
        }
        ("MCC01", Some(t), _) => StoreError::NotFound {
            id: t.execution_id.to_string(),
        },
        ("MCC02", Some(t), _) => {
            let actual = detail
                .ok_or_else(|| missing("MCC02"))?
                .parse::<u64>()
                .map_err(|e| corrupt("version", e))?;
            StoreError::VersionConflict {
                id: t.execution_id.to_string(),
                expected: t.expected_version,
                actual,
            }
        }
        ("MCC03", Some(t), _) => {
            let from: ExecutionState = detail
                .ok_or_else(|| missing("MCC03"))?
                .parse()
                .map_err(|e| corrupt("state", e))?;
            StoreError::IllegalTransition {
                id: t.execution_id.to_string(),
                from,
                to: t.to,
            }
        }
        ("MCC04", _, Some(new)) => StoreError::AlreadyExists {
            id: new.id.to_string(),
        },
        ("MCC05", _, _) => {
            let d = detail.ok_or_else(|| missing("MCC05"))?;
            let (seq, hash) = d
                .split_once(' ')
                .ok_or_else(|| corrupt("audit head", d.clone()))?;
            let seq = seq
                .parse::<u64>()
                .map_err(|e| corrupt("audit head seq", e))?;
            return Ok(Outcome::StaleHead(seq, hash.to_string()));
        }
        _ => map_db(code, message, constraint.as_deref()),
    };
    Ok(Outcome::Failed(e))
}
