// Sync history of one connector.

import type { RunSummary } from '../../api.ts';
import { api } from '../../api.ts';
import { ErrorMessage, Loading, useLoad } from '../../components.tsx';
import { RunsTable } from '../../runs-table.tsx';

export function HistoryTab({ connectorId, tick }: { connectorId: string; tick: number }) {
  const runs = useLoad((signal) => api.get<{ runs: RunSummary[] }>('/runs', { connector: connectorId, limit: 100 }, signal), [connectorId, tick]);
  return (
    <section aria-label="Sync history">
      <div className="toolbar">
        <button type="button" onClick={runs.reload} disabled={runs.loading}>
          Refresh
        </button>
      </div>
      <ErrorMessage error={runs.error} />
      {runs.data ? <RunsTable runs={runs.data.runs} showConnector={false} caption="Runs of this connector" /> : <Loading />}
    </section>
  );
}
