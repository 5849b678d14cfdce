// The connectors: one per identity provider (Multiple IdPs), with the state of their last run.

import { Link } from 'react-router';
import type { Connector } from '../api.ts';
import { api } from '../api.ts';
import { Badge, DataTable, ErrorMessage, Loading, PageHeader, StatusBadge, useLoad } from '../components.tsx';
import { formatDate, KIND_LABELS, triggerLabel } from '../format.ts';
import { useSession } from '../session.tsx';

export function ConnectorsPage() {
  const { canChange } = useSession();
  const list = useLoad((signal) => api.get<{ connectors: Connector[] }>('/connectors', undefined, signal), []);
  return (
    <>
      <PageHeader title="Connectors">
        {canChange ? (
          <Link className="button primary" to="/connectors/new">
            Add connector
          </Link>
        ) : null}
      </PageHeader>
      <p className="muted lead">
        Each connector brings the users and groups of one identity provider into the directory, through its own user and group sync settings. Several
        connectors can feed the directory side by side.
      </p>
      <ErrorMessage error={list.error} />
      {list.loading && !list.data ? <Loading /> : null}
      {list.data ? (
        <DataTable
          caption="Connectors"
          columns={['Name', 'Kind', 'Enabled', 'Last run', 'Started']}
          rows={list.data.connectors}
          empty={`No connectors yet.${canChange ? ' Add one to start.' : ''}`}
          row={(c) => (
            <tr key={c.id}>
              <td>
                <Link to={`/connectors/${encodeURIComponent(c.id)}`}>{c.name}</Link>
                <div className="sub mono">{c.id}</div>
              </td>
              <td>{KIND_LABELS[c.kind] ?? c.kind}</td>
              <td>{c.enabled ? <Badge tone="good">enabled</Badge> : <Badge tone="warn">disabled</Badge>}</td>
              <td>
                {c.lastRun ? (
                  <Link to={`/runs/${encodeURIComponent(c.lastRun.id)}`} aria-label={`Last run of ${c.name}: ${c.lastRun.status}`}>
                    <StatusBadge status={c.lastRun.status} />
                  </Link>
                ) : c.lastRun === null ? (
                  <StatusBadge status={null} />
                ) : (
                  '—'
                )}
                {c.lastRun ? <div className="sub">{triggerLabel(c.lastRun.trigger)}</div> : null}
              </td>
              <td>{formatDate(c.lastRun?.startedAt)}</td>
            </tr>
          )}
        />
      ) : null}
    </>
  );
}
