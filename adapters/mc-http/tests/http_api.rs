//! The API through real HTTP on 127.0.0.1 (reqwest against a bound axum server).

use std::sync::Arc;

use mc_actions::{ActionService, HmacStepUp};
use mc_core::signed_url::UrlSigner;
use mc_core::{
    ActionCommit, ActionKind, Actor, ActorId, AuditLog, Clock, Digest, Execution, ExecutionId,
    ExecutionState, Flag, FlagStore, ManualClock, MemoryFlagStore, MemoryStore, StepUpBinding,
    TenantId,
};
use mc_core::{BlobKey, BlobStore, MemoryBlobStore, PutMode};
use mc_evidence::{AccessLogger, EvidenceService};
use mc_http::{
    AppState, EvidenceApi, HmacIssuer, PROBLEM_JSON, Principal, RETENTION_ADMIN_ROLE, RetentionApi,
    SCOPE_READ, SCOPE_WRITE, StaticTokens, router,
};
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use time::macros::datetime;

struct Fixture {
    base: String,
    http: Client,
    hmac: Arc<HmacStepUp>,
    store: Arc<MemoryStore>,
    clock: Arc<ManualClock>,
}

fn actor(sub: &str, tenant: &str, role: &str) -> Actor {
    Actor::new(
        ActorId::new(sub).unwrap(),
        TenantId::new(tenant).unwrap(),
        [role],
    )
}

fn principal(sub: &str, tenant: &str, role: &str, scopes: &[&str]) -> Principal {
    Principal {
        actor: actor(sub, tenant, role),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
    }
}

async fn seed(store: &MemoryStore, tenant: &str, id: &str, state: ExecutionState, minute: u8) {
    let tenant = TenantId::new(tenant).unwrap();
    let at = datetime!(2025-12-10 17:00 UTC) + time::Duration::minutes(minute.into());
    let mut exec = Execution::new(
        tenant.clone(),
        ExecutionId::new(id).unwrap(),
        Digest::of(id.as_bytes()),
        Digest::of(b"inputs"),
        at,
    )
    .with_label(
        "team",
        if minute.is_multiple_of(2) {
            "payments"
        } else {
            "search"
        },
    );
    exec.state = state;
    let mut unit = ActionCommit::new(tenant, at);
    unit.create = Some(exec);
    mc_core::ExecutionStore::commit(store, unit).await.unwrap();
}

async fn start() -> Fixture {
    let store = Arc::new(MemoryStore::new());
    let flags = Arc::new(MemoryFlagStore::new());
    let clock = Arc::new(ManualClock::new(datetime!(2025-12-10 18:00 UTC)));
    let hmac = Arc::new(HmacStepUp::new(vec![42; 32]));
    let acme = TenantId::new("acme").unwrap();
    flags
        .set(&acme, Flag::ConsoleActionsEnabled, true)
        .await
        .unwrap();
    flags
        .set(&acme, Flag::EvidenceV2Enabled, true)
        .await
        .unwrap();
    seed(&store, "acme", "exec_failed", ExecutionState::Failed, 1).await;
    seed(&store, "acme", "exec_running", ExecutionState::Running, 2).await;
    seed(&store, "acme", "exec_pending", ExecutionState::Pending, 3).await;
    seed(&store, "acme", "exec_done", ExecutionState::Succeeded, 4).await;
    seed(&store, "globex", "exec_globex", ExecutionState::Failed, 5).await;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let base = format!("http://{addr}");
    let signer = UrlSigner::new(vec![9; 32], format!("{base}/api/blobs"));
    let blobs = Arc::new(MemoryBlobStore::with_signer(clock.clone(), signer.clone()));
    for (tenant, exec) in [("acme", "exec_done"), ("globex", "exec_globex")] {
        let key = BlobKey::new(format!("tenants/{tenant}/logs/{exec}/run.log")).unwrap();
        blobs
            .put(&key, "line one\nline two\n".into(), PutMode::Create)
            .await
            .unwrap();
    }
    let evidence = EvidenceApi {
        service: EvidenceService::new(store.clone(), flags.clone(), blobs.clone(), clock.clone()),
        access: AccessLogger::new(signer, store.clone(), clock.clone()),
        blobs,
    };
    let actions = ActionService::new(store.clone(), flags, hmac.clone(), clock.clone());
    let rw = [SCOPE_READ, SCOPE_WRITE];
    let tokens = StaticTokens::new()
        .with("alice", principal("alice@acme", "acme", "operator", &rw))
        .with("bob", principal("bob@acme", "acme", "viewer", &rw))
        .with(
            "carol",
            principal("carol@acme", "acme", "operator", &[SCOPE_READ]),
        )
        .with("gina", principal("gina@globex", "globex", "operator", &rw))
        .with(
            "rita",
            principal("rita@acme", "acme", RETENTION_ADMIN_ROLE, &rw),
        );
    let state = AppState::new(
        Arc::new(actions),
        store.clone(),
        Arc::new(tokens),
        Arc::new(HmacIssuer::new(hmac.clone(), clock.clone())),
    )
    .with_evidence(evidence)
    .with_retention(RetentionApi::new(store.clone(), clock.clone()));
    tokio::spawn(async move { axum::serve(listener, router(state)).await.unwrap() });
    Fixture {
        base,
        http: Client::new(),
        hmac,
        store,
        clock,
    }
}

