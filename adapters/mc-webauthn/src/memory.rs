//! In-memory [`StepUpStore`]: the embedded default, and the reference the
//! conformance suite is written against. State lives in one process, so single use
//! only holds within it — use [`PgStepUpStore`](crate::PgStepUpStore) for replicas.

use std::collections::HashMap;

use async_trait::async_trait;
use mc_core::{ActorId, TenantId};
use time::OffsetDateTime;
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::error::StoreError;
use crate::store::{PendingChallenge, PendingRegistration, StepUpStore, StoredPasskey};

#[derive(Default)]
struct State {
    registrations: HashMap<(TenantId, Uuid), PendingRegistration>,
    challenges: HashMap<(TenantId, Uuid), PendingChallenge>,
    /// Keyed by (tenant, credential id); insertion order kept in `order`.
    passkeys: HashMap<(TenantId, String), (u64, StoredPasskey)>,
    next_order: u64,
    used_grants: HashMap<Uuid, OffsetDateTime>,
}

/// A [`StepUpStore`] in process memory.
#[derive(Default)]
pub struct MemoryStepUpStore {
    state: Mutex<State>,
}

impl std::fmt::Debug for MemoryStepUpStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStepUpStore").finish_non_exhaustive()
    }
}

impl MemoryStepUpStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl StepUpStore for MemoryStepUpStore {
    async fn put_registration(&self, reg: PendingRegistration) -> Result<(), StoreError> {
        let mut s = self.state.lock().await;
        let key = (reg.tenant.clone(), reg.id);
        if s.registrations.contains_key(&key) {
            return Err(StoreError::Conflict("registration_id"));
        }
        s.registrations.insert(key, reg);
        Ok(())
    }

    async fn take_registration(
        &self,
        tenant: &TenantId,
        id: Uuid,
    ) -> Result<Option<PendingRegistration>, StoreError> {
        Ok(self
            .state
            .lock()
            .await
            .registrations
            .remove(&(tenant.clone(), id)))
    }

    async fn add_passkey(&self, passkey: StoredPasskey) -> Result<(), StoreError> {
        let mut s = self.state.lock().await;
        let key = (passkey.tenant.clone(), passkey.credential_id.clone());
        if s.passkeys.contains_key(&key) {
            return Err(StoreError::Conflict("credential_id"));
        }
        let order = s.next_order;
        s.next_order += 1;
        s.passkeys.insert(key, (order, passkey));
        Ok(())
    }

    async fn passkeys(
        &self,
        tenant: &TenantId,
        actor: &ActorId,
    ) -> Result<Vec<StoredPasskey>, StoreError> {
        let s = self.state.lock().await;
        let mut found: Vec<_> = s
            .passkeys
            .iter()
            .filter(|((t, _), (_, p))| t == tenant && &p.actor == actor)
            .map(|(_, (order, p))| (*order, p.clone()))
            .collect();
        found.sort_by_key(|(order, _)| *order);
        Ok(found.into_iter().map(|(_, p)| p).collect())
    }

    async fn update_passkey(&self, passkey: StoredPasskey) -> Result<(), StoreError> {
        let mut s = self.state.lock().await;
        let key = (passkey.tenant.clone(), passkey.credential_id.clone());
        if let Some((_, stored)) = s.passkeys.get_mut(&key) {
            // Never move a credential to another actor through an update.
            if stored.actor == passkey.actor {
                *stored = passkey;
            }
        }
        Ok(())
    }

    async fn put_challenge(&self, challenge: PendingChallenge) -> Result<(), StoreError> {
        let mut s = self.state.lock().await;
        let key = (challenge.binding.tenant.clone(), challenge.id);
        if s.challenges.contains_key(&key) {
            return Err(StoreError::Conflict("challenge_id"));
        }
        s.challenges.insert(key, challenge);
        Ok(())
    }

    async fn take_challenge(
        &self,
        tenant: &TenantId,
        id: Uuid,
    ) -> Result<Option<PendingChallenge>, StoreError> {
        Ok(self
            .state
            .lock()
            .await
            .challenges
            .remove(&(tenant.clone(), id)))
    }

    async fn consume_grant(
        &self,
        _tenant: &TenantId,
        grant_id: Uuid,
        expires_at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut s = self.state.lock().await;
        if s.used_grants.contains_key(&grant_id) {
            return Ok(false);
        }
        s.used_grants.insert(grant_id, expires_at);
        Ok(true)
    }

    async fn purge_expired(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let mut s = self.state.lock().await;
        let before = s.registrations.len() + s.challenges.len() + s.used_grants.len();
        s.registrations.retain(|_, r| r.expires_at >= now);
        s.challenges.retain(|_, c| c.expires_at >= now);
        s.used_grants.retain(|_, exp| *exp >= now);
        let after = s.registrations.len() + s.challenges.len() + s.used_grants.len();
        Ok((before - after) as u64)
    }
}
