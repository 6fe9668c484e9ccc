import { act, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { cleanup } from "@testing-library/react";
import { ActionBar } from "./ActionBar";
import { ActionButton } from "./ActionButton";
import { type ActionAvailability, McApi, webauthnCeremony } from "./api";

afterEach(cleanup);

interface Call {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: unknown;
}

/** A fake server: answers each request with the next scripted response. */
function server(script: Array<[number, unknown] | Error>) {
  const calls: Call[] = [];
  const fetchImpl = vi.fn(async (url: string | URL | Request, init?: RequestInit) => {
    const u = new URL(String(url));
    calls.push({
      method: init?.method ?? "GET",
      path: u.pathname,
      headers: (init?.headers ?? {}) as Record<string, string>,
      body: init?.body ? JSON.parse(String(init.body)) : undefined,
    });
    const next = script.shift();
    if (next === undefined) throw new Error(`unexpected request ${u.pathname}`);
    if (next instanceof Error) throw next;
    const [status, body] = next;
    return new Response(body === undefined ? "" : JSON.stringify(body), {
      status,
      headers: {
        "Content-Type": status >= 400 ? "application/problem+json" : "application/json",
      },
    });
  });
  return { api: new McApi("http://mc.test", "tok", fetchImpl as typeof fetch), calls };
}

const retry: ActionAvailability = {
  action: "retry",
  allowed: true,
  stepUpRequired: true,
  confirmation: "Retry exec_1? A new attempt starts from the failed step.",
  rollbackHint: "Cancel the new attempt; console writes roll back on repeated failure.",
};

const accepted = {
  status: "accepted",
  action: "retry",
  executionId: "exec_1",
  state: "pending",
  attempt: 2,
  auditEventId: "evt_act_1",
  idempotentReplay: false,
};

function openAndType(label: string, reason: string) {
  fireEvent.click(screen.getByRole("button", { name: label }));
  fireEvent.change(screen.getByRole("textbox"), { target: { value: reason } });
}

describe("ActionButton", () => {
  it("is disabled with the server's reason when the action is not allowed", () => {
    const { api } = server([]);
    render(
      <ActionButton
        api={api}
        executionId="exec_1"
        availability={{ ...retry, allowed: false, reason: "console_actions_enabled is off" }}
      />,
    );
    const b = screen.getByRole("button", { name: "Retry" });
    expect(b).toHaveProperty("disabled", true);
    expect(b.getAttribute("title")).toBe("console_actions_enabled is off");
  });

  it("confirms with the server's copy, steps up, then performs once with one key", async () => {
    const { api, calls } = server([
      [200, { challengeId: "ch_1", expiresAt: "2025-12-10T18:05:00Z" }],
      [200, { grant: "v1.grant", expiresAt: "2025-12-10T18:05:00Z" }],
      [202, accepted],
    ]);
    const onAccepted = vi.fn();
    render(
      <ActionButton
        api={api}
        executionId="exec_1"
        availability={retry}
        newKey={() => "key-1"}
        onAccepted={onAccepted}
      />,
    );
    fireEvent.click(screen.getByRole("button", { name: "Retry" }));
    const dialog = screen.getByRole("dialog");
    expect(dialog.textContent).toContain(retry.confirmation);
    expect(dialog.textContent).toContain(retry.rollbackHint);
    expect(dialog.textContent).toContain("step-up");
    const confirm = screen.getByRole("button", { name: "Confirm retry" });
    expect(confirm).toHaveProperty("disabled", true); // no reason yet
    fireEvent.change(screen.getByRole("textbox"), { target: { value: " transient_error " } });
    await act(async () => fireEvent.click(confirm));

    await waitFor(() => expect(screen.getByRole("status").textContent).toContain("attempt 2"));
    expect(screen.queryByRole("dialog")).toBeNull();
    expect(calls.map((c) => `${c.method} ${c.path}`)).toEqual([
      "POST /api/stepup/challenge",
      "POST /api/stepup/verify",
      "POST /api/executions/exec_1:retry",
    ]);
    expect(calls[0]!.body).toEqual({ action: "retry", executionId: "exec_1" });
    expect(calls[1]!.body).toEqual({ challengeId: "ch_1" });
    expect(calls[2]!.headers["Idempotency-Key"]).toBe("key-1");
    expect(calls[2]!.headers["Authorization"]).toBe("Bearer tok");
    expect(calls[2]!.body).toEqual({ reason: "transient_error", stepUp: "v1.grant" });
    expect(onAccepted).toHaveBeenCalledWith(accepted);
  });

  it("retries after a network failure with the same idempotency key", async () => {
    const { api, calls } = server([
      new TypeError("network down"),
      [202, { ...accepted, idempotentReplay: true }],
    ]);
    const newKey = vi.fn(() => "key-7");
    render(
      <ActionButton
        api={api}
        executionId="exec_1"
        availability={{ ...retry, stepUpRequired: false }}
        newKey={newKey}
      />,
    );
    openAndType("Retry", "transient_error");
    const confirm = screen.getByRole("button", { name: "Confirm retry" });
    await act(async () => fireEvent.click(confirm));
    await waitFor(() => expect(screen.getByRole("alert").textContent).toContain("network down"));
    expect(screen.getByRole("dialog")).toBeTruthy();
    await act(async () => fireEvent.click(screen.getByRole("button", { name: "Confirm retry" })));
    await waitFor(() => expect(screen.getByRole("status").textContent).toContain("already done"));
    expect(newKey).toHaveBeenCalledTimes(1);
    expect(calls.map((c) => c.headers["Idempotency-Key"])).toEqual(["key-7", "key-7"]);
    expect(calls[0]!.body).toEqual({ reason: "transient_error" }); // no step-up asked
  });

  it("shows the read-only state when step-up is down and performs nothing", async () => {
    const { api, calls } = server([
      [
        503,
        {
          type: "https://mc.dev/problems/step_up_unavailable",
          title: "Service Unavailable",
          status: 503,
          code: "step_up_unavailable",
          detail: "step-up unavailable, console is read-only: authenticator down",
        },
      ],
    ]);
    render(<ActionButton api={api} executionId="exec_1" availability={retry} />);
    openAndType("Retry", "transient_error");
    await act(async () => fireEvent.click(screen.getByRole("button", { name: "Confirm retry" })));
    await waitFor(() => expect(screen.getByRole("alert").textContent).toContain("read-only"));
    expect(calls).toHaveLength(1);
    expect(calls[0]!.path).toBe("/api/stepup/challenge");
  });

  it("names a refused grant", async () => {
    const { api } = server([
      [200, { challengeId: "ch_1" }],
      [200, { grant: "g" }],
      [401, { code: "step_up_rejected", detail: "step-up grant is bound to another execution" }],
    ]);
    render(<ActionButton api={api} executionId="exec_1" availability={retry} />);
    openAndType("Retry", "x");
    await act(async () => fireEvent.click(screen.getByRole("button", { name: "Confirm retry" })));
    await waitFor(() =>
      expect(screen.getByRole("alert").textContent).toBe(
        "Step-up was not accepted: step-up grant is bound to another execution",
      ),
    );
  });
});

describe("ActionBar", () => {
  it("renders the allowed actions and reloads them after an action", async () => {
    const view = (allowed: boolean) => ({
      executionId: "exec_1",
      actions: [
        { ...retry, stepUpRequired: false, allowed },
        {
          action: "cancel",
          allowed: false,
          reason: "not allowed in state failed",
          stepUpRequired: false,
          confirmation: "c",
          rollbackHint: "h",
        },
      ],
    });
    const { api, calls } = server([[200, view(true)], [202, accepted], [200, view(false)]]);
    render(<ActionBar api={api} executionId="exec_1" />);
    const retryButton = await screen.findByRole("button", { name: "Retry" });
    expect(retryButton).toHaveProperty("disabled", false);
    expect(screen.getByRole("button", { name: "Cancel" })).toHaveProperty("disabled", true);
    openAndType("Retry", "transient_error");
    await act(async () => fireEvent.click(screen.getByRole("button", { name: "Confirm retry" })));
    await waitFor(() =>
      expect(screen.getByRole("button", { name: "Retry" })).toHaveProperty("disabled", true),
    );
    expect(calls.map((c) => `${c.method} ${c.path}`)).toEqual([
      "GET /api/executions/exec_1/actions",
      "POST /api/executions/exec_1:retry",
      "GET /api/executions/exec_1/actions",
    ]);
  });
});

describe("webauthnCeremony", () => {
  it("decodes the options and encodes the assertion as the server reads them", async () => {
    const get = vi.fn(async (opts?: CredentialRequestOptions) => {
      const pk = opts!.publicKey!;
      expect(new Uint8Array(pk.challenge as ArrayBuffer)).toEqual(new Uint8Array([1, 2, 255]));
      expect(new Uint8Array(pk.allowCredentials![0]!.id as ArrayBuffer)).toEqual(
        new Uint8Array([9]),
      );
      return {
        id: "cred-1",
        rawId: new Uint8Array([9]).buffer,
        type: "public-key",
        response: {
          authenticatorData: new Uint8Array([1]).buffer,
          clientDataJSON: new Uint8Array([123, 125]).buffer,
          signature: new Uint8Array([250, 251]).buffer,
          userHandle: null,
        },
      } as unknown as Credential;
    });
    const answer = await webauthnCeremony({ get })({
      challenge_id: "c-1",
      options: {
        publicKey: {
          challenge: "AQL_",
          rpId: "console.example.com",
          allowCredentials: [{ id: "CQ", type: "public-key" }],
        },
      },
    });
    expect(answer).toEqual({
      challenge_id: "c-1",
      credential: {
        id: "cred-1",
        rawId: "CQ",
        type: "public-key",
        extensions: {},
        response: {
          authenticatorData: "AQ",
          clientDataJSON: "e30",
          signature: "-vs",
          userHandle: null,
        },
      },
    });
  });
});
