import { act, cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { RetentionPanel } from "./RetentionPanel";
import { McApi } from "./api";

afterEach(cleanup);

const logs = (override: string | null) => ({
  kind: "logs",
  default: "90d",
  min: "1d",
  max: "10y",
  enforcement: "purge",
  override,
  effective: override ?? "90d",
});
const receipts = {
  kind: "receipts",
  default: "7y",
  min: "7y",
  max: "100y",
  enforcement: "retain_then_purge",
  override: null,
  effective: "7y",
};

function server(script: Array<[number, unknown]>) {
  const calls: { method: string; path: string; headers: Record<string, string>; body: unknown }[] =
    [];
  const fetchImpl = vi.fn(async (url: string | URL | Request, init?: RequestInit) => {
    calls.push({
      method: init?.method ?? "GET",
      path: new URL(String(url)).pathname,
      headers: (init?.headers ?? {}) as Record<string, string>,
      body: init?.body ? JSON.parse(String(init.body)) : undefined,
    });
    const [status, body] = script.shift() ?? [599, { code: "unexpected", detail: "?" }];
    return new Response(JSON.stringify(body), { status });
  });
  return { api: new McApi("http://mc.test", "tok", fetchImpl as typeof fetch), calls };
}

describe("RetentionPanel", () => {
  it("shows every kind and hides the controls from non-admins", async () => {
    const { api } = server([[200, { tenant: "acme", kinds: [logs(null), receipts] }]]);
    render(<RetentionPanel api={api} canEdit={false} />);
    const row = (await screen.findByRole("rowheader", { name: "receipts" })).closest("tr")!;
    expect(row.textContent).toContain("7y – 100y");
    expect(row.textContent).toContain("immutable, then purged");
    expect(screen.queryByRole("button")).toBeNull();
  });

  it("sets an override conditionally on what it showed, with the reason", async () => {
    const { api, calls } = server([
      [200, { tenant: "acme", kinds: [logs(null), receipts] }],
      [200, { previous: "90d", retention: logs("30d") }],
      [200, { tenant: "acme", kinds: [logs("30d"), receipts] }],
    ]);
    render(<RetentionPanel api={api} canEdit />);
    fireEvent.change(await screen.findByLabelText("New period for logs"), {
      target: { value: "30d" },
    });
    fireEvent.change(screen.getByLabelText("Reason for logs"), {
      target: { value: "contract 2025-17" },
    });
    await act(async () => fireEvent.click(screen.getByRole("button", { name: "Set logs" })));
    await waitFor(() => expect(screen.getByRole("status").textContent).toBe("logs: 90d → 30d"));
    expect(calls[1]).toMatchObject({
      method: "PUT",
      path: "/api/retention/logs",
      body: { ttl: "30d", reason: "contract 2025-17" },
    });
    expect(calls[1]!.headers["If-Match"]).toBe('"none"');
    await waitFor(() =>
      expect(screen.getByRole("rowheader", { name: "logs" }).closest("tr")!.textContent).toContain(
        "30d",
      ),
    );
  });

  it("reloads when someone else changed it, and shows out-of-bounds periods", async () => {
    const { api, calls } = server([
      [200, { tenant: "acme", kinds: [logs(null), receipts] }],
      [
        412,
        {
          code: "precondition_failed",
          detail: "retention override acme/logs is 60d, not none as expected",
        },
      ],
      [200, { tenant: "acme", kinds: [logs("60d"), receipts] }],
      [
        422,
        {
          code: "retention_out_of_bounds",
          detail: "retention 1y for receipts is outside the allowed 7y..=100y",
        },
      ],
    ]);
    render(<RetentionPanel api={api} canEdit />);
    fireEvent.change(await screen.findByLabelText("New period for logs"), {
      target: { value: "30d" },
    });
    fireEvent.change(screen.getByLabelText("Reason for logs"), { target: { value: "x" } });
    await act(async () => fireEvent.click(screen.getByRole("button", { name: "Set logs" })));
    await waitFor(() => expect(screen.getByRole("status").textContent).toContain("reloaded"));
    await waitFor(() => expect(calls).toHaveLength(3));
    expect(calls[2]!.path).toBe("/api/retention");
    fireEvent.change(screen.getByLabelText("New period for receipts"), {
      target: { value: "1y" },
    });
    fireEvent.change(screen.getByLabelText("Reason for receipts"), { target: { value: "y" } });
    await act(async () => fireEvent.click(screen.getByRole("button", { name: "Set receipts" })));
    await waitFor(() =>
      expect(
        screen.getByRole("rowheader", { name: "receipts" }).closest("tr")!.textContent,
      ).toContain("outside the allowed 7y..=100y"),
    );
  });
});