impl Fixture {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn get(&self, token: &str, path: &str) -> Response {
        self.http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    async fn post(&self, token: &str, path: &str, key: Option<&str>, body: Value) -> Response {
        let mut req = self
            .http
            .post(self.url(path))
            .bearer_auth(token)
            .json(&body);
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k);
        }
        req.send().await.unwrap()
    }

    fn grant(&self, sub: &str, action: ActionKind, exec: &str) -> String {
        self.hmac
            .issue(
                &StepUpBinding {
                    tenant: TenantId::new("acme").unwrap(),
                    actor: ActorId::new(sub).unwrap(),
                    action,
                    execution_id: ExecutionId::new(exec).unwrap(),
                },
                self.clock.now(),
            )
            .expose()
            .to_string()
    }

    async fn audit_count(&self, tenant: &str) -> usize {
        self.store
            .read(&TenantId::new(tenant).unwrap(), 0, 1000)
            .await
            .unwrap()
            .len()
    }
}

/// Asserts `resp` is a problem document with `status` and `code`; returns it.
async fn problem(resp: Response, status: u16, code: &str) -> Value {
    assert_eq!(resp.status().as_u16(), status, "status of {code}");
    let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert_eq!(ct, PROBLEM_JSON);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status);
    assert!(body["type"].as_str().unwrap().ends_with(code));
    assert!(!body["title"].as_str().unwrap().is_empty());
    assert!(!body["detail"].as_str().unwrap().is_empty());
    body
}

#[tokio::test]
async fn happy_path_challenge_grant_retry_then_idempotent_repeat() {
    let f = start().await;
    let ch = f
        .post(
            "alice",
            "/api/stepup/challenge",
            None,
            json!({ "action": "retry", "executionId": "exec_failed" }),
        )
        .await;
    assert_eq!(ch.status(), StatusCode::OK);
    let ch: Value = ch.json().await.unwrap();
    assert_eq!(ch["ceremony"], "demo-bearer");
    let granted = f
        .post(
            "alice",
            "/api/stepup/verify",
            None,
            json!({ "challengeId": ch["challengeId"] }),
        )
        .await;
    assert_eq!(granted.status(), StatusCode::OK);
    let granted: Value = granted.json().await.unwrap();
    assert_eq!(granted["binding"]["action"], "retry");
    let grant = granted["grant"].as_str().unwrap().to_string();

    let body = json!({ "reason": "transient_error", "stepUp": grant });
    let first = f
        .post(
            "alice",
            "/api/executions/exec_failed:retry",
            Some("k-1"),
            body.clone(),
        )
        .await;
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["status"], "accepted");
    assert_eq!(first["state"], "pending");
    assert_eq!(first["attempt"], 2);
    assert_eq!(first["idempotentReplay"], false);

    // Same key, same request (the grant is already consumed): the first outcome again.
    let again = f
        .post(
            "alice",
            "/api/executions/exec_failed:retry",
            Some("k-1"),
            body,
        )
        .await;
    assert_eq!(again.status(), StatusCode::ACCEPTED);
    let mut again: Value = again.json().await.unwrap();
    assert_eq!(again["idempotentReplay"], true);
    again["idempotentReplay"] = json!(false);
    assert_eq!(again, first);
    assert_eq!(f.audit_count("acme").await, 1);

    let exec: Value = f
        .get("alice", "/api/executions/exec_failed")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(exec["state"], "pending");
    assert_eq!(exec["attempt"], 2);

    // Same key for a different request is refused.
    let other = f
        .post(
            "alice",
            "/api/executions/exec_failed:retry",
            Some("k-1"),
            json!({ "reason": "another reason" }),
        )
        .await;
    problem(other, 422, "idempotency_conflict").await;
}

