// A typed client for the console's action API (docs/http-api.md, /openapi.json):
// the allowed-actions view, the step-up ceremony and the action itself. Every error
// is an RFC 9457 problem document; `ApiError` keeps its stable `code`.

/** The three console write actions (spec §3.1). */
export type ActionKind = "cancel" | "retry" | "replay";

/** One action as the console should show it (`GET /api/executions/{id}/actions`). */
export interface ActionAvailability {
  action: ActionKind;
  /** Whether the caller may perform it now (flag, policy, state). */
  allowed: boolean;
  /** Why not, when not allowed. */
  reason?: string;
  /** Whether a step-up ceremony is needed first. */
  stepUpRequired: boolean;
  /** Text of the confirmation modal. */
  confirmation: string;
  /** How to undo or contain the action if it goes wrong. */
  rollbackHint: string;
}

/** `GET /api/executions/{id}/actions`. */
export interface ActionsView {
  executionId: string;
  actions: ActionAvailability[];
}

/** The 202 answer of an accepted action. */
export interface ActionOutcome {
  status: "accepted";
  action: ActionKind;
  executionId: string;
  state: string;
  attempt: number;
  replay?: { id: string; parent: string; root: string; state: string };
  auditEventId: string;
  /** True when this answer is the stored outcome of an earlier identical request. */
  idempotentReplay: boolean;
}

/** `POST /api/stepup/verify`'s answer. */
export interface IssuedGrant {
  grant: string;
  expiresAt: string;
}

/** A blob kind's retention for the caller's tenant (`GET /api/retention`). */
export interface KindRetention {
  kind: string;
  /** The period when the tenant has no override (`90d`, `7y`). */
  default: string;
  /** The shortest override allowed. */
  min: string;
  /** The longest override allowed. */
  max: string;
  /** `purge` (deleted after the period) or `retain_then_purge` (immutable until then). */
  enforcement: "purge" | "retain_then_purge";
  /** The tenant's override, if any. */
  override: string | null;
  /** The period in force. */
  effective: string;
}

/** `PUT /api/retention/{kind}`'s answer. */
export interface RetentionChanged {
  previous: string;
  retention: KindRetention;
}

/** The entity tag of a kind's override, as `GET /api/retention/{kind}` sends it. */
export const retentionTag = (k: KindRetention): string => `"${k.override ?? "none"}"`;

/** A refused request: the problem document's fields. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly detail: string,
    readonly field?: string,
  ) {
    super(`${status} ${code}: ${detail}`);
    this.name = "ApiError";
  }

  /** Step-up is down: the console is read-only (spec §8), reads still work. */
  get readOnly(): boolean {
    return this.status === 503 && this.code === "step_up_unavailable";
  }

  /** The action needs a (fresh) step-up grant. */
  get stepUpNeeded(): boolean {
    return this.code === "step_up_required" || this.code === "step_up_rejected";
  }
}

/** Produces the ceremony's answer for a challenge (demo or WebAuthn, below). */
export type StepUpCeremony = (challenge: Record<string, unknown>) => Promise<unknown>;

/** The demo ceremony of `mc serve`: the answer names the challenge. Not a second factor. */
export const demoCeremony: StepUpCeremony = async (challenge) => ({
  challengeId: challenge["challengeId"],
});

const fromB64url = (s: string): ArrayBuffer => {
  const b64 = s.replace(/-/g, "+").replace(/_/g, "/");
  const bin = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out.buffer;
};

const toB64url = (buf: ArrayBuffer | null): string | null => {
  if (buf === null) return null;
  let bin = "";
  for (const b of new Uint8Array(buf)) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
};

/**
 * The WebAuthn ceremony (`mc serve --step-up webauthn`): the challenge's `options`
 * go to `navigator.credentials.get` (a passkey, a security key), the assertion goes
 * back base64url-encoded as the server's WebAuthn library reads it.
 */
