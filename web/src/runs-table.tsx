// A table of runs: when, what started it, how it ended, how long it took, what it changed, its memory.

import { Link } from 'react-router';
import type { RunSummary } from './api.ts';
import { DataTable, StatusBadge } from './components.tsx';
import { counterSummary, formatBytes, formatDate, formatDuration, triggerLabel } from './format.ts';

export function RunsTable({ runs, showConnector = true, caption, names = {} }: { runs: RunSummary[]; showConnector?: boolean; caption: string; names?: Record<string, string> }) {
  return (
    <DataTable
      caption={caption}
      columns={['Started', showConnector ? 'Connector' : null, 'Trigger', 'Status', 'Duration', 'Changes', 'Peak memory']}
      rows={runs}
      empty="No runs yet."
      row={(r) => (
        <tr key={r.id}>
          <td className="nowrap">
            <Link to={`/runs/${encodeURIComponent(r.id)}`} aria-label={`Run of ${formatDate(r.startedAt)} (${triggerLabel(r.trigger)}, ${r.status})`}>
              {formatDate(r.startedAt)}
            </Link>
          </td>
          {showConnector ? (
            <td>
              <Link to={`/connectors/${encodeURIComponent(r.connectorId)}/history`}>{names[r.connectorId] ?? r.connectorId}</Link>
            </td>
          ) : null}
          <td className="nowrap">{triggerLabel(r.trigger)}</td>
          <td>
            <StatusBadge status={r.status} />
            {r.status === 'running' && r.phase ? <div className="sub">{r.phase}</div> : null}
          </td>
          <td className="nowrap">{formatDuration(r.startedAt, r.endedAt)}</td>
          <td className="changes-cell">{r.error ? <span className="text-bad">{r.error}</span> : counterSummary(r.counters)}</td>
          <td className="nowrap">{formatBytes(r.peakRss)}</td>
        </tr>
      )}
    />
  );
}
