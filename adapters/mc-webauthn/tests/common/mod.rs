//! Shared harness: a step-up service over any store, a software passkey, and the
//! ceremony scenarios every backend runs.
#![allow(dead_code)]

use std::sync::Arc;

use mc_core::{
    ActionKind, ActorId, Clock, ExecutionId, ManualClock, StepUpBinding, StepUpError,
    StepUpVerifier, TenantId,
};
use mc_webauthn::api::*;
use mc_webauthn::{
    GrantKey, GrantSigner, PublicKeyCredential, StepUpConfig, StepUpStore, SwitchableStore,
    WebauthnStepUp, WebauthnStepUpError,
};
use time::Duration;
use time::macros::datetime;
use url::Url;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

pub const KEY: [u8; 32] = [42u8; 32];

pub fn origin() -> Url {
    Url::parse("https://console.example.com").unwrap()
}

pub fn tenant(s: &str) -> TenantId {
    TenantId::new(s).unwrap()
}
pub fn actor(s: &str) -> ActorId {
    ActorId::new(s).unwrap()
}
pub fn exec(s: &str) -> ExecutionId {
    ExecutionId::new(s).unwrap()
}

pub fn service(store: Arc<dyn StepUpStore>, clock: Arc<ManualClock>) -> WebauthnStepUp {
    let config = StepUpConfig::new(
        "example.com",
        origin(),
        GrantKey::new(KEY.to_vec()).unwrap(),
    );
    WebauthnStepUp::new(config, store, clock).unwrap()
}

/// One service, one clock, and alice@acme with a registered software passkey.
pub struct Harness {
    pub stepup: WebauthnStepUp,
    pub clock: Arc<ManualClock>,
    pub tenant: TenantId,
    pub alice: ActorId,
    pub passkey: SoftPasskey,
}

impl Harness {
    pub async fn new(store: Arc<dyn StepUpStore>) -> Self {
        let clock = Arc::new(ManualClock::new(datetime!(2025-12-10 18:00 UTC)));
        let stepup = service(store, clock.clone());
        let mut h = Harness {
            stepup,
            clock,
            tenant: tenant("acme"),
            alice: actor("alice@acme"),
            passkey: SoftPasskey::new(true),
        };
        let (t, a) = (h.tenant.clone(), h.alice.clone());
        let mut pk = SoftPasskey::new(true);
        h.register(&t, &a, &mut pk).await.unwrap();
        h.passkey = pk;
        h
    }

    pub async fn register(
        &self,
        tenant: &TenantId,
        actor: &ActorId,
        authenticator: &mut SoftPasskey,
    ) -> Result<RegistrationFinishResponse, WebauthnStepUpError> {
        let reg = self
            .stepup
            .start_registration(tenant, actor, RegistrationStartRequest::default())
            .await?;
        let credential = authenticator
            .do_registration(origin(), reg.options)
            .unwrap();
        self.stepup
            .finish_registration(
                tenant,
                actor,
                RegistrationFinishRequest {
                    registration_id: reg.registration_id,
                    credential,
                },
            )
            .await
    }

    pub async fn challenge(&self, action: ActionKind, execution: &str) -> ChallengeStartResponse {
        self.stepup
            .start_challenge(
                &self.tenant,
                &self.alice,
                ChallengeStartRequest {
                    action,
                    execution_id: exec(execution),
                },
            )
            .await
            .unwrap()
    }

    pub fn answer(&mut self, ch: &ChallengeStartResponse) -> PublicKeyCredential {
        self.passkey
            .do_authentication(origin(), ch.options.clone())
            .unwrap()
    }

    pub async fn finish(
        &self,
        challenge_id: uuid::Uuid,
        credential: PublicKeyCredential,
    ) -> Result<ChallengeFinishResponse, WebauthnStepUpError> {
        self.stepup
            .finish_challenge(
                &self.tenant,
                &self.alice,
                ChallengeFinishRequest {
                    challenge_id,
                    credential,
                },
            )
            .await
    }

