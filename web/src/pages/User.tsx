// A directory user: attributes, custom attributes, groups with what manages each membership, the user in
// each target, history.

import { Link, useParams } from 'react-router';
import type { DirectoryUserDetail } from '../api.ts';
import { api } from '../api.ts';
import { Badge, DataTable, ErrorMessage, Loading, PageHeader, Section, useLoad } from '../components.tsx';
import { describeChange, describeManagedBy, formatDate, managedByConnector } from '../format.ts';
import { HistoryTable } from './Group.tsx';

export function UserPage() {
  const { id = '' } = useParams();
  const user = useLoad((signal) => api.get<DirectoryUserDetail>(`/users/${encodeURIComponent(id)}`, undefined, signal), [id]);
  if (user.error && !user.data) {
    return (
      <>
        <PageHeader title="User" back={{ to: '/directory', label: 'Directory' }} />
        <ErrorMessage error={user.error} />
      </>
    );
  }
  const u = user.data;
  if (!u) return <Loading />;
  const custom = Object.entries(u.attributes);
  const owner = u.owner === 'local' ? null : u.owner;
  return (
    <>
      <PageHeader
        title={
          <>
            {u.username} {u.active ? <Badge tone="good">active</Badge> : <Badge tone="warn">inactive</Badge>}
          </>
        }
        back={{ to: '/directory', label: 'Directory' }}
      />
      <Section title="Attributes">
        <dl className="props">
          <dt>Username</dt>
          <dd>{u.username}</dd>
          <dt>Display name</dt>
          <dd>{u.displayName}</dd>
          <dt>E-mail</dt>
          <dd>{u.email ?? '—'}</dd>
          <dt>Active</dt>
          <dd>{u.active ? 'yes' : 'no'}</dd>
          <dt>Owner</dt>
          <dd>
            {owner ? (
              <>
                connector <Link to={`/connectors/${encodeURIComponent(owner.connectorId)}`}>{owner.connectorId}</Link>
                {owner.sourceId ? (
                  <>
                    , provider id <span className="mono">{owner.sourceId}</span>
                  </>
                ) : null}
              </>
            ) : (
              'local user (owned by no connector)'
            )}
          </dd>
          <dt>In scope</dt>
          <dd>{u.inScope ? 'yes: the owning connector’s rules keep this user' : 'no: the owning connector’s rules leave this user out (its groups are kept as they were)'}</dd>
          <dt>Created</dt>
          <dd>{formatDate(u.createdAt)}</dd>
          <dt>Updated</dt>
          <dd>{formatDate(u.updatedAt)}</dd>
        </dl>
      </Section>
      <Section title="Custom attributes">
        {custom.length === 0 ? (
          <p className="muted">None.</p>
        ) : (
          <dl className="props">
            {custom.map(([k, v]) => (
              <div key={k} className="contents">
                <dt className="mono">{k}</dt>
                <dd>{v}</dd>
              </div>
            ))}
          </dl>
        )}
      </Section>
      <Section title="Groups" description="Each membership with what manages it: a connector (from the identity provider's groups), a default or always-assigned group rule, or a person (local).">
        <DataTable
          caption={`Groups of ${u.username}`}
          columns={['Group', 'Managed by']}
          rows={u.groups}
          empty="In no group."
          row={(g, i) => {
            const c = managedByConnector(g.managedBy);
            return (
              <tr key={`${g.id}-${i}`}>
                <td>
                  <Link to={`/directory/groups/${encodeURIComponent(g.id)}`}>{g.name}</Link>
                </td>
                <td>{c ? <Link to={`/connectors/${encodeURIComponent(c)}/groups`}>{describeManagedBy(g.managedBy)}</Link> : describeManagedBy(g.managedBy)}</td>
              </tr>
            );
          }}
        />
      </Section>
      {u.targets?.length ? (
        <Section title="In the applications" description="Where each target has this user: the name the application knows it by, and whether a change waits or is parked.">
          <DataTable
            caption={`${u.username} in the targets`}
            columns={['Target', 'Name there', 'State']}
            rows={u.targets}
            empty="No targets."
            row={(t) => (
              <tr key={t.targetId}>
                <td>
                  <Link to={`/targets/${encodeURIComponent(t.targetId)}`}>{t.target}</Link>
                </td>
                <td>{t.remoteName ? `${t.remoteName}${t.origin === 'adopted' ? ' (adopted)' : ''}${t.active === false ? ', inactive' : ''}` : '—'}</td>
                <td>
                  {t.state === 'delivered' ? <Badge tone="good">delivered</Badge> : null}
                  {t.state === 'pending' ? <Badge>waiting</Badge> : null}
                  {t.state === 'parked' ? (
                    <>
                      <Badge tone="warn">parked</Badge> {t.error}
                    </>
                  ) : null}
                  {t.state === 'not-delivered' ? <span className="muted">not delivered (out of its scope, or not yet)</span> : null}
                </td>
              </tr>
            )}
          />
        </Section>
      ) : null}
      <Section title="History" description="The last 100 changes to this user, newest first.">
        <HistoryTable entries={u.history.map((h) => ({ ...h, text: describeChange({ entity: h.entity === 'membership' ? 'membership' : 'user', op: h.op, data: h.data }) }))} />
      </Section>
    </>
  );
}
