//! The OpenAPI 3.1 document served at `GET /openapi.json`.
//!
//! Written by hand as data (ADR 0601). It cannot drift from the router: the crate's
//! tests walk every documented path and method and call it over HTTP, and check that
//! the set of documented operations is exactly the router's.

use serde_json::{Value, json};

/// Every `(method, path)` the router serves, in the OpenAPI path syntax. The test
/// suite checks this list, the OpenAPI document and the live router agree.
pub const OPERATIONS: &[(&str, &str)] = &[
    ("get", "/api/executions"),
    ("get", "/api/executions/{id}"),
    ("post", "/api/executions/{id}:cancel"),
    ("post", "/api/executions/{id}:retry"),
    ("post", "/api/executions/{id}:replay"),
    ("get", "/api/executions/{id}/actions"),
    ("get", "/api/executions/{id}/evidence"),
    ("get", "/api/blobs/{key}"),
    ("get", "/api/retention"),
    ("get", "/api/retention/{kind}"),
    ("put", "/api/retention/{kind}"),
    ("post", "/api/stepup/challenge"),
    ("post", "/api/stepup/verify"),
    ("post", "/api/stepup/registration/start"),
    ("post", "/api/stepup/registration/finish"),
    ("get", "/openapi.json"),
];

fn problem(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } }
    })
}

fn ok_json(description: &str, schema: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } }
    })
}

fn json_body(schema: &str) -> Value {
    json!({
        "required": true,
        "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } }
    })
}

fn id_param() -> Value {
    json!({
        "name": "id", "in": "path", "required": true,
        "description": "Execution id (A-Z a-z 0-9 - _ ., first alphanumeric, at most 128 bytes).",
        "schema": { "type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$" }
    })
}

fn action_op(action: &str, summary: &str) -> Value {
    json!({
        "post": {
            "operationId": format!("{action}Execution"),
            "summary": summary,
            "description": "Guarded by the tenant flag console_actions_enabled, the action policy, \
                the execution's state and a step-up grant bound to this exact action (spec §3.1, §7). \
                Idempotent: repeating the request with the same Idempotency-Key returns the first \
                outcome (idempotentReplay: true) and writes nothing.",
            "tags": ["actions"],
            "security": [{ "bearer": ["executions:write"] }],
            "parameters": [
                id_param(),
                {
                    "name": "Idempotency-Key", "in": "header", "required": true,
                    "description": "Client-chosen key, unique per tenant (A-Z a-z 0-9 - _ . : + = /, at most 255 bytes).",
                    "schema": { "type": "string", "maxLength": 255 }
                }
            ],
            "requestBody": json_body("ActionBody"),
            "responses": {
                "202": ok_json("Accepted: the outcome of the action", "ActionOutcome"),
                "400": problem("Malformed id, missing Idempotency-Key, empty reason, malformed JSON"),
                "401": problem("Missing/invalid token, or step-up required/refused (WWW-Authenticate: Bearer error=\"insufficient_user_authentication\")"),
                "403": problem("Token lacks executions:write, flag off, or the policy refuses the actor"),
                "404": problem("No such execution for the caller's tenant, or unknown action suffix"),
                "409": problem("Illegal in the execution's state, or a concurrent change won"),
                "413": problem("Body larger than the limit"),
                "415": problem("Body not sent as application/json"),
                "422": problem("Body of the wrong shape, or Idempotency-Key reused for another request"),
                "429": problem("Rate cap reached (Retry-After)"),
                "503": problem("Step-up unavailable: the console is read-only; or the store is unavailable")
            }
        }
    })
}