    /// A full ceremony: challenge, assertion, grant.
    pub async fn grant(&mut self, action: ActionKind, execution: &str) -> ChallengeFinishResponse {
        let ch = self.challenge(action, execution).await;
        let cred = self.answer(&ch);
        self.finish(ch.challenge_id, cred).await.unwrap()
    }

    pub fn binding(&self, action: ActionKind, execution: &str) -> StepUpBinding {
        StepUpBinding {
            tenant: self.tenant.clone(),
            actor: self.alice.clone(),
            action,
            execution_id: exec(execution),
        }
    }
}

// ---------------------------------------------------------------- scenarios

pub async fn success(store: Arc<dyn StepUpStore>) {
    let mut h = Harness::new(store).await;
    let start = h.clock.now();
    let ch = h.challenge(ActionKind::Cancel, "exec_1").await;
    assert_eq!(ch.expires_at, start + Duration::minutes(5));
    assert_eq!(ch.binding, h.binding(ActionKind::Cancel, "exec_1"));
    // The options the browser gets are JSON and name the relying party.
    let options = serde_json::to_value(&ch.options).unwrap();
    assert_eq!(options["publicKey"]["rpId"], "example.com");

    h.clock.advance(Duration::minutes(4));
    let cred = h.answer(&ch);
    let granted = h.finish(ch.challenge_id, cred).await.unwrap();
    assert_eq!(granted.binding, h.binding(ActionKind::Cancel, "exec_1"));
    assert_eq!(
        granted.expires_at,
        start + Duration::minutes(4) + Duration::minutes(5)
    );
    let claims = h.stepup.signer().verify_signature(&granted.grant).unwrap();
    assert_eq!(claims.binding, granted.binding);

    h.stepup
        .verify_and_consume(
            &granted.grant,
            &h.binding(ActionKind::Cancel, "exec_1"),
            h.clock.now() + Duration::minutes(4),
        )
        .await
        .unwrap();
}

pub async fn replayed_assertion(store: Arc<dyn StepUpStore>) {
    let mut h = Harness::new(store).await;
    let ch = h.challenge(ActionKind::Retry, "exec_1").await;
    let cred = h.answer(&ch);
    h.finish(ch.challenge_id, cred.clone()).await.unwrap();
    // Same assertion, same challenge: the challenge was consumed.
    assert_eq!(
        h.finish(ch.challenge_id, cred.clone()).await.unwrap_err(),
        WebauthnStepUpError::ChallengeNotFound
    );
    // Same assertion against a fresh challenge for the same action: it signs the
    // old challenge bytes, so it is refused.
    let fresh = h.challenge(ActionKind::Retry, "exec_1").await;
    assert_eq!(
        h.finish(fresh.challenge_id, cred).await.unwrap_err(),
        WebauthnStepUpError::ChallengeMismatch
    );
}

pub async fn assertion_for_another_challenge(store: Arc<dyn StepUpStore>) {
    let mut h = Harness::new(store).await;
    let cancel = h.challenge(ActionKind::Cancel, "exec_1").await;
    let replay = h.challenge(ActionKind::Replay, "exec_2").await;
    let for_cancel = h.answer(&cancel);
    // An assertion obtained for the cancel challenge cannot unlock the replay one.
    assert_eq!(
        h.finish(replay.challenge_id, for_cancel.clone())
            .await
            .unwrap_err(),
        WebauthnStepUpError::ChallengeMismatch
    );
    // The attacked challenge is burned; the legitimate one still works.
    let for_replay = h.answer(&replay);
    assert_eq!(
        h.finish(replay.challenge_id, for_replay).await.unwrap_err(),
        WebauthnStepUpError::ChallengeNotFound
    );
    let granted = h.finish(cancel.challenge_id, for_cancel).await.unwrap();
    assert_eq!(granted.binding.action, ActionKind::Cancel);
}