export function webauthnCeremony(
  credentials: Pick<CredentialsContainer, "get"> = navigator.credentials,
): StepUpCeremony {
  return async (challenge) => {
    const options = challenge["options"] as { publicKey: Record<string, unknown> };
    const pk = options.publicKey;
    const publicKey = {
      ...pk,
      challenge: fromB64url(pk["challenge"] as string),
      allowCredentials: ((pk["allowCredentials"] as { id: string; type: string }[]) ?? []).map(
        (c) => ({ ...c, id: fromB64url(c.id) }),
      ),
    } as PublicKeyCredentialRequestOptions;
    const cred = (await credentials.get({ publicKey })) as PublicKeyCredential | null;
    if (cred === null) throw new ApiError(401, "step_up_rejected", "no credential was chosen");
    const r = cred.response as AuthenticatorAssertionResponse;
    return {
      challenge_id: challenge["challenge_id"],
      credential: {
        id: cred.id,
        rawId: toB64url(cred.rawId),
        type: cred.type,
        extensions: {},
        response: {
          authenticatorData: toB64url(r.authenticatorData),
          clientDataJSON: toB64url(r.clientDataJSON),
          signature: toB64url(r.signature),
          userHandle: toB64url(r.userHandle),
        },
      },
    };
  };
}

/** The action API of one server, with one bearer token. */
export class McApi {
  constructor(
    private readonly base: string,
    private readonly token: string,
    private readonly fetchImpl: typeof fetch = (...a) => fetch(...a),
  ) {}

  private async call<T>(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<T> {
    const res = await this.fetchImpl(`${this.base}${path}`, {
      method,
      headers: {
        Authorization: `Bearer ${this.token}`,
        ...(body === undefined ? {} : { "Content-Type": "application/json" }),
        ...headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    const json = text ? JSON.parse(text) : undefined;
    if (!res.ok) {
      const p = (json ?? {}) as { code?: string; detail?: string; field?: string };
      throw new ApiError(res.status, p.code ?? "http_error", p.detail ?? res.statusText, p.field);
    }
    return json as T;
  }

  /** The actions the caller may perform on an execution, with their copy. */
  allowedActions(executionId: string): Promise<ActionsView> {
    return this.call("GET", `/api/executions/${encodeURIComponent(executionId)}/actions`);
  }

  /** Runs the step-up ceremony bound to this action and execution; returns the grant. */
  async stepUp(
    action: ActionKind,
    executionId: string,
    ceremony: StepUpCeremony,
  ): Promise<IssuedGrant> {
    const challenge = await this.call<Record<string, unknown>>("POST", "/api/stepup/challenge", {
      action,
      executionId,
    });
    const answer = await ceremony(challenge);
    return this.call("POST", "/api/stepup/verify", answer);
  }

  /** The tenant's retention rules and overrides, every kind. */
  retention(): Promise<{ tenant: string; kinds: KindRetention[] }> {
    return this.call("GET", "/api/retention");
  }

  /**
   * Sets (`ttl`) or removes (`null`) the tenant's override of a kind (retention
   * admins only). `ifMatch` (from `retentionTag` of what was shown) makes it
   * conditional: 412 `precondition_failed` when someone changed it since.
   */
  setRetention(
    kind: string,
    ttl: string | null,
    reason: string,
    ifMatch?: string,
  ): Promise<RetentionChanged> {
    return this.call(
      "PUT",
      `/api/retention/${encodeURIComponent(kind)}`,
      { ttl, reason },
      ifMatch === undefined ? {} : { "If-Match": ifMatch },
    );
  }

  /**
   * Performs the action. Send the same `idempotencyKey` when retrying after a
   * network failure: the server answers with the first outcome, never a second
   * effect.
   */
  perform(
    executionId: string,
    action: ActionKind,
    reason: string,
    idempotencyKey: string,
    stepUp?: string,
  ): Promise<ActionOutcome> {
    return this.call(
      "POST",
      `/api/executions/${encodeURIComponent(executionId)}:${action}`,
      stepUp === undefined ? { reason } : { reason, stepUp },
      { "Idempotency-Key": idempotencyKey },
    );
  }
}
