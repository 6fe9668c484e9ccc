// @vitest-environment node
// The kit against the real server: `mc serve` (in-memory, demo tenants) started on
// 127.0.0.1, its printed demo token used by McApi with Node's fetch. Proves the
// kit's types and flow match the server, not only the documented shapes.
//
// Needs the `mc` binary: MC_BIN, else ../target/debug/mc (`cargo build -p mc-cli`).
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiError, McApi, demoCeremony, retentionTag } from "./api";

const bin =
  process.env["MC_BIN"] ??
  fileURLToPath(new URL("../../target/debug/mc", import.meta.url));

let server: ChildProcess | undefined;
let base = "";
const tokens: Record<string, string> = {};

beforeAll(async () => {
  if (!existsSync(bin)) {
    throw new Error(
      `no mc binary at ${bin}: run \`cargo build -p mc-cli\` (or set MC_BIN) before these tests`,
    );
  }
  server = spawn(bin, ["serve", "--listen", "127.0.0.1:0"], {
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, RUST_LOG: process.env["RUST_LOG"] ?? "warn" },
  });
  const lines = createInterface({ input: server.stdout! });
  for await (const line of lines) {
    const listening = /^mc serve: listening on (http:\/\/\S+)/.exec(line);
    if (listening) base = listening[1]!;
    const token = /export MC_TOKEN_(\w+)=(\S+)/.exec(line.trim());
    if (token) tokens[token[1]!] = token[2]!;
    if (line.includes(":retry")) break; // the banner's last line
  }
  expect(base).not.toBe("");
}, 30_000);

afterAll(() => {
  server?.kill();
});

describe("McApi against mc serve", () => {
  it("reads the allowed actions, steps up and retries exactly once", async () => {
    const alice = new McApi(base, tokens["ALICE"]!);
    const view = await alice.allowedActions("exec_1001");
    expect(view.executionId).toBe("exec_1001");
    const retry = view.actions.find((a) => a.action === "retry")!;
    expect(retry.allowed).toBe(true);
    expect(retry.stepUpRequired).toBe(true);
    expect(retry.confirmation).not.toBe("");
    expect(retry.rollbackHint).not.toBe("");
    const cancel = view.actions.find((a) => a.action === "cancel")!;
    expect(cancel.allowed).toBe(false);
    expect(cancel.reason).toBeTruthy();

    const grant = await alice.stepUp("retry", "exec_1001", demoCeremony);
    const first = await alice.perform("exec_1001", "retry", "transient_error", "kit-e2e-1", grant.grant);
    expect(first.status).toBe("accepted");
    expect(first.attempt).toBe(2);
    expect(first.idempotentReplay).toBe(false);
    // The same confirmation again (a retried request): the first outcome, no effect.
    const again = await alice.perform("exec_1001", "retry", "transient_error", "kit-e2e-1", grant.grant);
    expect(again.idempotentReplay).toBe(true);
    expect(again.attempt).toBe(2);
  });

  it("lets the retention admin change an override, conditionally", async () => {
    const rita = new McApi(base, tokens["RITA"]!);
    const before = await rita.retention();
    const logs = before.kinds.find((k) => k.kind === "logs")!;
    expect(logs.override).toBeNull();
    const changed = await rita.setRetention("logs", "30d", "contract 2025-17", retentionTag(logs));
    expect(changed.previous).toBe("90d");
    expect(changed.retention.effective).toBe("30d");
    // The same stale tag again: someone (we) changed it since.
    const stale = await rita
      .setRetention("logs", "60d", "again", retentionTag(logs))
      .catch((e: unknown) => e);
    expect((stale as ApiError).status).toBe(412);
    // An operator is not a retention admin.
    const alice = new McApi(base, tokens["ALICE"]!);
    const refused = await alice.setRetention("logs", null, "x").catch((e: unknown) => e);
    expect((refused as ApiError).code).toBe("not_allowed");
  });

  it("maps the server's refusals to ApiError codes", async () => {
    const alice = new McApi(base, tokens["ALICE"]!);
    // No grant: step-up required.
    const noGrant = await alice
      .perform("exec_1005", "retry", "transient_error", "kit-e2e-2")
      .catch((e: unknown) => e);
    expect(noGrant).toBeInstanceOf(ApiError);
    expect((noGrant as ApiError).status).toBe(401);
    expect((noGrant as ApiError).stepUpNeeded).toBe(true);
    // A read-only token cannot write.
    const carol = new McApi(base, tokens["CAROL"]!);
    const readOnly = await carol
      .perform("exec_1005", "retry", "x", "kit-e2e-3")
      .catch((e: unknown) => e);
    expect((readOnly as ApiError).code).toBe("insufficient_scope");
  });
});