#[tokio::test]
async fn replay_creates_a_child_and_cancel_stops() {
    let f = start().await;
    let g = f.grant("alice@acme", ActionKind::Replay, "exec_done");
    let r = f
        .post(
            "alice",
            "/api/executions/exec_done:replay",
            Some("rp-1"),
            json!({ "reason": "same inputs", "stepUp": g }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r: Value = r.json().await.unwrap();
    let child = r["replay"]["id"].as_str().unwrap();
    assert_eq!(r["replay"]["parent"], "exec_done");
    let c = f.get("alice", &format!("/api/executions/{child}")).await;
    assert_eq!(c.status(), StatusCode::OK);

    let g = f.grant("alice@acme", ActionKind::Cancel, "exec_running");
    let r = f
        .post(
            "alice",
            "/api/executions/exec_running:cancel",
            Some("c-1"),
            json!({ "reason": "stuck", "stepUp": g }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    // Cancelling again (new key) is illegal in the new state.
    let g = f.grant("alice@acme", ActionKind::Cancel, "exec_running");
    let r = f
        .post(
            "alice",
            "/api/executions/exec_running:cancel",
            Some("c-2"),
            json!({ "reason": "stuck", "stepUp": g }),
        )
        .await;
    problem(r, 409, "not_allowed_in_state").await;
}

#[tokio::test]
async fn guards_map_to_precise_statuses() {
    let f = start().await;
    // Viewer: the policy refuses.
    let g = f.grant("bob@acme", ActionKind::Retry, "exec_failed");
    let r = f
        .post(
            "bob",
            "/api/executions/exec_failed:retry",
            Some("v-1"),
            json!({ "reason": "try", "stepUp": g }),
        )
        .await;
    problem(r, 403, "not_allowed").await;

    // Missing step-up: 401 with the RFC 9470 challenge.
    let r = f
        .post(
            "alice",
            "/api/executions/exec_failed:retry",
            Some("s-1"),
            json!({ "reason": "try" }),
        )
        .await;
    let www = r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        www.starts_with("Bearer error=\"insufficient_user_authentication\", error_description=\""),
        "{www}"
    );
    problem(r, 401, "step_up_required").await;

    // A grant for another execution is refused, also with the step-up header.
    let g = f.grant("alice@acme", ActionKind::Retry, "exec_pending");
    let r = f
        .post(
            "alice",
            "/api/executions/exec_failed:retry",
            Some("s-2"),
            json!({ "reason": "try", "stepUp": g }),
        )
        .await;
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("insufficient_user_authentication")
    );
    problem(r, 401, "step_up_rejected").await;

    // Flag off for globex.
    let r = f
        .post(
            "gina",
            "/api/executions/exec_globex:retry",
            Some("g-1"),
            json!({ "reason": "try" }),
        )
        .await;
    problem(r, 403, "flag_disabled").await;

    // Token without executions:write.
    let r = f
        .post(
            "carol",
            "/api/executions/exec_failed:retry",
            Some("c-1"),
            json!({ "reason": "try" }),
        )
        .await;
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("insufficient_scope")
    );
    problem(r, 403, "insufficient_scope").await;
    // ... but it can read.
    assert_eq!(
        f.get("carol", "/api/executions/exec_failed").await.status(),
        StatusCode::OK
    );

    // No token / unknown token.
    let r = f
        .http
        .get(f.url("/api/executions/exec_failed"))
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    problem(r, 401, "unauthenticated").await;
    problem(
        f.get("nope", "/api/executions/exec_failed").await,
        401,
        "unauthenticated",
    )
    .await;
    assert_eq!(f.audit_count("acme").await, 0);
}

#[tokio::test]
async fn another_tenants_execution_is_not_found() {
    let f = start().await;
    problem(
        f.get("gina", "/api/executions/exec_failed").await,
        404,
        "not_found",
    )
    .await;
    problem(
        f.get("alice", "/api/executions/exec_globex/actions").await,
        404,
        "not_found",
    )
    .await;
    let r = f
        .post(
            "alice",
            "/api/stepup/challenge",
            None,
            json!({ "action": "retry", "executionId": "exec_globex" }),
        )
        .await;
    problem(r, 404, "not_found").await;
    let g = f.grant("alice@acme", ActionKind::Retry, "exec_globex");
    let r = f
        .post(
            "alice",
            "/api/executions/exec_globex:retry",
            Some("x-1"),
            json!({ "reason": "mine?", "stepUp": g }),
        )
        .await;
    problem(r, 404, "not_found").await;
    // globex's search sees only its own execution.
    let page: Value = f.get("gina", "/api/executions").await.json().await.unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn concurrent_requests_with_one_key_have_one_effect() {
    let f = Arc::new(start().await);
    // 16 clients, each with its own valid grant, same key and body.
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let f = f.clone();
            let g = f.grant("alice@acme", ActionKind::Retry, "exec_failed");
            tokio::spawn(async move {
                let r = f
                    .post(
                        "alice",
                        "/api/executions/exec_failed:retry",
                        Some("same-key"),
                        json!({ "reason": "flaky", "stepUp": g }),
                    )
                    .await;
                (r.status(), r.json::<Value>().await.unwrap())
            })
        })
        .collect();
    let results = futures::future::join_all(tasks).await;
    let mut event_ids = std::collections::HashSet::new();
    let mut fresh = 0;
    for r in results {
        let (status, body) = r.unwrap();
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        event_ids.insert(body["auditEventId"].as_str().unwrap().to_string());
        if body["idempotentReplay"] == false {
            fresh += 1;
        }
        assert_eq!(body["attempt"], 2);
    }
    assert_eq!(event_ids.len(), 1);
    assert!(fresh >= 1);
    assert_eq!(f.audit_count("acme").await, 1);

    // 16 clients sharing ONE grant: still one effect; losers get a clean 4xx or the
    // recorded outcome — never a 5xx, never a second event.
    let g = f.grant("alice@acme", ActionKind::Cancel, "exec_pending");
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let f = f.clone();
            let g = g.clone();
            tokio::spawn(async move {
                f.post(
                    "alice",
                    "/api/executions/exec_pending:cancel",
                    Some("shared-grant"),
                    json!({ "reason": "stop", "stepUp": g }),
                )
                .await
                .status()
            })
        })
        .collect();
    let statuses: Vec<_> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(|s| s.unwrap())
        .collect();
    assert!(statuses.contains(&StatusCode::ACCEPTED));
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::ACCEPTED || *s == StatusCode::UNAUTHORIZED),
        "{statuses:?}"
    );
    assert_eq!(f.audit_count("acme").await, 2);
}