pub async fn wrong_origin(store: Arc<dyn StepUpStore>) {
    let mut h = Harness::new(store).await;
    let phishing = Url::parse("https://phish.example.com").unwrap();
    let ch = h.challenge(ActionKind::Cancel, "exec_1").await;
    let cred = h
        .passkey
        .do_authentication(phishing.clone(), ch.options.clone())
        .unwrap();
    assert_eq!(
        h.finish(ch.challenge_id, cred).await.unwrap_err(),
        WebauthnStepUpError::WrongOrigin
    );
    // Registration from a foreign origin is refused the same way.
    let bob = actor("bob@acme");
    let reg = h
        .stepup
        .start_registration(&h.tenant, &bob, RegistrationStartRequest::default())
        .await
        .unwrap();
    let credential = SoftPasskey::new(true)
        .do_registration(phishing, reg.options)
        .unwrap();
    assert_eq!(
        h.stepup
            .finish_registration(
                &h.tenant,
                &bob,
                RegistrationFinishRequest {
                    registration_id: reg.registration_id,
                    credential
                }
            )
            .await
            .unwrap_err(),
        WebauthnStepUpError::WrongOrigin
    );
}

pub async fn expired_challenge(store: Arc<dyn StepUpStore>) {
    let mut h = Harness::new(store).await;
    let late = h.challenge(ActionKind::Cancel, "exec_1").await;
    let cred = h.answer(&late);
    h.clock.advance(Duration::minutes(5));
    assert_eq!(
        h.finish(late.challenge_id, cred).await.unwrap_err(),
        WebauthnStepUpError::Expired("challenge")
    );
    // One second before the deadline is still fine.
    let just_in_time = h.challenge(ActionKind::Cancel, "exec_1").await;
    let cred = h.answer(&just_in_time);
    h.clock.advance(Duration::minutes(5) - Duration::seconds(1));
    h.finish(just_in_time.challenge_id, cred).await.unwrap();
}

pub async fn grant_reused(store: Arc<dyn StepUpStore>) {
    let mut h = Harness::new(store).await;
    let granted = h.grant(ActionKind::Cancel, "exec_1").await;
    let binding = h.binding(ActionKind::Cancel, "exec_1");
    let now = h.clock.now();
    h.stepup
        .verify_and_consume(&granted.grant, &binding, now)
        .await
        .unwrap();
    assert_eq!(
        h.stepup
            .verify_and_consume(&granted.grant, &binding, now)
            .await,
        Err(StepUpError::AlreadyUsed)
    );
    // A second verifier with the same key and store (another replica) agrees.
    let replica = service(h.stepup.store().clone(), h.clock.clone());
    assert_eq!(
        replica
            .verify_and_consume(&granted.grant, &binding, now)
            .await,
        Err(StepUpError::AlreadyUsed)
    );
}

pub async fn grant_expired(store: Arc<dyn StepUpStore>) {
    let mut h = Harness::new(store).await;
    let granted = h.grant(ActionKind::Cancel, "exec_1").await;
    let binding = h.binding(ActionKind::Cancel, "exec_1");
    assert_eq!(
        h.stepup
            .verify_and_consume(&granted.grant, &binding, granted.expires_at)
            .await,
        Err(StepUpError::Expired)
    );
}

pub async fn grant_for_another_execution_or_action(store: Arc<dyn StepUpStore>) {
    let mut h = Harness::new(store).await;
    let granted = h.grant(ActionKind::Cancel, "exec_1").await;
    let now = h.clock.now();
    assert_eq!(
        h.stepup
            .verify_and_consume(
                &granted.grant,
                &h.binding(ActionKind::Cancel, "exec_2"),
                now
            )
            .await,
        Err(StepUpError::Mismatch {
            field: "execution_id"
        })
    );
    assert_eq!(
        h.stepup
            .verify_and_consume(
                &granted.grant,
                &h.binding(ActionKind::Replay, "exec_1"),
                now
            )
            .await,
        Err(StepUpError::Mismatch { field: "action" })
    );
    // A refused attempt does not burn the grant for its rightful use.
    h.stepup
        .verify_and_consume(
            &granted.grant,
            &h.binding(ActionKind::Cancel, "exec_1"),
            now,
        )
        .await
        .unwrap();
}

