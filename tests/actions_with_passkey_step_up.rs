//! Controlled Actions with a real WebAuthn step-up ceremony (software passkey):
//! the grant the ceremony yields is accepted by `mc-actions` for exactly the action it
//! was issued for, once; a step-up outage makes the console read-only.

use std::sync::Arc;

use mc_actions::{ActionError, ActionRequest, ActionService};
use mc_core::*;
use mc_webauthn::api::*;
use mc_webauthn::{GrantKey, MemoryStepUpStore, StepUpConfig, SwitchableStore, WebauthnStepUp};
use time::macros::datetime;
use url::Url;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

fn origin() -> Url {
    Url::parse("https://console.example.com").unwrap()
}

#[tokio::test]
async fn passkey_grant_authorises_exactly_one_action() {
    let clock = ManualClock::new(datetime!(2025-12-10 18:00 UTC));
    let store = MemoryStore::new();
    let flags = MemoryFlagStore::new();
    let (stepup_store, outage) = SwitchableStore::new(Arc::new(MemoryStepUpStore::new()));
    let stepup = WebauthnStepUp::new(
        StepUpConfig::new("example.com", origin(), GrantKey::new(vec![5; 32]).unwrap()),
        Arc::new(stepup_store),
        Arc::new(clock.clone()),
    )
    .unwrap();
    let service = ActionService::new(
        Arc::new(store.clone()),
        Arc::new(flags.clone()),
        Arc::new(stepup.clone()),
        Arc::new(clock.clone()),
    );
    let tenant = TenantId::new("acme").unwrap();
    flags
        .set(&tenant, Flag::ConsoleActionsEnabled, true)
        .await
        .unwrap();
    let alice = Actor::new(
        ActorId::new("alice@acme").unwrap(),
        tenant.clone(),
        ["operator"],
    );

    // A failed execution.
    let id = ExecutionId::new("exec_1").unwrap();
    let mut e = Execution::new(
        tenant.clone(),
        id.clone(),
        Digest::of(b"m"),
        Digest::of(b"i"),
        clock.now(),
    );
    e.state = ExecutionState::Failed;
    let mut unit = ActionCommit::new(tenant.clone(), clock.now());
    unit.create = Some(e);
    store.commit(unit).await.unwrap();

    // Alice enrols a passkey, then answers a challenge for "retry exec_1".
    let mut passkey = SoftPasskey::new(true);
    let reg = stepup
        .start_registration(&tenant, &alice.sub, RegistrationStartRequest::default())
        .await
        .unwrap();
    let credential = passkey.do_registration(origin(), reg.options).unwrap();
    stepup
        .finish_registration(
            &tenant,
            &alice.sub,
            RegistrationFinishRequest {
                registration_id: reg.registration_id,
                credential,
            },
        )
        .await
        .unwrap();
    let ch = stepup
        .start_challenge(
            &tenant,
            &alice.sub,
            ChallengeStartRequest {
                action: ActionKind::Retry,
                execution_id: id.clone(),
            },
        )
        .await
        .unwrap();
    let credential = passkey.do_authentication(origin(), ch.options).unwrap();
    let granted = stepup
        .finish_challenge(
            &tenant,
            &alice.sub,
            ChallengeFinishRequest {
                challenge_id: ch.challenge_id,
                credential,
            },
        )
        .await
        .unwrap();

    let request = |kind, key: &str, grant: Option<StepUpGrant>| ActionRequest {
        tenant: tenant.clone(),
        execution_id: id.clone(),
        kind,
        actor: alice.clone(),
        reason: "transient_error".into(),
        idempotency_key: IdempotencyKey::new(key).unwrap(),
        step_up: grant,
    };

    // The grant is for retry: a replay with it is refused and does not burn it.
    let err = service
        .perform(request(
            ActionKind::Replay,
            "k-replay",
            Some(granted.grant.clone()),
        ))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ActionError::StepUpRejected(StepUpError::Mismatch { field: "action" })
    );

    // A step-up outage: writes refused as read-only, reads keep working.
    outage.set_down(true);
    let err = service
        .perform(request(
            ActionKind::Retry,
            "k-retry",
            Some(granted.grant.clone()),
        ))
        .await
        .unwrap_err();
    assert!(matches!(err, ActionError::StepUpUnavailable(_)), "{err:?}");
    assert_eq!(
        service
            .allowed_actions(&alice, &tenant, &id)
            .await
            .unwrap()
            .len(),
        3
    );
    outage.set_down(false);

    // The retry it was issued for goes through.
    let outcome = service
        .perform(request(
            ActionKind::Retry,
            "k-retry",
            Some(granted.grant.clone()),
        ))
        .await
        .unwrap();
    assert_eq!(outcome.state, ExecutionState::Pending);
    assert_eq!(outcome.attempt, 2);

    // The same grant for another retry (new key) is refused: single use.
    clock.advance(time::Duration::seconds(30));
    let cur = store.get(&tenant, &id).await.unwrap();
    store
        .commit(ActionCommit::runtime_transition(
            &cur,
            ExecutionState::Failed,
            clock.now(),
        ))
        .await
        .unwrap();
    let err = service
        .perform(request(ActionKind::Retry, "k-retry-2", Some(granted.grant)))
        .await
        .unwrap_err();
    assert_eq!(err, ActionError::StepUpRejected(StepUpError::AlreadyUsed));

    let audit = store.read(&tenant, 0, 100).await.unwrap();
    assert_eq!(audit.len(), 1, "only the accepted retry is audited");
    verify_chain(&audit).unwrap();
}