#[tokio::test]
async fn bad_input_is_a_clear_4xx_problem() {
    let f = start().await;
    let ok_body = json!({ "reason": "r" });
    // Malformed ids name the field.
    let b = problem(
        f.get("alice", "/api/executions/bad!id").await,
        400,
        "invalid_id",
    )
    .await;
    assert_eq!(b["field"], "id");
    let b = problem(
        f.post(
            "alice",
            "/api/executions/ex%2Fx:cancel",
            Some("k"),
            ok_body.clone(),
        )
        .await,
        400,
        "invalid_id",
    )
    .await;
    assert_eq!(b["field"], "id");
    let long = "e".repeat(200);
    problem(
        f.get("alice", &format!("/api/executions/{long}/actions"))
            .await,
        400,
        "invalid_id",
    )
    .await;
    let b = problem(
        f.post(
            "alice",
            "/api/stepup/challenge",
            None,
            json!({ "action": "retry", "executionId": "../etc" }),
        )
        .await,
        400,
        "invalid_id",
    )
    .await;
    assert_eq!(b["field"], "executionId");
    problem(
        f.post(
            "alice",
            "/api/stepup/challenge",
            None,
            json!({ "action": "delete", "executionId": "exec_failed" }),
        )
        .await,
        400,
        "invalid_request",
    )
    .await;

    // Unknown action suffix, or none.
    problem(
        f.post(
            "alice",
            "/api/executions/exec_failed:delete",
            Some("k"),
            ok_body.clone(),
        )
        .await,
        404,
        "unknown_action",
    )
    .await;
    problem(
        f.post(
            "alice",
            "/api/executions/exec_failed",
            Some("k"),
            ok_body.clone(),
        )
        .await,
        404,
        "unknown_action",
    )
    .await;

    // Oversized body.
    let big = json!({ "reason": "x".repeat(100 * 1024) });
    problem(
        f.post("alice", "/api/executions/exec_failed:retry", Some("k"), big)
            .await,
        413,
        "body_too_large",
    )
    .await;

    // Wrong content type.
    let r = f
        .http
        .post(f.url("/api/executions/exec_failed:retry"))
        .bearer_auth("alice")
        .header("Idempotency-Key", "k")
        .header("content-type", "text/plain")
        .body("{\"reason\":\"r\"}")
        .send()
        .await
        .unwrap();
    problem(r, 415, "unsupported_media_type").await;

    // Missing / malformed Idempotency-Key.
    let b = problem(
        f.post(
            "alice",
            "/api/executions/exec_failed:retry",
            None,
            ok_body.clone(),
        )
        .await,
        400,
        "missing_idempotency_key",
    )
    .await;
    assert_eq!(b["field"], "Idempotency-Key");
    problem(
        f.post(
            "alice",
            "/api/executions/exec_failed:retry",
            Some("spaces are bad"),
            ok_body,
        )
        .await,
        400,
        "invalid_id",
    )
    .await;

    // Invalid JSON, wrong shape, unknown field, empty reason.
    let r = f
        .http
        .post(f.url("/api/executions/exec_failed:retry"))
        .bearer_auth("alice")
        .header("Idempotency-Key", "k")
        .header("content-type", "application/json")
        .body("{\"reason\":")
        .send()
        .await
        .unwrap();
    problem(r, 400, "malformed_json").await;
    problem(
        f.post(
            "alice",
            "/api/executions/exec_failed:retry",
            Some("k"),
            json!({ "reason": 5 }),
        )
        .await,
        422,
        "invalid_body",
    )
    .await;
    problem(
        f.post(
            "alice",
            "/api/executions/exec_failed:retry",
            Some("k"),
            json!({ "reason": "r", "step_up": "typo" }),
        )
        .await,
        422,
        "invalid_body",
    )
    .await;
    let b = problem(
        f.post(
            "alice",
            "/api/executions/exec_failed:retry",
            Some("k"),
            json!({ "reason": "  " }),
        )
        .await,
        400,
        "invalid_request",
    )
    .await;
    assert_eq!(b["field"], "reason");
    problem(
        f.post(
            "alice",
            "/api/stepup/verify",
            None,
            json!({ "challengeId": "ch_nope" }),
        )
        .await,
        404,
        "challenge_not_found",
    )
    .await;

    // Search parameters.
    let b = problem(
        f.get("alice", "/api/executions?limit=9999").await,
        400,
        "invalid_query",
    )
    .await;
    assert_eq!(b["field"], "limit");
    problem(
        f.get("alice", "/api/executions?cursor=%00").await,
        400,
        "invalid_query",
    )
    .await;

    // Unknown route, wrong method, registration on the demo ceremony.
    problem(f.get("alice", "/api/nothing").await, 404, "route_not_found").await;
    let r = f
        .http
        .delete(f.url("/api/executions/exec_failed"))
        .bearer_auth("alice")
        .send()
        .await
        .unwrap();
    problem(r, 405, "method_not_allowed").await;
    problem(
        f.post("alice", "/api/stepup/registration/start", None, json!({}))
            .await,
        404,
        "not_supported",
    )
    .await;
    assert_eq!(f.audit_count("acme").await, 0);
}

