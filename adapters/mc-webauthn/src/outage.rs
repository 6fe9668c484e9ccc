//! A store wrapper that can be switched "down", to rehearse the spec §8 step-up
//! outage: while down every call fails with [`StoreError::Unavailable`], so challenge
//! start and grant verification refuse with "step-up unavailable, console is
//! read-only" while reads elsewhere keep working.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use mc_core::{ActorId, TenantId};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::StoreError;
use crate::store::{PendingChallenge, PendingRegistration, StepUpStore, StoredPasskey};

/// Wraps a [`StepUpStore`]; [`OutageSwitch::set_down`] makes it unavailable.
#[derive(Clone)]
pub struct SwitchableStore {
    inner: Arc<dyn StepUpStore>,
    switch: OutageSwitch,
}

/// The handle that takes a [`SwitchableStore`] down and up again. Clones share state.
#[derive(Debug, Clone, Default)]
pub struct OutageSwitch {
    down: Arc<AtomicBool>,
}

impl OutageSwitch {
    /// Marks the backend down (`true`) or up (`false`).
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// Whether the backend is marked down.
    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::SeqCst)
    }
}

impl std::fmt::Debug for SwitchableStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SwitchableStore")
            .field("down", &self.switch.is_down())
            .finish_non_exhaustive()
    }
}

impl SwitchableStore {
    /// Wraps `inner`, initially up. Returns the store and its switch.
    pub fn new(inner: Arc<dyn StepUpStore>) -> (Self, OutageSwitch) {
        let switch = OutageSwitch::default();
        (
            SwitchableStore {
                inner,
                switch: switch.clone(),
            },
            switch,
        )
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.switch.is_down() {
            Err(StoreError::Unavailable(
                "backend switched down (outage drill)".to_string(),
            ))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl StepUpStore for SwitchableStore {
    async fn put_registration(&self, reg: PendingRegistration) -> Result<(), StoreError> {
        self.check()?;
        self.inner.put_registration(reg).await
    }
    async fn take_registration(
        &self,
        tenant: &TenantId,
        id: Uuid,
    ) -> Result<Option<PendingRegistration>, StoreError> {
        self.check()?;
        self.inner.take_registration(tenant, id).await
    }
    async fn add_passkey(&self, passkey: StoredPasskey) -> Result<(), StoreError> {
        self.check()?;
        self.inner.add_passkey(passkey).await
    }
    async fn passkeys(
        &self,
        tenant: &TenantId,
        actor: &ActorId,
    ) -> Result<Vec<StoredPasskey>, StoreError> {
        self.check()?;
        self.inner.passkeys(tenant, actor).await
    }
    async fn update_passkey(&self, passkey: StoredPasskey) -> Result<(), StoreError> {
        self.check()?;
        self.inner.update_passkey(passkey).await
    }
    async fn put_challenge(&self, challenge: PendingChallenge) -> Result<(), StoreError> {
        self.check()?;
        self.inner.put_challenge(challenge).await
    }
    async fn take_challenge(
        &self,
        tenant: &TenantId,
        id: Uuid,
    ) -> Result<Option<PendingChallenge>, StoreError> {
        self.check()?;
        self.inner.take_challenge(tenant, id).await
    }
    async fn consume_grant(
        &self,
        tenant: &TenantId,
        grant_id: Uuid,
        expires_at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.check()?;
        self.inner.consume_grant(tenant, grant_id, expires_at).await
    }
    async fn purge_expired(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        self.check()?;
        self.inner.purge_expired(now).await
    }
}