/// The OpenAPI 3.1 document of [`crate::router`].
pub fn openapi_document() -> Value {
    let mut paths = serde_json::Map::new();
    paths.insert(
        "/api/executions".into(),
        json!({ "get": {
            "operationId": "searchExecutions",
            "summary": "Console search over the caller's tenant, newest first, keyset-paginated",
            "tags": ["executions"],
            "security": [{ "bearer": ["executions:read"] }],
            "parameters": [
                { "name": "state", "in": "query", "required": false, "description": "Comma-separated states; may repeat.",
                  "schema": { "type": "string" } },
                { "name": "from", "in": "query", "required": false, "description": "Created at or after (RFC 3339).",
                  "schema": { "type": "string", "format": "date-time" } },
                { "name": "to", "in": "query", "required": false, "description": "Created strictly before (RFC 3339).",
                  "schema": { "type": "string", "format": "date-time" } },
                { "name": "label", "in": "query", "required": false, "description": "key:value label filter.",
                  "schema": { "type": "string" } },
                { "name": "limit", "in": "query", "required": false, "description": "Page size, 1..=500 (default 50).",
                  "schema": { "type": "integer", "minimum": 1, "maximum": 500 } },
                { "name": "cursor", "in": "query", "required": false, "description": "nextCursor of the previous page.",
                  "schema": { "type": "string" } }
            ],
            "responses": {
                "200": ok_json("One page of executions", "ExecutionPage"),
                "400": problem("A parameter is malformed (the problem names it)"),
                "401": problem("Missing or invalid bearer token"),
                "403": problem("Token lacks executions:read")
            }
        }}),
    );
    paths.insert(
        "/api/executions/{id}".into(),
        json!({ "get": {
            "operationId": "getExecution",
            "summary": "One execution of the caller's tenant",
            "tags": ["executions"],
            "security": [{ "bearer": ["executions:read"] }],
            "parameters": [id_param()],
            "responses": {
                "200": ok_json("The execution", "Execution"),
                "400": problem("Malformed id"),
                "401": problem("Missing or invalid bearer token"),
                "403": problem("Token lacks executions:read"),
                "404": problem("No such execution for the caller's tenant")
            }
        }}),
    );
    paths.insert(
        "/api/executions/{id}:cancel".into(),
        action_op("cancel", "Cancel an execution"),
    );
    paths.insert(
        "/api/executions/{id}:retry".into(),
        action_op("retry", "Retry a failed execution"),
    );
    paths.insert(
        "/api/executions/{id}:replay".into(),
        action_op("replay", "Replay with same manifest & inputs"),
    );
    paths.insert(
        "/api/executions/{id}/actions".into(),
        json!({ "get": {
            "operationId": "allowedActions",
            "summary": "What the console may offer the caller for one execution (MC-UI-1103)",
            "tags": ["actions"],
            "security": [{ "bearer": ["executions:read"] }],
            "parameters": [id_param()],
            "responses": {
                "200": ok_json("Per-action availability, confirmation copy and rollback hint", "ActionsView"),
                "400": problem("Malformed id"),
                "401": problem("Missing or invalid bearer token"),
                "403": problem("Token lacks executions:read"),
                "404": problem("No such execution for the caller's tenant")
            }
        }}),
    );
    paths.insert(
        "/api/executions/{id}/evidence".into(),
        json!({ "get": {
            "operationId": "evidenceManifest",
            "summary": "Evidence manifest (JSON with digests & signed URLs)",
            "tags": ["evidence"],
            "security": [{ "bearer": ["executions:read"] }],
            "parameters": [id_param()],
            "responses": {
                "200": ok_json("The manifest and, when signing is configured, its DSSE envelope", "SignedManifest"),
                "400": problem("Malformed id"),
                "401": problem("Missing or invalid bearer token"),
                "403": problem("Token lacks executions:read, or evidence_v2_enabled is off for the tenant"),
                "404": problem("No such execution for the caller's tenant, or evidence not configured"),
                "503": problem("Blob store unavailable, or a blob changed while the manifest was built")
            }
        }}),
    );
    paths.insert(
        "/api/blobs/{key}".into(),
        json!({ "get": {
            "operationId": "downloadBlob",
            "summary": "Download behind a pre-signed URL (≤ 10 min); every granted access is audited as mc.evidence.access",
            "tags": ["evidence"],
            "security": [{ "bearer": ["executions:read"] }],
            "parameters": [
                { "name": "key", "in": "path", "required": true,
                  "description": "Blob key tenants/{tenant}/{kind}/{execution}/{name} (may contain /).",
                  "schema": { "type": "string" } },
                { "name": "expires", "in": "query", "required": true, "schema": { "type": "integer" } },
                { "name": "sig", "in": "query", "required": true, "schema": { "type": "string" } }
            ],
            "responses": {
                "200": { "description": "The blob's bytes",
                    "content": { "application/octet-stream": { "schema": { "type": "string", "contentEncoding": "binary" } } } },
                "400": problem("Malformed key"),
                "401": problem("Missing or invalid bearer token"),
                "403": problem("Signature invalid or URL expired"),
                "404": problem("No such blob for the caller's tenant, or evidence not configured"),
                "503": problem("Blob store unavailable")
            }
        }}),
    );
    let kind_param = json!({
        "name": "kind", "in": "path", "required": true,
        "description": "Blob kind with a retention rule (logs, receipts).",
        "schema": { "type": "string" }
    });
    let etag = json!({ "ETag": {
        "description": "The kind's override: \"none\" or the period (\"30d\"); send it back in If-Match.",
        "schema": { "type": "string" } } });
    paths.insert(
        "/api/retention".into(),
        json!({ "get": {
            "operationId": "listRetention",
            "summary": "The caller's tenant's retention: every kind's default, bounds, enforcement, override and period in force",
            "tags": ["retention"],
            "security": [{ "bearer": ["executions:read"] }],
            "responses": {
                "200": ok_json("Every kind", "TenantRetention"),
                "401": problem("Missing or invalid bearer token"),
                "403": problem("Token lacks executions:read"),
                "404": problem("Retention not configured on this server")
            }
        }}),
    );
    paths.insert(
        "/api/retention/{kind}".into(),
        json!({
            "get": {
                "operationId": "getRetention",
                "summary": "One kind's retention for the caller's tenant",
                "tags": ["retention"],
                "security": [{ "bearer": ["executions:read"] }],
                "parameters": [kind_param],
                "responses": {
                    "200": { "description": "The kind", "headers": etag,
                        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/KindRetention" } } } },
                    "401": problem("Missing or invalid bearer token"),
                    "403": problem("Token lacks executions:read"),
                    "404": problem("No rule for this kind (no_rule), or retention not configured")
                }
            },
            "put": {
                "operationId": "setRetentionOverride",
                "summary": "Set (ttl) or remove (ttl null) the tenant's override of a kind; committed with its mc.lifecycle.override audit event",
                "tags": ["retention"],
                "security": [{ "bearer": ["executions:write"] }],
                "parameters": [kind_param, {
                    "name": "If-Match", "in": "header", "required": false,
                    "description": "The ETag of a GET: change only if the override is still that one (412 otherwise).",
                    "schema": { "type": "string" }
                }],
                "requestBody": json_body("RetentionOverrideBody"),
                "responses": {
                    "200": { "description": "Changed: the period it replaced and the kind now", "headers": etag,
                        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/RetentionChanged" } } } },
                    "400": problem("Malformed period, reason or If-Match (the problem names it)"),
                    "401": problem("Missing or invalid bearer token"),
                    "403": problem("Token lacks executions:write, or the actor has no retention admin role"),
                    "404": problem("No rule for this kind (no_rule), or retention not configured"),
                    "409": problem("Another administrator changed it at the same moment; retry"),
                    "412": problem("If-Match names another override than the one in force"),
                    "413": problem("Body larger than the limit"),
                    "415": problem("Body not sent as application/json"),
                    "422": problem("Body of the wrong shape, or the period is outside the kind's bounds (retention_out_of_bounds)")
                }
            }
        }),
    );
    let stepup = |op: &str, summary: &str, body: &str, ok: Value, extra: &[(&str, &str)]| {
        let mut responses = serde_json::Map::new();
        responses.insert("200".into(), ok);
        for (code, d) in [
            ("400", "Malformed body field (the problem names it)"),
            (
                "401",
                "Missing or invalid bearer token, or the ceremony failed",
            ),
            ("403", "Token lacks executions:write"),
            ("413", "Body larger than the limit"),
            ("415", "Body not sent as application/json"),
            ("422", "Body of the wrong shape"),
            ("503", "Step-up unavailable: the console is read-only"),
        ]
        .iter()
        .chain(extra)
        {
            responses.insert((*code).into(), problem(d));
        }
        json!({ "post": {
            "operationId": op,
            "summary": summary,
            "tags": ["step-up"],
            "security": [{ "bearer": ["executions:write"] }],
            "requestBody": json_body(body),
            "responses": responses
        }})
    };
    paths.insert(
        "/api/stepup/challenge".into(),
        stepup(
            "stepUpChallenge",
            "Start a step-up ceremony for one action on one execution",
            "ChallengeRequest",
            ok_json("A ceremony-specific challenge", "Challenge"),
            &[
                ("404", "No such execution for the caller's tenant"),
                (
                    "409",
                    "The ceremony cannot start (e.g. no passkey registered)",
                ),
            ],
        ),
    );
    paths.insert(
        "/api/stepup/verify".into(),
        stepup(
            "stepUpVerify",
            "Answer a step-up challenge and receive a single-use grant",
            "CeremonyBody",
            ok_json(
                "A grant bound to tenant, actor, action and execution",
                "IssuedGrant",
            ),
            &[("404", "Unknown, used or foreign challenge")],
        ),
    );
    paths.insert(
        "/api/stepup/registration/start".into(),
        stepup(
            "stepUpRegistrationStart",
            "Start enrolling an authenticator (passkey) for the caller",
            "CeremonyBody",
            ok_json("Ceremony-specific registration options", "Challenge"),
            &[("404", "The server's ceremony has no registration")],
        ),
    );
    paths.insert(
        "/api/stepup/registration/finish".into(),
        stepup(
            "stepUpRegistrationFinish",
            "Finish enrolling an authenticator for the caller",
            "CeremonyBody",
            ok_json("The registered credential", "Challenge"),
            &[
                (
                    "404",
                    "Unknown registration, or the ceremony has no registration",
                ),
                ("409", "Credential already registered"),
            ],
        ),
    );
    paths.insert(
        "/openapi.json".into(),
        json!({ "get": {
            "operationId": "openapi",
            "summary": "This document",
            "tags": ["meta"],
            "security": [],
            "responses": { "200": { "description": "OpenAPI 3.1 document",
                "content": { "application/json": { "schema": { "type": "object" } } } } }
        }}),
    );

    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Maestro Conductor control plane API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Console actions (spec §5.1) with scoped bearer tokens, step-up and RFC 9457 problems.",
            "license": { "name": "Apache-2.0", "identifier": "Apache-2.0" }
        },
        "security": [{ "bearer": [] }],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer",
                    "description": "OAuth bearer token with scopes executions:read / executions:write." }
            },
            "schemas": schemas()
        }
    })
}

