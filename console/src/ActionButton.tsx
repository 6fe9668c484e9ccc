// The console's action button (spec §5.5, MC-UI-1103): gated by the server's
// allowed-actions view (flag, policy, state — the reason shown when disabled), a
// confirmation modal with the server's copy and rollback hint, a required reason,
// step-up when the action needs it, one idempotency key per confirmation (a retry
// after a network failure cannot act twice), and the read-only state of a step-up
// outage.
import { useId, useState } from "react";
import {
  type ActionAvailability,
  type ActionOutcome,
  ApiError,
  type McApi,
  type StepUpCeremony,
  demoCeremony,
} from "./api";

export interface ActionButtonProps {
  api: McApi;
  executionId: string;
  availability: ActionAvailability;
  /** How to answer a step-up challenge (default: `mc serve`'s demo ceremony). */
  ceremony?: StepUpCeremony;
  /** Idempotency keys (default: `crypto.randomUUID`). */
  newKey?: () => string;
  /** Called with each accepted outcome. */
  onAccepted?: (outcome: ActionOutcome) => void;
}

const LABEL: Record<string, string> = { cancel: "Cancel", retry: "Retry", replay: "Replay" };

/** What the user reads after an accepted action. */
export function describeOutcome(o: ActionOutcome): string {
  const again = o.idempotentReplay ? " (already done: this is the first answer)" : "";
  switch (o.action) {
    case "retry":
      return `Retry accepted: ${o.executionId} attempt ${o.attempt} is ${o.state}${again}`;
    case "replay":
      return `Replay accepted: new execution ${o.replay?.id ?? "?"} is ${o.replay?.state ?? o.state}${again}`;
    default:
      return `${o.executionId} is ${o.state}${again}`;
  }
}

/** What the user reads after a refusal. */
export function describeError(e: unknown): string {
  if (e instanceof ApiError) {
    if (e.readOnly) {
      return "Step-up is unavailable, so the console is read-only. Reads keep working; try again later.";
    }
    if (e.stepUpNeeded) return `Step-up was not accepted: ${e.detail}`;
    return e.detail;
  }
  return e instanceof Error ? e.message : String(e);
}

export function ActionButton({
  api,
  executionId,
  availability,
  ceremony = demoCeremony,
  newKey = () => crypto.randomUUID(),
  onAccepted,
}: ActionButtonProps) {
  const { action, allowed, reason: whyNot, stepUpRequired, confirmation, rollbackHint } =
    availability;
  const [key, setKey] = useState<string | null>(null);
  const [reason, setReason] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const titleId = useId();
  const label = LABEL[action] ?? action;

  const open = () => {
    setKey(newKey());
    setReason("");
    setError(null);
    setDone(null);
  };
  const close = () => setKey(null);

  const confirm = async () => {
    if (key === null) return;
    setBusy(true);
    setError(null);
    try {
      const grant = stepUpRequired
        ? (await api.stepUp(action, executionId, ceremony)).grant
        : undefined;
      const outcome = await api.perform(executionId, action, reason.trim(), key, grant);
      setDone(describeOutcome(outcome));
      setKey(null);
      onAccepted?.(outcome);
    } catch (e) {
      // The modal stays open with the same idempotency key: confirming again after
      // a network failure cannot perform the action twice.
      setError(describeError(e));
    } finally {
      setBusy(false);
    }
  };

  return (
    <>
      <button
        type="button"
        disabled={!allowed}
        title={allowed ? undefined : whyNot}
        onClick={open}
      >
        {label}
      </button>
      {key !== null && (
        <div role="dialog" aria-modal="true" aria-labelledby={titleId}>
          <h2 id={titleId}>
            {label} {executionId}?
          </h2>
          <p>{confirmation}</p>
          <p>
            <strong>If it goes wrong:</strong> {rollbackHint}
          </p>
          {stepUpRequired && <p>You will be asked to confirm it is you (step-up).</p>}
          <label>
            Reason (recorded in the audit log)
            <textarea
              value={reason}
              maxLength={1024}
              onChange={(e) => setReason(e.target.value)}
            />
          </label>
          {error !== null && <p role="alert">{error}</p>}
          <button type="button" disabled={busy || reason.trim() === ""} onClick={confirm}>
            {busy ? "Working…" : `Confirm ${label.toLowerCase()}`}
          </button>
          <button type="button" disabled={busy} onClick={close}>
            Close
          </button>
        </div>
      )}
      {done !== null && <p role="status">{done}</p>}
    </>
  );
}
