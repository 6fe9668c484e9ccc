// The actions of one execution, as the server allows them to the caller now.
import { useCallback, useEffect, useState } from "react";
import { ActionButton } from "./ActionButton";
import { type ActionsView, type McApi, type StepUpCeremony } from "./api";
import { describeError } from "./ActionButton";

export interface ActionBarProps {
  api: McApi;
  executionId: string;
  ceremony?: StepUpCeremony;
}

export function ActionBar({ api, executionId, ceremony }: ActionBarProps) {
  const [view, setView] = useState<ActionsView | null>(null);
  const [error, setError] = useState<string | null>(null);
  const load = useCallback(() => {
    api.allowedActions(executionId).then(
      (v) => {
        setView(v);
        setError(null);
      },
      (e) => setError(describeError(e)),
    );
  }, [api, executionId]);
  useEffect(load, [load]);

  if (error !== null) return <p role="alert">{error}</p>;
  if (view === null) return <p>Loading actions…</p>;
  return (
    <div role="toolbar" aria-label={`Actions for ${executionId}`}>
      {view.actions.map((a) => (
        <ActionButton
          key={a.action}
          api={api}
          executionId={executionId}
          availability={a}
          ceremony={ceremony}
          // The execution changed: what is allowed now may differ.
          onAccepted={load}
        />
      ))}
    </div>
  );
}
