//! Conformance suite for [`StepUpStore`] implementations (feature `testkit`).
//!
//! Every store — memory, PostgreSQL, yours — runs [`step_up_store_conformance`]
//! unchanged; a store is correct when it passes. The suite panics (it is test code)
//! with a message naming the broken rule.

use mc_core::{ActionKind, ActorId, ExecutionId, StepUpBinding, TenantId};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use url::Url;
use uuid::Uuid;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs::prelude::{
    Passkey, PasskeyAuthentication, PasskeyRegistration, Webauthn, WebauthnBuilder,
};

use crate::error::StoreError;
use crate::store::{PendingChallenge, PendingRegistration, StepUpStore, StoredPasskey};

/// Real webauthn-rs values to store: two passkeys made by software authenticators,
/// one registration state and one authentication state.
#[derive(Debug, Clone)]
pub struct Fixtures {
    /// The relying party the values belong to (`example.com`).
    pub webauthn: Webauthn,
    /// Two distinct passkeys.
    pub passkeys: [Passkey; 2],
    /// A pending registration state.
    pub registration: PasskeyRegistration,
    /// A pending authentication state over both passkeys.
    pub authentication: PasskeyAuthentication,
}

impl Fixtures {
    /// Generates fresh fixtures with `SoftPasskey` authenticators.
    ///
    /// # Panics
    /// If webauthn-rs or the software authenticator fail (a broken dependency).
    pub fn generate() -> Self {
        let origin = Url::parse("https://console.example.com").expect("static url");
        let webauthn = WebauthnBuilder::new("example.com", &origin)
            .and_then(WebauthnBuilder::build)
            .expect("static relying party");
        let make = |name: &str| {
            let (ccr, reg) = webauthn
                .start_passkey_registration(Uuid::new_v4(), name, name, None)
                .expect("start registration");
            let mut authenticator = SoftPasskey::new(true);
            let credential = authenticator
                .do_registration(origin.clone(), ccr)
                .expect("soft passkey registers");
            webauthn
                .finish_passkey_registration(&credential, &reg)
                .expect("registration verifies")
        };
        let passkeys = [make("fixture-a"), make("fixture-b")];
        let (_, registration) = webauthn
            .start_passkey_registration(Uuid::new_v4(), "pending", "pending", None)
            .expect("start registration");
        let (_, authentication) = webauthn
            .start_passkey_authentication(&passkeys)
            .expect("start authentication");
        Fixtures {
            webauthn,
            passkeys,
            registration,
            authentication,
        }
    }
}

fn json<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).expect("webauthn-rs values serialise")
}

fn cred(p: &Passkey) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(p.cred_id())
}

const T0: OffsetDateTime = datetime!(2025-12-10 18:00 UTC);

/// Runs every rule of the [`StepUpStore`] contract against `store`. Uses tenants
/// with a random suffix, so it can run on a store shared with other tests.
///
/// # Panics
/// On the first broken rule, with a message naming it.
pub async fn step_up_store_conformance(store: &dyn StepUpStore, fx: &Fixtures) {
    let run = &Uuid::new_v4().simple().to_string()[..12];
    let tenant = TenantId::new(format!("conf-{run}")).expect("valid tenant");
    let other_tenant = TenantId::new(format!("conf-other-{run}")).expect("valid tenant");
    let alice = ActorId::new("alice@acme").expect("valid actor");
    let bob = ActorId::new("bob@acme").expect("valid actor");
    let far = T0 + Duration::days(365);

    passkeys_are_tenant_scoped_and_unique(store, fx, &tenant, &other_tenant, &alice, &bob).await;
    registrations_are_taken_once(store, fx, &tenant, &other_tenant, &alice, far).await;
    challenges_are_taken_once(store, fx, &tenant, &other_tenant, &alice, far).await;
    grants_are_consumed_once(store, &tenant, far).await;
    purge_forgets_only_expired_records(store, fx, &tenant, &alice).await;
}

