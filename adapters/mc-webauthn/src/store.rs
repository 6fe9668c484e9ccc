//! Persistence of passkeys, ceremony state and used grant ids.
//!
//! The store is deliberately small: the service decides, the store only keeps
//! records and enforces the two rules that must hold across replicas —
//! *take* is an atomic delete-returning (a challenge is answered at most once), and
//! *consume_grant* is an insert on a unique grant id (a grant is used at most once).

use async_trait::async_trait;
use mc_core::{ActorId, StepUpBinding, TenantId};
use time::OffsetDateTime;
use uuid::Uuid;
use webauthn_rs::prelude::{Passkey, PasskeyAuthentication, PasskeyRegistration};

use crate::error::StoreError;

/// A pending passkey registration (between start and finish).
#[derive(Debug, Clone)]
pub struct PendingRegistration {
    /// Registration id handed to the client.
    pub id: Uuid,
    /// Tenant of the actor registering.
    pub tenant: TenantId,
    /// Actor registering a passkey.
    pub actor: ActorId,
    /// webauthn-rs state; never leaves the server (it would enable replays).
    pub state: PasskeyRegistration,
    /// First instant at which the registration can no longer be finished.
    pub expires_at: OffsetDateTime,
}

/// A pending step-up challenge (between start and finish).
#[derive(Debug, Clone)]
pub struct PendingChallenge {
    /// Challenge id handed to the client.
    pub id: Uuid,
    /// Tenant, actor, action and execution this challenge was issued for.
    pub binding: StepUpBinding,
    /// webauthn-rs state; never leaves the server.
    pub state: PasskeyAuthentication,
    /// First instant at which the challenge can no longer be answered.
    pub expires_at: OffsetDateTime,
}

/// A registered passkey of an actor.
#[derive(Debug, Clone)]
pub struct StoredPasskey {
    /// Tenant.
    pub tenant: TenantId,
    /// Owner.
    pub actor: ActorId,
    /// Credential id, base64url without padding (unique per tenant).
    pub credential_id: String,
    /// The passkey (public key, counter, ...).
    pub passkey: Passkey,
}

/// Where the step-up service keeps its state. Implementations: [`MemoryStepUpStore`],
/// [`PgStepUpStore`], and the outage wrapper [`SwitchableStore`].
///
/// Every method returns [`StoreError::Unavailable`] when the backend cannot be
/// reached; the service turns that into the spec §8 outage error.
///
/// [`MemoryStepUpStore`]: crate::MemoryStepUpStore
/// [`PgStepUpStore`]: crate::PgStepUpStore
/// [`SwitchableStore`]: crate::SwitchableStore
#[async_trait]
pub trait StepUpStore: Send + Sync {
    /// Saves a pending registration.
    async fn put_registration(&self, reg: PendingRegistration) -> Result<(), StoreError>;

    /// Removes and returns the pending registration `id` of `tenant`, atomically:
    /// two concurrent takes of the same id give it to at most one caller.
    async fn take_registration(
        &self,
        tenant: &TenantId,
        id: Uuid,
    ) -> Result<Option<PendingRegistration>, StoreError>;

    /// Adds a passkey.
    ///
    /// # Errors
    /// [`StoreError::Conflict`]`("credential_id")` when the credential id is already
    /// registered in the tenant (to any actor).
    async fn add_passkey(&self, passkey: StoredPasskey) -> Result<(), StoreError>;

    /// The passkeys of `actor` in `tenant`, oldest first.
    async fn passkeys(
        &self,
        tenant: &TenantId,
        actor: &ActorId,
    ) -> Result<Vec<StoredPasskey>, StoreError>;

    /// Replaces a stored passkey (its signature counter / backup state changed).
    /// Unknown passkeys are ignored.
    async fn update_passkey(&self, passkey: StoredPasskey) -> Result<(), StoreError>;

    /// Saves a pending step-up challenge.
    async fn put_challenge(&self, challenge: PendingChallenge) -> Result<(), StoreError>;

    /// Removes and returns the pending challenge `id` of `tenant`, atomically (a
    /// challenge can be answered at most once, across replicas).
    async fn take_challenge(
        &self,
        tenant: &TenantId,
        id: Uuid,
    ) -> Result<Option<PendingChallenge>, StoreError>;

    /// Records grant `grant_id` as used. Returns `true` the first time, `false` if it
    /// was already recorded (by this or any other replica). `expires_at` lets
    /// [`purge_expired`](Self::purge_expired) forget the id once the grant is dead.
    async fn consume_grant(
        &self,
        tenant: &TenantId,
        grant_id: Uuid,
        expires_at: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// Deletes registrations and challenges that expired before `now`, and used-grant
    /// ids whose grant expired before `now` (an expired grant is refused anyway).
    /// Returns how many records were deleted.
    async fn purge_expired(&self, now: OffsetDateTime) -> Result<u64, StoreError>;
}