#[tokio::test]
async fn search_and_allowed_actions() {
    let f = start().await;
    let page: Value = f
        .get("alice", "/api/executions?state=failed,running")
        .await
        .json()
        .await
        .unwrap();
    let ids: Vec<_> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, ["exec_running", "exec_failed"]);

    // Keyset pagination walks every acme execution exactly once.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/executions?limit=3&cursor={c}"),
            None => "/api/executions?limit=3".to_string(),
        };
        let page: Value = f.get("alice", &path).await.json().await.unwrap();
        for e in page["items"].as_array().unwrap() {
            seen.push(e["id"].as_str().unwrap().to_string());
        }
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(
        seen,
        ["exec_done", "exec_pending", "exec_running", "exec_failed"]
    );
    let page: Value = f
        .get(
            "alice",
            "/api/executions?label=team:payments&from=2025-12-10T17:00:00Z&to=2025-12-10T17:03:00Z",
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["id"], "exec_running");

    let view: Value = f
        .get("alice", "/api/executions/exec_failed/actions")
        .await
        .json()
        .await
        .unwrap();
    let by_action = |a: &str| {
        view["actions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["action"] == a)
            .unwrap()
            .clone()
    };
    assert_eq!(by_action("retry")["allowed"], true);
    assert_eq!(by_action("retry")["stepUpRequired"], true);
    assert_eq!(by_action("cancel")["allowed"], false);
    let view: Value = f
        .get("bob", "/api/executions/exec_failed/actions")
        .await
        .json()
        .await
        .unwrap();
    assert!(
        view["actions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["allowed"] == false)
    );
}

#[tokio::test]
async fn step_up_outage_makes_the_console_read_only() {
    let f = start().await;
    let g = f.grant("alice@acme", ActionKind::Retry, "exec_failed");
    f.hmac.set_available(false);
    let r = f
        .post(
            "alice",
            "/api/executions/exec_failed:retry",
            Some("o-1"),
            json!({ "reason": "try", "stepUp": g }),
        )
        .await;
    let b = problem(r, 503, "step_up_unavailable").await;
    assert!(
        b["detail"]
            .as_str()
            .unwrap()
            .contains("console is read-only")
    );
    assert_eq!(
        f.get("alice", "/api/executions/exec_failed").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        f.get("alice", "/api/executions").await.status(),
        StatusCode::OK
    );
    assert_eq!(f.audit_count("acme").await, 0);
}

/// Every documented operation is served by the router (no 404 route_not_found, no
/// 405), and an undocumented one is not.
#[tokio::test]
async fn openapi_document_matches_the_routes() {
    let f = start().await;
    let doc: Value = f
        .http
        .get(f.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut documented = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.push((method.clone(), path.clone()));
            let url = f.url(
                &path
                    .replace("{id}", "exec_pending")
                    .replace("{key}", "tenants/acme/logs/exec_pending/run.log")
                    .replace("{kind}", "logs"),
            );
            let req = match method.as_str() {
                "get" => f.http.get(url),
                "post" => f.http.post(url).json(&json!({})),
                "put" => f.http.put(url).json(&json!({})),
                other => panic!("unexpected method {other}"),
            };
            let r = req
                .bearer_auth("alice")
                .header("Idempotency-Key", format!("doc-{path}"))
                .send()
                .await
                .unwrap();
            let status = r.status();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            assert_ne!(body["code"], "route_not_found", "{method} {path}");
            assert_ne!(body["code"], "unknown_action", "{method} {path}");
            assert!(status.as_u16() < 500, "{method} {path}: {status}");
        }
    }
    documented.sort();
    let mut listed: Vec<_> = mc_http::openapi::OPERATIONS
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    listed.sort();
    assert_eq!(documented, listed);
    // Not documented → not served.
    let r = f
        .post(
            "alice",
            "/api/executions/exec_pending:pause",
            Some("k"),
            json!({}),
        )
        .await;
    problem(r, 404, "unknown_action").await;
    problem(f.get("alice", "/api/stepup").await, 404, "route_not_found").await;
}