fn schemas() -> Value {
    let state = json!({ "type": "string", "enum": ["pending", "running", "succeeded", "failed", "cancelled"] });
    let action = json!({ "type": "string", "enum": ["cancel", "retry", "replay"] });
    let period = json!({ "type": "string", "pattern": "^[0-9]+[mhdwy]$",
        "description": "A period: minutes, hours, days, weeks or calendar years (30m, 12h, 90d, 7y)." });
    json!({
        "Problem": {
            "type": "object",
            "description": "RFC 9457 problem document with a stable code extension.",
            "required": ["type", "title", "status", "detail", "code"],
            "properties": {
                "type": { "type": "string", "format": "uri" },
                "title": { "type": "string" },
                "status": { "type": "integer" },
                "detail": { "type": "string" },
                "code": { "type": "string" },
                "field": { "type": "string" }
            }
        },
        "KindRetention": {
            "type": "object",
            "required": ["kind", "default", "min", "max", "enforcement", "override", "effective"],
            "properties": {
                "kind": { "type": "string" },
                "default": period.clone(),
                "min": period.clone(),
                "max": period.clone(),
                "enforcement": { "type": "string", "enum": ["purge", "retain_then_purge"],
                    "description": "purge: deleted after the period; retain_then_purge: neither deleted nor overwritten before it ends, deleted after." },
                "override": { "oneOf": [period.clone(), { "type": "null" }] },
                "effective": period.clone()
            }
        },
        "TenantRetention": {
            "type": "object", "required": ["tenant", "kinds"],
            "properties": {
                "tenant": { "type": "string" },
                "kinds": { "type": "array", "items": { "$ref": "#/components/schemas/KindRetention" } }
            }
        },
        "RetentionOverrideBody": {
            "type": "object", "additionalProperties": false, "required": ["ttl", "reason"],
            "properties": {
                "ttl": { "oneOf": [period.clone(), { "type": "null" }],
                    "description": "The new period; null removes the override (the default applies)." },
                "reason": { "type": "string", "minLength": 1, "maxLength": 1024 }
            }
        },
        "RetentionChanged": {
            "type": "object", "required": ["previous", "retention"],
            "properties": {
                "previous": period.clone(),
                "retention": { "$ref": "#/components/schemas/KindRetention" }
            }
        },
        "ActionBody": {
            "type": "object", "additionalProperties": false, "required": ["reason"],
            "properties": {
                "reason": { "type": "string", "minLength": 1, "maxLength": 1024 },
                "stepUp": { "type": "string", "description": "Grant from POST /api/stepup/verify." }
            }
        },
        "ActionOutcome": {
            "type": "object",
            "required": ["status", "action", "executionId", "state", "attempt", "auditEventId", "idempotentReplay"],
            "properties": {
                "status": { "const": "accepted" },
                "action": action,
                "executionId": { "type": "string" },
                "state": state,
                "attempt": { "type": "integer", "minimum": 1 },
                "replay": {
                    "type": "object", "required": ["id", "parent", "root", "state"],
                    "properties": {
                        "id": { "type": "string" }, "parent": { "type": "string" },
                        "root": { "type": "string" }, "state": state
                    }
                },
                "auditEventId": { "type": "string" },
                "idempotentReplay": { "type": "boolean" }
            }
        },
        "Execution": {
            "type": "object",
            "required": ["tenant", "id", "state", "attempt", "manifestDigest", "inputsDigest", "root",
                         "labels", "version", "createdAt", "updatedAt"],
            "properties": {
                "tenant": { "type": "string" },
                "id": { "type": "string" },
                "state": state,
                "attempt": { "type": "integer" },
                "manifestDigest": { "type": "string", "pattern": "^[0-9a-f]{64}$" },
                "inputsDigest": { "type": "string", "pattern": "^[0-9a-f]{64}$" },
                "parent": { "type": ["string", "null"] },
                "root": { "type": "string" },
                "labels": { "type": "object", "additionalProperties": { "type": "string" } },
                "version": { "type": "integer" },
                "createdAt": { "type": "string", "format": "date-time" },
                "updatedAt": { "type": "string", "format": "date-time" }
            }
        },
        "ExecutionPage": {
            "type": "object", "required": ["items", "nextCursor"],
            "properties": {
                "items": { "type": "array", "items": { "$ref": "#/components/schemas/Execution" } },
                "nextCursor": { "type": ["string", "null"] }
            }
        },
        "ActionsView": {
            "type": "object", "required": ["executionId", "actions"],
            "properties": {
                "executionId": { "type": "string" },
                "actions": { "type": "array", "items": {
                    "type": "object",
                    "required": ["action", "allowed", "stepUpRequired", "confirmation", "rollbackHint"],
                    "properties": {
                        "action": action, "allowed": { "type": "boolean" },
                        "reason": { "type": "string" }, "stepUpRequired": { "type": "boolean" },
                        "confirmation": { "type": "string" }, "rollbackHint": { "type": "string" }
                    }
                }}
            }
        },
        "SignedManifest": {
            "type": "object", "required": ["manifest"],
            "description": "mc-evidence SignedManifest: the manifest (artifacts with name, mediaType, size, sha256, uri, uriExpiresAt) and an optional DSSE envelope.",
            "properties": {
                "manifest": { "type": "object" },
                "envelope": { "type": "object" }
            }
        },
        "ChallengeRequest": {
            "type": "object", "additionalProperties": false, "required": ["action", "executionId"],
            "properties": { "action": action, "executionId": { "type": "string" } }
        },
        "Challenge": {
            "type": "object",
            "description": "Ceremony-specific (demo-bearer: challengeId; webauthn: WebAuthn options)."
        },
        "CeremonyBody": {
            "type": "object",
            "description": "Ceremony-specific answer (demo-bearer: {\"challengeId\"}; webauthn: the credential JSON)."
        },
        "StepUpBinding": {
            "type": "object", "required": ["tenant", "actor", "action", "execution_id"],
            "properties": {
                "tenant": { "type": "string" }, "actor": { "type": "string" },
                "action": action, "execution_id": { "type": "string" }
            }
        },
        "IssuedGrant": {
            "type": "object", "required": ["grant", "binding", "expiresAt"],
            "properties": {
                "grant": { "type": "string" },
                "binding": { "$ref": "#/components/schemas/StepUpBinding" },
                "expiresAt": { "type": "string", "format": "date-time" }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    if k == "$ref" {
                        out.extend(x.as_str());
                    } else {
                        refs(x, out);
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }

    #[test]
    fn document_lists_exactly_the_operations_and_every_ref_resolves() {
        let doc = openapi_document();
        assert_eq!(doc["openapi"], "3.1.0");
        let mut documented: Vec<(String, String)> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(p, item)| {
                item.as_object()
                    .unwrap()
                    .keys()
                    .map(move |m| (m.clone(), p.clone()))
            })
            .collect();
        documented.sort();
        let mut listed: Vec<(String, String)> = OPERATIONS
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        listed.sort();
        assert_eq!(documented, listed);

        let mut all = Vec::new();
        refs(&doc, &mut all);
        assert!(all.len() > 10);
        for r in all {
            let pointer = r.strip_prefix('#').expect("local ref");
            assert!(doc.pointer(pointer).is_some(), "dangling $ref {r}");
        }
    }
}
