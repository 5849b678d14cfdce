// A directory group: its members with what manages each membership, and its history.

import { Link, useParams } from 'react-router';
import type { DirectoryGroupDetail, HistoryEntry } from '../api.ts';
import { api } from '../api.ts';
import { DataTable, ErrorMessage, Loading, PageHeader, Section, useLoad } from '../components.tsx';
import { describeChange, describeManagedBy, formatDate } from '../format.ts';

export function HistoryTable({ entries }: { entries: (HistoryEntry & { text: string })[] }) {
  return (
    <DataTable
      caption="History"
      columns={['When', 'Change', 'Run']}
      rows={entries}
      empty="No changes recorded."
      row={(h) => (
        <tr key={h.seq}>
          <td>{formatDate(h.at)}</td>
          <td>{h.text}</td>
          <td>{h.runId ? <Link to={`/runs/${encodeURIComponent(h.runId)}`}>open the run</Link> : <span className="muted">by hand</span>}</td>
        </tr>
      )}
    />
  );
}

function ownerText(owner: DirectoryGroupDetail['owner']): string {
  if (owner === null || owner === undefined || owner === 'local') return 'local group';
  if (typeof owner === 'string') return owner;
  return `connector ${owner.connectorId}`;
}

export function GroupPage() {
  const { id = '' } = useParams();
  const group = useLoad((signal) => api.get<DirectoryGroupDetail>(`/groups/${encodeURIComponent(id)}`, undefined, signal), [id]);
  if (group.error && !group.data) {
    return (
      <>
        <PageHeader title="Group" back={{ to: '/directory?view=groups', label: 'Directory' }} />
        <ErrorMessage error={group.error} />
      </>
    );
  }
  const g = group.data;
  if (!g) return <Loading />;
  return (
    <>
      <PageHeader title={g.name} back={{ to: '/directory?view=groups', label: 'Directory' }} />
      <p className="muted">
        {ownerText(g.owner)} · {g.members.length} member{g.members.length === 1 ? '' : 's'}
      </p>
      <Section title="Members">
        <DataTable
          caption={`Members of ${g.name}`}
          columns={['Username', 'Display name', 'Managed by']}
          rows={g.members}
          empty="No members."
          row={(m, i) => (
            <tr key={`${m.id}-${i}`}>
              <td>
                <Link to={`/directory/users/${encodeURIComponent(m.id)}`}>{m.username}</Link>
              </td>
              <td>{m.displayName}</td>
              <td>{describeManagedBy(m.managedBy)}</td>
            </tr>
          )}
        />
      </Section>
      <Section title="History">
        <HistoryTable entries={(g.history ?? []).map((h) => ({ ...h, text: describeChange({ entity: (h.entity as 'group' | 'membership' | undefined) ?? 'group', op: h.op, data: h.data }) }))} />
      </Section>
    </>
  );
}