#[tokio::test]
async fn evidence_manifest_and_audited_download() {
    let f = start().await;
    let before = f.audit_count("acme").await;
    let r = f.get("alice", "/api/executions/exec_done/evidence").await;
    assert_eq!(r.status(), StatusCode::OK);
    let m: Value = r.json().await.unwrap();
    let art = &m["manifest"]["artifacts"][0];
    assert_eq!(art["size"], 18);
    let uri = art["uri"].as_str().unwrap().to_string();
    assert!(uri.starts_with(&f.url("/api/blobs/tenants/acme/logs/exec_done/run.log?")));

    // The download needs the bearer token too, and is audited.
    let r = f.http.get(&uri).send().await.unwrap();
    problem(r, 401, "unauthenticated").await;
    let r = f.http.get(&uri).bearer_auth("carol").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.unwrap(), "line one\nline two\n");
    let events = f
        .store
        .read(&TenantId::new("acme").unwrap(), 0, 100)
        .await
        .unwrap();
    assert_eq!(events.len(), before + 1);
    assert_eq!(events.last().unwrap().kind, "mc.evidence.access");
    assert_eq!(events.last().unwrap().actor.sub.as_str(), "carol@acme");

    // Tampered signature, expired URL, another tenant: refused, not logged.
    let tampered = format!("{}0", uri);
    problem(
        f.http
            .get(&tampered)
            .bearer_auth("alice")
            .send()
            .await
            .unwrap(),
        403,
        "access_refused",
    )
    .await;
    problem(
        f.http.get(&uri).bearer_auth("gina").send().await.unwrap(),
        404,
        "blob_not_found",
    )
    .await;
    f.clock.advance(time::Duration::minutes(11));
    problem(
        f.http.get(&uri).bearer_auth("alice").send().await.unwrap(),
        403,
        "access_refused",
    )
    .await;
    assert_eq!(f.audit_count("acme").await, before + 1);

    // Flag off (globex) → 403; another tenant's execution → 404.
    problem(
        f.get("gina", "/api/executions/exec_globex/evidence").await,
        403,
        "flag_disabled",
    )
    .await;
    problem(
        f.get("alice", "/api/executions/exec_globex/evidence").await,
        404,
        "not_found",
    )
    .await;
}

