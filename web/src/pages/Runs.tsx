// Sync history across connectors: every run with its trigger, status, duration, counters and peak memory.

import { useSearchParams } from 'react-router';
import type { Connector, RunSummary } from '../api.ts';
import { api } from '../api.ts';
import { ErrorMessage, Loading, PageHeader, SelectField, useLoad } from '../components.tsx';
import { RunsTable } from '../runs-table.tsx';

const STATUSES = [
  ['', 'Any status'],
  ['running', 'Running'],
  ['succeeded', 'Succeeded'],
  ['held', 'Held for approval'],
  ['failed', 'Failed'],
  ['aborted', 'Aborted'],
] as const;

export function RunsPage() {
  const [params, setParams] = useSearchParams();
  const connector = params.get('connector') ?? '';
  const status = params.get('status') ?? '';
  const connectors = useLoad((signal) => api.get<{ connectors: Connector[] }>('/connectors', undefined, signal), []);
  const runs = useLoad((signal) => api.get<{ runs: RunSummary[] }>('/runs', { connector, status, limit: 100 }, signal), [connector, status]);
  const set = (k: string, v: string) => {
    const next = new URLSearchParams(params);
    if (v) next.set(k, v);
    else next.delete(k);
    setParams(next, { replace: true });
  };
  return (
    <>
      <PageHeader title="Sync history">
        <button type="button" onClick={runs.reload} disabled={runs.loading}>
          Refresh
        </button>
      </PageHeader>
      <div className="filters">
        <SelectField
          label="Connector"
          value={connector}
          onChange={(v) => set('connector', v)}
          options={[['', 'All connectors'] as const, ...(connectors.data?.connectors ?? []).map((c) => [c.id, c.name] as const)]}
        />
        <SelectField label="Status" value={status as (typeof STATUSES)[number][0]} onChange={(v) => set('status', v)} options={STATUSES} />
      </div>
      <ErrorMessage error={runs.error} />
      {runs.data ? <RunsTable runs={runs.data.runs} caption="Runs" names={Object.fromEntries((connectors.data?.connectors ?? []).map((c) => [c.id, c.name]))} /> : <Loading />}
      {runs.data && runs.data.runs.length === 100 ? <p className="muted">The newest 100 runs are shown.</p> : null}
    </>
  );
}
