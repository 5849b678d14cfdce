// A table of runs: when, what started it, how it ended, how long it took, what it changed, its memory.

import { Link } from 'react-router';
import type { RunSummary } from './api.ts';
import { EmptyRow, StatusBadge } from './components.tsx';
import { counterSummary, formatBytes, formatDate, formatDuration, triggerLabel } from './format.ts';

export function RunsTable({ runs, showConnector = true, caption, names = {} }: { runs: RunSummary[]; showConnector?: boolean; caption: string; names?: Record<string, string> }) {
  const cols = showConnector ? 7 : 6;
  return (
    <div className="table-wrap">
      <table>
        <caption className="sr-only">{caption}</caption>
        <thead>
          <tr>
            <th scope="col">Started</th>
            {showConnector ? <th scope="col">Connector</th> : null}
            <th scope="col">Trigger</th>
            <th scope="col">Status</th>
            <th scope="col">Duration</th>
            <th scope="col">Changes</th>
            <th scope="col">Peak memory</th>
          </tr>
        </thead>
        <tbody>
          {runs.length === 0 ? <EmptyRow colSpan={cols}>No runs yet.</EmptyRow> : null}
          {runs.map((r) => (
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
          ))}
        </tbody>
      </table>
    </div>
  );
}