/// Retention overrides (spec §3.6 MC-DATA-1151) through the API: read by anyone of
/// the tenant, changed only by a retention admin, bounded, audited, conditional on
/// If-Match, and never across tenants.
#[tokio::test]
async fn retention_overrides_over_http() {
    let f = start().await;
    let put = |token: &'static str, kind: &str, body: Value, if_match: Option<&str>| {
        let mut req = f
            .http
            .put(f.url(&format!("/api/retention/{kind}")))
            .bearer_auth(token)
            .json(&body);
        if let Some(tag) = if_match {
            req = req.header("If-Match", tag);
        }
        req.send()
    };
    let r = f.get("bob", "/api/retention").await;
    assert_eq!(r.status(), StatusCode::OK);
    let all: Value = r.json().await.unwrap();
    assert_eq!(all["tenant"], "acme");
    let kinds = all["kinds"].as_array().unwrap();
    assert_eq!(kinds.len(), 2, "{all}");
    assert_eq!(kinds[0]["kind"], "logs");
    assert_eq!(kinds[0]["effective"], "90d");
    assert!(kinds[0]["override"].is_null());
    assert_eq!(kinds[1]["kind"], "receipts");
    assert_eq!(kinds[1]["min"], "7y");
    assert_eq!(kinds[1]["enforcement"], "retain_then_purge");

    // An operator is not a retention admin; a read-only token cannot write.
    let body = json!({"ttl": "30d", "reason": "contract 2025-17"});
    problem(
        put("alice", "logs", body.clone(), None).await.unwrap(),
        403,
        "not_allowed",
    )
    .await;
    problem(
        put("carol", "logs", body.clone(), None).await.unwrap(),
        403,
        "insufficient_scope",
    )
    .await;
    assert_eq!(f.audit_count("acme").await, 0);

    // Bad input, each naming what was wrong; nothing written.
    let p = problem(
        put(
            "rita",
            "receipts",
            json!({"ttl": "1y", "reason": "x"}),
            None,
        )
        .await
        .unwrap(),
        422,
        "retention_out_of_bounds",
    )
    .await;
    assert_eq!(p["field"], "ttl");
    let p = problem(
        put(
            "rita",
            "logs",
            json!({"ttl": "forever", "reason": "x"}),
            None,
        )
        .await
        .unwrap(),
        400,
        "invalid_request",
    )
    .await;
    assert_eq!(p["field"], "ttl");
    let p = problem(
        put("rita", "logs", json!({"ttl": "30d", "reason": "  "}), None)
            .await
            .unwrap(),
        400,
        "invalid_request",
    )
    .await;
    assert_eq!(p["field"], "reason");
    problem(
        put("rita", "evidence", body.clone(), None).await.unwrap(),
        404,
        "no_rule",
    )
    .await;
    problem(
        put("rita", "logs", json!({"ttl": "30d"}), None)
            .await
            .unwrap(),
        422,
        "invalid_body",
    )
    .await;
    let p = problem(
        put("rita", "logs", body.clone(), Some("30d"))
            .await
            .unwrap(),
        400,
        "invalid_request",
    )
    .await;
    assert_eq!(p["field"], "If-Match");
    assert_eq!(f.audit_count("acme").await, 0);

    // The admin sets it: previous period, the kind now, its ETag, one audit event.
    let r = put("rita", "logs", body.clone(), Some("\"none\""))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["etag"], "\"30d\"");
    let changed: Value = r.json().await.unwrap();
    assert_eq!(changed["previous"], "90d");
    assert_eq!(changed["retention"]["override"], "30d");
    assert_eq!(changed["retention"]["effective"], "30d");
    let events = f
        .store
        .read(&TenantId::new("acme").unwrap(), 0, 10)
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, "mc.lifecycle.override");
    assert_eq!(events[0].actor.sub.as_str(), "rita@acme");
    assert_eq!(events[0].data["reason"], "contract 2025-17");
    assert_eq!(events[0].data["previous"], "90d");

    // A stale If-Match is refused; the GET's ETag is current.
    let p = problem(
        put(
            "rita",
            "logs",
            json!({"ttl": "60d", "reason": "y"}),
            Some("\"none\""),
        )
        .await
        .unwrap(),
        412,
        "precondition_failed",
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("30d"), "{p}");
    let r = f.get("bob", "/api/retention/logs").await;
    assert_eq!(r.headers()["etag"], "\"30d\"");
    let logs: Value = r.json().await.unwrap();
    assert_eq!(logs["override"], "30d");

    // Another tenant sees its own defaults.
    let theirs: Value = f.get("gina", "/api/retention").await.json().await.unwrap();
    assert_eq!(theirs["tenant"], "globex");
    assert!(theirs["kinds"][0]["override"].is_null());

    // Removing it (conditionally) restores the default.
    let r = put(
        "rita",
        "logs",
        json!({"ttl": null, "reason": "contract ended"}),
        Some("\"30d\""),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["etag"], "\"none\"");
    let changed: Value = r.json().await.unwrap();
    assert_eq!(changed["previous"], "30d");
    assert!(changed["retention"]["override"].is_null());
    assert_eq!(changed["retention"]["effective"], "90d");
    assert_eq!(f.audit_count("acme").await, 2);
    problem(
        f.get("bob", "/api/retention/evidence").await,
        404,
        "no_rule",
    )
    .await;
}
