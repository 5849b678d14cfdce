// A run's live progress, from its server-sent events (GET /api/runs/:id/events): phase, a progress bar,
// counters, and a link to the run once it has ended.

import { useEffect, useRef, useState } from 'react';
import { Link } from 'react-router';
import type { RunProgress } from './api.ts';
import { sentence } from './api.ts';
import { CounterList, StatusBadge } from './components.tsx';
import { formatNumber } from './format.ts';

const PHASES: Record<string, string> = {
  reading: 'Reading from the identity provider',
  reconciling: 'Applying the rules to the directory',
};

export function RunProgressPanel({ runId, onEnd, title = 'Sync in progress' }: { runId: string; onEnd?: (p: RunProgress) => void; title?: string }) {
  const [state, setState] = useState<RunProgress>();
  const [ended, setEnded] = useState(false);
  const [lost, setLost] = useState(false);
  // the stream follows the run only; the latest callback is called when it ends
  const onEndRef = useRef(onEnd);
  useEffect(() => {
    onEndRef.current = onEnd;
  });

  useEffect(() => {
    setState(undefined);
    setEnded(false);
    setLost(false);
    const source = new EventSource(`/api/runs/${encodeURIComponent(runId)}/events`, { withCredentials: true });
    let done = false;
    const read = (e: MessageEvent<string>): RunProgress | undefined => {
      try {
        return JSON.parse(e.data) as RunProgress;
      } catch {
        return undefined;
      }
    };
    source.addEventListener('progress', (e) => {
      const p = read(e as MessageEvent<string>);
      if (p) setState(p);
    });
    source.addEventListener('end', (e) => {
      const p = read(e as MessageEvent<string>);
      done = true;
      source.close();
      if (p) setState(p);
      setEnded(true);
      if (p) onEndRef.current?.(p);
    });
    source.onerror = () => {
      // the browser reconnects by itself while the stream can be had again; a closed one is gone
      if (!done && source.readyState === EventSource.CLOSED) setLost(true);
    };
    return () => source.close();
  }, [runId]);

  const raw = state?.progress;
  // a run that has not reported any progress yet has an empty object here
  const p = raw && typeof raw.done === 'number' ? raw : undefined;
  const running = !ended && (state?.status ?? 'running') === 'running';
  const percent = p && p.total ? Math.min(100, Math.round((p.done / p.total) * 100)) : undefined;
  const phase = state?.phase ? (PHASES[state.phase] ?? state.phase) : running ? 'Starting' : '';
  return (
    <section className="card progress-panel" aria-labelledby={`progress-${runId}`}>
      <h2 id={`progress-${runId}`}>{ended ? 'Sync finished' : title}</h2>
      <div aria-live="polite" aria-atomic="false">
        {running ? (
          <p className="progress-phase">
            <strong>{phase}</strong>
            {p ? (
              <span>
                {' '}
                — {p.phase ? `${p.phase}: ` : ''}
                {formatNumber(p.done)}
                {p.total ? ` of ${formatNumber(p.total)}` : ''}
              </span>
            ) : null}
          </p>
        ) : null}
        {ended && state ? (
          <p>
            The run ended: <StatusBadge status={state.status} />
            {state.error ? ` ${sentence(state.error)}` : ''}{' '}
            <Link to={`/runs/${encodeURIComponent(runId)}`}>Open the run</Link>
          </p>
        ) : null}
        {lost && !ended ? (
          <p>
            The progress stream was interrupted. <Link to={`/runs/${encodeURIComponent(runId)}`}>Open the run</Link> to see where it is.
          </p>
        ) : null}
      </div>
      {running ? (
        <div
          className={`progress-bar${percent === undefined ? ' indeterminate' : ''}`}
          role="progressbar"
          aria-label="Sync progress"
          aria-valuemin={0}
          aria-valuemax={100}
          {...(percent !== undefined ? { 'aria-valuenow': percent } : { 'aria-valuetext': phase || 'working' })}
        >
          <div className="progress-fill" style={percent !== undefined ? { width: `${percent}%` } : undefined} />
        </div>
      ) : null}
      <CounterList counters={state?.counters} empty={running ? 'No changes counted yet.' : 'Nothing changed.'} />
    </section>
  );
}