async fn passkeys_are_tenant_scoped_and_unique(
    store: &dyn StepUpStore,
    fx: &Fixtures,
    tenant: &TenantId,
    other_tenant: &TenantId,
    alice: &ActorId,
    bob: &ActorId,
) {
    let stored = |t: &TenantId, a: &ActorId, i: usize| StoredPasskey {
        tenant: t.clone(),
        actor: a.clone(),
        credential_id: cred(&fx.passkeys[i]),
        passkey: fx.passkeys[i].clone(),
    };
    assert!(
        store
            .passkeys(tenant, alice)
            .await
            .expect("passkeys")
            .is_empty(),
        "a new actor has no passkeys"
    );
    store
        .add_passkey(stored(tenant, alice, 0))
        .await
        .expect("add first passkey");
    assert_eq!(
        store.add_passkey(stored(tenant, alice, 0)).await,
        Err(StoreError::Conflict("credential_id")),
        "the same credential cannot be added twice"
    );
    assert_eq!(
        store.add_passkey(stored(tenant, bob, 0)).await,
        Err(StoreError::Conflict("credential_id")),
        "a credential belongs to one actor per tenant"
    );
    store
        .add_passkey(stored(other_tenant, alice, 0))
        .await
        .expect("credential ids are unique per tenant, not globally");
    store
        .add_passkey(stored(tenant, alice, 1))
        .await
        .expect("add second passkey");

    let listed = store.passkeys(tenant, alice).await.expect("passkeys");
    let ids: Vec<_> = listed.iter().map(|p| p.credential_id.clone()).collect();
    assert_eq!(
        ids,
        vec![cred(&fx.passkeys[0]), cred(&fx.passkeys[1])],
        "passkeys listed oldest first"
    );
    assert_eq!(
        json(&listed[0].passkey),
        json(&fx.passkeys[0]),
        "a passkey round-trips unchanged"
    );
    assert!(
        listed
            .iter()
            .all(|p| &p.tenant == tenant && &p.actor == alice)
    );
    assert!(
        store
            .passkeys(tenant, bob)
            .await
            .expect("passkeys")
            .is_empty(),
        "bob does not see alice's passkeys"
    );
    assert_eq!(
        store
            .passkeys(other_tenant, alice)
            .await
            .expect("passkeys")
            .len(),
        1,
        "tenants do not share passkeys"
    );

    store
        .update_passkey(stored(tenant, bob, 0))
        .await
        .expect("update of a foreign passkey is ignored");
    assert!(
        store
            .passkeys(tenant, bob)
            .await
            .expect("passkeys")
            .is_empty(),
        "an update never moves a credential to another actor"
    );
    store
        .update_passkey(stored(tenant, alice, 0))
        .await
        .expect("update");
    assert_eq!(
        store.passkeys(tenant, alice).await.expect("passkeys").len(),
        2
    );
}

async fn registrations_are_taken_once(
    store: &dyn StepUpStore,
    fx: &Fixtures,
    tenant: &TenantId,
    other_tenant: &TenantId,
    alice: &ActorId,
    far: OffsetDateTime,
) {
    let reg = PendingRegistration {
        id: Uuid::new_v4(),
        tenant: tenant.clone(),
        actor: alice.clone(),
        state: fx.registration.clone(),
        expires_at: far,
    };
    store
        .put_registration(reg.clone())
        .await
        .expect("put registration");
    assert_eq!(
        store.put_registration(reg.clone()).await,
        Err(StoreError::Conflict("registration_id")),
        "registration ids are unique"
    );
    assert!(
        store
            .take_registration(other_tenant, reg.id)
            .await
            .expect("take")
            .is_none(),
        "another tenant cannot take the registration"
    );
    let taken = store
        .take_registration(tenant, reg.id)
        .await
        .expect("take")
        .expect("registration is there");
    assert_eq!(
        (&taken.tenant, &taken.actor, taken.expires_at),
        (tenant, alice, far)
    );
    assert_eq!(
        json(&taken.state),
        json(&fx.registration),
        "state round-trips"
    );
    assert!(
        store
            .take_registration(tenant, reg.id)
            .await
            .expect("take")
            .is_none(),
        "a registration is taken at most once"
    );
}

