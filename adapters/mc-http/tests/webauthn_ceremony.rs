//! A full passkey step-up ceremony over HTTP: registration, challenge, assertion
//! (webauthn-authenticator-rs `SoftPasskey` stands in for the browser), grant, action.

use std::sync::Arc;

use mc_actions::ActionService;
use mc_core::{
    ActionCommit, Actor, ActorId, Clock, Digest, Execution, ExecutionId, ExecutionState,
    ExecutionStore, Flag, FlagStore, MemoryFlagStore, MemoryStore, SystemClock, TenantId,
};
use mc_http::{AppState, Principal, SCOPE_READ, SCOPE_WRITE, StaticTokens, WebauthnIssuer, router};
use mc_webauthn::api::{
    ChallengeFinishRequest, ChallengeStartResponse, RegistrationFinishRequest,
    RegistrationStartResponse,
};
use mc_webauthn::{GrantKey, MemoryStepUpStore, StepUpConfig, WebauthnStepUp};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use url::Url;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

#[tokio::test]
async fn passkey_registration_challenge_grant_and_action_over_http() {
    let origin = Url::parse("https://console.example.com").unwrap();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let stepup = WebauthnStepUp::new(
        StepUpConfig::new(
            "example.com",
            origin.clone(),
            GrantKey::new(vec![5u8; 32]).unwrap(),
        ),
        Arc::new(MemoryStepUpStore::new()),
        clock.clone(),
    )
    .unwrap();
    let store = Arc::new(MemoryStore::new());
    let flags = Arc::new(MemoryFlagStore::new());
    let tenant = TenantId::new("acme").unwrap();
    flags
        .set(&tenant, Flag::ConsoleActionsEnabled, true)
        .await
        .unwrap();
    let mut exec = Execution::new(
        tenant.clone(),
        ExecutionId::new("exec_1").unwrap(),
        Digest::of(b"m"),
        Digest::of(b"i"),
        clock.now(),
    );
    exec.state = ExecutionState::Running;
    let mut unit = ActionCommit::new(tenant.clone(), clock.now());
    unit.create = Some(exec);
    store.commit(unit).await.unwrap();

    let actions = ActionService::new(store.clone(), flags, Arc::new(stepup.clone()), clock);
    let alice = Actor::new(ActorId::new("alice@acme").unwrap(), tenant, ["operator"]);
    let tokens = StaticTokens::new().with(
        "alice",
        Principal {
            actor: alice,
            scopes: vec![SCOPE_READ.into(), SCOPE_WRITE.into()],
        },
    );
    let state = AppState::new(
        Arc::new(actions),
        store,
        Arc::new(tokens),
        Arc::new(WebauthnIssuer::new(stepup)),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router(state)).await.unwrap() });
    let http = Client::new();
    let post = |path: &str, body: Value| {
        http.post(format!("{base}{path}"))
            .bearer_auth("alice")
            .json(&body)
            .send()
    };

    // Before any passkey exists, no challenge can be issued.
    let r = post(
        "/api/stepup/challenge",
        json!({ "action": "cancel", "executionId": "exec_1" }),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);

    // 1. Registration.
    let mut authenticator = SoftPasskey::new(true);
    let r = post("/api/stepup/registration/start", json!({}))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let reg: RegistrationStartResponse = r.json().await.unwrap();
    let credential = authenticator
        .do_registration(origin.clone(), reg.options)
        .unwrap();
    let r = post(
        "/api/stepup/registration/finish",
        serde_json::to_value(RegistrationFinishRequest {
            registration_id: reg.registration_id,
            credential,
        })
        .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());

    // 2. Challenge and assertion.
    let r = post(
        "/api/stepup/challenge",
        json!({ "action": "cancel", "executionId": "exec_1" }),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let ch: ChallengeStartResponse = r.json().await.unwrap();
    assert_eq!(ch.binding.execution_id.as_str(), "exec_1");
    let credential = authenticator
        .do_authentication(origin.clone(), ch.options)
        .unwrap();
    let answer = serde_json::to_value(ChallengeFinishRequest {
        challenge_id: ch.challenge_id,
        credential,
    })
    .unwrap();
    let r = post("/api/stepup/verify", answer.clone()).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let granted: Value = r.json().await.unwrap();
    let grant = granted["grant"].as_str().unwrap().to_string();

    // A replayed assertion gets nothing.
    let r = post("/api/stepup/verify", answer).await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // 3. The action with the grant.
    let r = http
        .post(format!("{base}/api/executions/exec_1:cancel"))
        .bearer_auth("alice")
        .header("Idempotency-Key", "wa-1")
        .json(&json!({ "reason": "stuck", "stepUp": grant }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let outcome: Value = r.json().await.unwrap();
    assert_eq!(outcome["state"], "cancelled");

    // The grant is single-use: a new request (new key) with it is refused.
    let r = http
        .post(format!("{base}/api/executions/exec_1:replay"))
        .bearer_auth("alice")
        .header("Idempotency-Key", "wa-2")
        .json(&json!({ "reason": "again", "stepUp": grant }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("insufficient_user_authentication")
    );
}
