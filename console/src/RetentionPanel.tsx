// Retention for a tenant's administrators (MC-DATA-1151): every kind's default,
// bounds and the override in force; an administrator sets or clears an override
// with a reason, conditionally on what the panel showed (If-Match), so a colleague's
// change is never silently overwritten.
import { useCallback, useEffect, useState } from "react";
import { describeError } from "./ActionButton";
import { ApiError, type KindRetention, type McApi, retentionTag } from "./api";

export interface RetentionPanelProps {
  api: McApi;
  /** Show the edit controls (the server still checks the role). */
  canEdit: boolean;
}

function KindRow({
  api,
  k,
  canEdit,
  reload,
}: { api: McApi; k: KindRetention; canEdit: boolean; reload: () => void }) {
  const [ttl, setTtl] = useState("");
  const [reason, setReason] = useState("");
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState<string | null>(null);
  const save = async (value: string | null) => {
    setBusy(true);
    setMessage(null);
    try {
      const r = await api.setRetention(k.kind, value, reason.trim(), retentionTag(k));
      setMessage(`${k.kind}: ${r.previous} → ${r.retention.effective}`);
      setTtl("");
      setReason("");
      reload();
    } catch (e) {
      if (e instanceof ApiError && e.status === 412) {
        setMessage(`Someone changed ${k.kind} since it was shown; reloaded. ${e.detail}`);
        reload();
      } else {
        setMessage(describeError(e));
      }
    } finally {
      setBusy(false);
    }
  };
  return (
    <tr>
      <th scope="row">{k.kind}</th>
      <td>{k.effective}</td>
      <td>{k.override ?? "—"}</td>
      <td>{k.default}</td>
      <td>
        {k.min} – {k.max}
      </td>
      <td>{k.enforcement === "purge" ? "purged after" : "immutable, then purged"}</td>
      {canEdit && (
        <td>
          <input
            aria-label={`New period for ${k.kind}`}
            placeholder="30d"
            value={ttl}
            onChange={(e) => setTtl(e.target.value)}
          />
          <input
            aria-label={`Reason for ${k.kind}`}
            placeholder="reason"
            value={reason}
            onChange={(e) => setReason(e.target.value)}
          />
          <button
            type="button"
            disabled={busy || ttl.trim() === "" || reason.trim() === ""}
            onClick={() => save(ttl.trim())}
          >
            Set {k.kind}
          </button>
          <button
            type="button"
            disabled={busy || k.override === null || reason.trim() === ""}
            onClick={() => save(null)}
          >
            Clear {k.kind}
          </button>
          {message !== null && <span role="status">{message}</span>}
        </td>
      )}
    </tr>
  );
}

export function RetentionPanel({ api, canEdit }: RetentionPanelProps) {
  const [kinds, setKinds] = useState<KindRetention[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const load = useCallback(() => {
    api.retention().then(
      (r) => {
        setKinds(r.kinds);
        setError(null);
      },
      (e) => setError(describeError(e)),
    );
  }, [api]);
  useEffect(load, [load]);
  if (error !== null) return <p role="alert">{error}</p>;
  if (kinds === null) return <p>Loading retention…</p>;
  return (
    <table>
      <thead>
        <tr>
          <th scope="col">kind</th>
          <th scope="col">in force</th>
          <th scope="col">override</th>
          <th scope="col">default</th>
          <th scope="col">allowed</th>
          <th scope="col">when it ends</th>
          {canEdit && <th scope="col">change</th>}
        </tr>
      </thead>
      <tbody>
        {kinds.map((k) => (
          <KindRow key={k.kind} api={api} k={k} canEdit={canEdit} reload={load} />
        ))}
      </tbody>
    </table>
  );
}
