// A directory group: its members with what manages each membership, and its history.

import { Link, useParams } from 'react-router';
import type { DirectoryGroupDetail, HistoryEntry } from '../api.ts';
import { api } from '../api.ts';
import { EmptyRow, ErrorMessage, Loading, PageHeader, Section, useLoad } from '../components.tsx';
import { describeChange, describeManagedBy, formatDate } from '../format.ts';

export function HistoryTable({ entries }: { entries: (HistoryEntry & { text: string })[] }) {
  return (
    <div className="table-wrap">
      <table>
        <caption className="sr-only">History</caption>
        <thead>
          <tr>
            <th scope="col">When</th>
            <th scope="col">Change</th>
            <th scope="col">Run</th>
          </tr>
        </thead>
        <tbody>
          {entries.length === 0 ? <EmptyRow colSpan={3}>No changes recorded.</EmptyRow> : null}
          {entries.map((h) => (
            <tr key={h.seq}>
              <td>{formatDate(h.at)}</td>
              <td>{h.text}</td>
              <td>{h.runId ? <Link to={`/runs/${encodeURIComponent(h.runId)}`}>open the run</Link> : <span className="muted">by hand</span>}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
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
        <div className="table-wrap">
          <table>
            <caption className="sr-only">Members of {g.name}</caption>
            <thead>
              <tr>
                <th scope="col">Username</th>
                <th scope="col">Display name</th>
                <th scope="col">Managed by</th>
              </tr>
            </thead>
            <tbody>
              {g.members.length === 0 ? <EmptyRow colSpan={3}>No members.</EmptyRow> : null}
              {g.members.map((m, i) => (
                <tr key={`${m.id}-${i}`}>
                  <td>
                    <Link to={`/directory/users/${encodeURIComponent(m.id)}`}>{m.username}</Link>
                  </td>
                  <td>{m.displayName}</td>
                  <td>{describeManagedBy(m.managedBy)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </Section>
      <Section title="History">
        <HistoryTable entries={(g.history ?? []).map((h) => ({ ...h, text: describeChange({ entity: (h.entity as 'group' | 'membership' | undefined) ?? 'group', op: h.op, data: h.data }) }))} />
      </Section>
    </>
  );
}