async fn challenges_are_taken_once(
    store: &dyn StepUpStore,
    fx: &Fixtures,
    tenant: &TenantId,
    other_tenant: &TenantId,
    alice: &ActorId,
    far: OffsetDateTime,
) {
    let challenge = PendingChallenge {
        id: Uuid::new_v4(),
        binding: StepUpBinding {
            tenant: tenant.clone(),
            actor: alice.clone(),
            action: ActionKind::Replay,
            execution_id: ExecutionId::new("exec_conf.1").expect("valid id"),
        },
        state: fx.authentication.clone(),
        expires_at: far,
    };
    store
        .put_challenge(challenge.clone())
        .await
        .expect("put challenge");
    assert_eq!(
        store.put_challenge(challenge.clone()).await,
        Err(StoreError::Conflict("challenge_id")),
        "challenge ids are unique"
    );
    assert!(
        store
            .take_challenge(other_tenant, challenge.id)
            .await
            .expect("take")
            .is_none(),
        "another tenant cannot take the challenge"
    );
    let (a, b) = tokio::join!(
        store.take_challenge(tenant, challenge.id),
        store.take_challenge(tenant, challenge.id)
    );
    let taken: Vec<_> = [a.expect("take"), b.expect("take")]
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(taken.len(), 1, "two concurrent takes: exactly one wins");
    assert_eq!(taken[0].binding, challenge.binding, "binding round-trips");
    assert_eq!(taken[0].expires_at, far);
    assert_eq!(
        json(&taken[0].state),
        json(&fx.authentication),
        "state round-trips"
    );
    assert!(
        store
            .take_challenge(tenant, challenge.id)
            .await
            .expect("take")
            .is_none(),
        "a challenge is taken at most once"
    );
}

async fn grants_are_consumed_once(store: &dyn StepUpStore, tenant: &TenantId, far: OffsetDateTime) {
    let id = Uuid::new_v4();
    assert!(store.consume_grant(tenant, id, far).await.expect("consume"));
    assert!(
        !store.consume_grant(tenant, id, far).await.expect("consume"),
        "a grant id is consumed once"
    );
    let racing = Uuid::new_v4();
    let (a, b, c, d) = tokio::join!(
        store.consume_grant(tenant, racing, far),
        store.consume_grant(tenant, racing, far),
        store.consume_grant(tenant, racing, far),
        store.consume_grant(tenant, racing, far)
    );
    let wins = [a, b, c, d]
        .into_iter()
        .map(|r| r.expect("consume"))
        .filter(|won| *won)
        .count();
    assert_eq!(wins, 1, "four concurrent consumers: exactly one wins");
}

async fn purge_forgets_only_expired_records(
    store: &dyn StepUpStore,
    fx: &Fixtures,
    tenant: &TenantId,
    alice: &ActorId,
) {
    let reg_id = Uuid::new_v4();
    store
        .put_registration(PendingRegistration {
            id: reg_id,
            tenant: tenant.clone(),
            actor: alice.clone(),
            state: fx.registration.clone(),
            expires_at: T0,
        })
        .await
        .expect("put registration");
    let live = PendingChallenge {
        id: Uuid::new_v4(),
        binding: StepUpBinding {
            tenant: tenant.clone(),
            actor: alice.clone(),
            action: ActionKind::Cancel,
            execution_id: ExecutionId::new("exec_conf.2").expect("valid id"),
        },
        state: fx.authentication.clone(),
        expires_at: T0 + Duration::minutes(10),
    };
    store
        .put_challenge(live.clone())
        .await
        .expect("put challenge");
    let grant = Uuid::new_v4();
    assert!(
        store
            .consume_grant(tenant, grant, T0)
            .await
            .expect("consume")
    );

    let purged = store
        .purge_expired(T0 + Duration::seconds(1))
        .await
        .expect("purge");
    assert!(
        purged >= 2,
        "expired registration and used grant purged, got {purged}"
    );
    assert!(
        store
            .take_registration(tenant, reg_id)
            .await
            .expect("take")
            .is_none(),
        "expired registration is gone"
    );
    assert!(
        store
            .take_challenge(tenant, live.id)
            .await
            .expect("take")
            .is_some(),
        "a live challenge survives the purge"
    );
    assert!(
        store
            .consume_grant(tenant, grant, T0)
            .await
            .expect("consume"),
        "an expired grant's id is forgotten (the grant is refused as expired anyway)"
    );
}