pub async fn grant_of_another_actor_or_tenant(store: Arc<dyn StepUpStore>) {
    let mut h = Harness::new(store).await;
    let granted = h.grant(ActionKind::Retry, "exec_1").await;
    let now = h.clock.now();
    let mut as_bob = h.binding(ActionKind::Retry, "exec_1");
    as_bob.actor = actor("bob@acme");
    assert_eq!(
        h.stepup
            .verify_and_consume(&granted.grant, &as_bob, now)
            .await,
        Err(StepUpError::Mismatch { field: "actor" })
    );
    let mut in_globex = h.binding(ActionKind::Retry, "exec_1");
    in_globex.tenant = tenant("globex");
    assert_eq!(
        h.stepup
            .verify_and_consume(&granted.grant, &in_globex, now)
            .await,
        Err(StepUpError::Mismatch { field: "tenant" })
    );
}

pub async fn forged_grants(store: Arc<dyn StepUpStore>) {
    let mut h = Harness::new(store).await;
    let granted = h.grant(ActionKind::Cancel, "exec_1").await;
    let binding = h.binding(ActionKind::Cancel, "exec_1");
    let now = h.clock.now();
    // Issued with another key (a forger who knows the format but not the secret).
    let forger = GrantSigner::new(GrantKey::new(vec![7u8; 32]).unwrap());
    let (forged, _) = forger.issue(&binding, now, Duration::minutes(5));
    assert_eq!(
        h.stepup.verify_and_consume(&forged, &binding, now).await,
        Err(StepUpError::Invalid)
    );
    // One character of the signature flipped.
    let mut token = granted.grant.expose().to_string();
    let last = token.pop().unwrap();
    token.push(if last == 'A' { 'B' } else { 'A' });
    assert_eq!(
        h.stepup
            .verify_and_consume(&mc_core::StepUpGrant::new(token), &binding, now)
            .await,
        Err(StepUpError::Invalid)
    );
}

pub async fn challenge_of_another_actor_or_tenant(store: Arc<dyn StepUpStore>) {
    let mut h = Harness::new(store).await;
    let bob = actor("bob@acme");
    h.register(&h.tenant.clone(), &bob, &mut SoftPasskey::new(true))
        .await
        .unwrap();
    let ch = h.challenge(ActionKind::Cancel, "exec_1").await;
    let cred = h.answer(&ch);
    // Bob cannot finish (and thereby obtain a grant from) alice's challenge.
    assert_eq!(
        h.stepup
            .finish_challenge(
                &h.tenant,
                &bob,
                ChallengeFinishRequest {
                    challenge_id: ch.challenge_id,
                    credential: cred.clone()
                }
            )
            .await
            .unwrap_err(),
        WebauthnStepUpError::Mismatch { field: "actor" }
    );
    // In another tenant the id does not even exist.
    let ch2 = h.challenge(ActionKind::Cancel, "exec_1").await;
    let cred2 = h.answer(&ch2);
    assert_eq!(
        h.stepup
            .finish_challenge(
                &tenant("globex"),
                &h.alice,
                ChallengeFinishRequest {
                    challenge_id: ch2.challenge_id,
                    credential: cred2.clone()
                }
            )
            .await
            .unwrap_err(),
        WebauthnStepUpError::ChallengeNotFound
    );
    h.finish(ch2.challenge_id, cred2).await.unwrap();
}

pub async fn registration_rules(store: Arc<dyn StepUpStore>) {
    let mut h = Harness::new(store).await;
    // No passkey, no challenge.
    let carol = actor("carol@acme");
    assert_eq!(
        h.stepup
            .start_challenge(
                &h.tenant,
                &carol,
                ChallengeStartRequest {
                    action: ActionKind::Cancel,
                    execution_id: exec("exec_1")
                }
            )
            .await
            .unwrap_err(),
        WebauthnStepUpError::NoPasskey
    );
    // A second authenticator for alice; both can answer.
    let mut second = SoftPasskey::new(true);
    let (t, a) = (h.tenant.clone(), h.alice.clone());
    h.register(&t, &a, &mut second).await.unwrap();
    assert_eq!(h.stepup.store().passkeys(&t, &a).await.unwrap().len(), 2);
    let ch = h.challenge(ActionKind::Cancel, "exec_1").await;
    let cred = second
        .do_authentication(origin(), ch.options.clone())
        .unwrap();
    h.finish(ch.challenge_id, cred).await.unwrap();
    let _ = h.grant(ActionKind::Cancel, "exec_1").await;

    // Carol cannot finish alice's registration.
    let reg = h
        .stepup
        .start_registration(&t, &a, RegistrationStartRequest::default())
        .await
        .unwrap();
    let credential = SoftPasskey::new(true)
        .do_registration(origin(), reg.options)
        .unwrap();
    assert_eq!(
        h.stepup
            .finish_registration(
                &t,
                &carol,
                RegistrationFinishRequest {
                    registration_id: reg.registration_id,
                    credential
                }
            )
            .await
            .unwrap_err(),
        WebauthnStepUpError::Mismatch { field: "actor" }
    );
    // Bad display names are refused, naming the field.
    let err = h
        .stepup
        .start_registration(
            &t,
            &a,
            RegistrationStartRequest {
                display_name: Some("x\u{0}y".into()),
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        WebauthnStepUpError::BadRequest {
            field: "display_name",
            ..
        }
    ));
}

/// Spec §8: with the store down, challenge start and grant verification fail with
/// the read-only outage error; a grant presented during the outage is not burned.
pub async fn outage(store: Arc<dyn StepUpStore>) {
    let (switchable, switch) = SwitchableStore::new(store);
    let mut h = Harness::new(Arc::new(switchable)).await;
    let granted = h.grant(ActionKind::Cancel, "exec_1").await;
    let binding = h.binding(ActionKind::Cancel, "exec_1");

    switch.set_down(true);
    let err = h
        .stepup
        .start_challenge(
            &h.tenant,
            &h.alice,
            ChallengeStartRequest {
                action: ActionKind::Cancel,
                execution_id: exec("exec_1"),
            },
        )
        .await
        .unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("step-up unavailable, console is read-only"),
        "{err}"
    );
    let now = h.clock.now();
    let refused = h
        .stepup
        .verify_and_consume(&granted.grant, &binding, now)
        .await
        .unwrap_err();
    assert!(
        matches!(refused, StepUpError::Unavailable(_)),
        "{refused:?}"
    );
    assert!(
        refused
            .to_string()
            .starts_with("step-up unavailable, console is read-only")
    );
    // Forged grants are still told apart from the outage (no store needed).
    assert_eq!(
        h.stepup
            .verify_and_consume(&mc_core::StepUpGrant::new("nope"), &binding, now)
            .await,
        Err(StepUpError::Invalid)
    );

    switch.set_down(false);
    h.stepup
        .verify_and_consume(&granted.grant, &binding, now)
        .await
        .unwrap();
}

/// Generates one `#[tokio::test]` per scenario for a backend: `$make` is an async
/// fn returning `(Arc<dyn StepUpStore>, context)`, `$cleanup` an async fn taking the
/// context back once the scenario passed.
#[macro_export]
macro_rules! scenario_tests {
    ($make:path, $cleanup:path) => {
        $crate::scenario_tests!(@each $make, $cleanup;
            success, replayed_assertion, assertion_for_another_challenge, wrong_origin,
            expired_challenge, grant_reused, grant_expired,
            grant_for_another_execution_or_action, grant_of_another_actor_or_tenant,
            forged_grants, challenge_of_another_actor_or_tenant, registration_rules, outage);
    };
    (@each $make:path, $cleanup:path; $($name:ident),*) => {
        $(
            #[tokio::test]
            async fn $name() {
                let (store, context) = $make().await;
                common::$name(store).await;
                $cleanup(context).await;
            }
        )*
    };
}
