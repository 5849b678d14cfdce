// The directory: search users and groups.

import { useState } from 'react';
import { Link, useSearchParams } from 'react-router';
import type { DirectoryGroup, DirectoryUser } from '../api.ts';
import { api } from '../api.ts';
import { Badge, DataTable, ErrorMessage, Loading, PageHeader, useLoad } from '../components.tsx';

function ownerText(owner: DirectoryUser['owner'] | DirectoryGroup['owner']): string {
  if (owner === null || owner === undefined || owner === 'local') return 'local';
  if (typeof owner === 'string') return owner;
  return owner.connectorId;
}

export function DirectoryPage() {
  const [params, setParams] = useSearchParams();
  const view = params.get('view') === 'groups' ? 'groups' : 'users';
  const q = params.get('q') ?? '';
  const [text, setText] = useState(q);
  const users = useLoad((signal) => (view === 'users' ? api.get<{ users: DirectoryUser[] }>('/users', { search: q, limit: 200 }, signal) : Promise.resolve(undefined)), [view, q]);
  const groups = useLoad((signal) => (view === 'groups' ? api.get<{ groups: DirectoryGroup[] }>('/groups', { search: q, limit: 200 }, signal) : Promise.resolve(undefined)), [view, q]);
  const go = (v: string, query: string) => {
    const next = new URLSearchParams();
    if (v === 'groups') next.set('view', 'groups');
    if (query) next.set('q', query);
    setParams(next);
  };
  const list = view === 'users' ? users : groups;
  return (
    <>
      <PageHeader title="Directory" />
      <p className="muted lead">The users and groups of the applications, with where each came from.</p>
      <nav className="tabs" aria-label="Directory views">
        <ul>
          <li>
            <Link to="/directory" className={view === 'users' ? 'active' : undefined} aria-current={view === 'users' ? 'page' : undefined} onClick={() => setText('')}>
              Users
            </Link>
          </li>
          <li>
            <Link to="/directory?view=groups" className={view === 'groups' ? 'active' : undefined} aria-current={view === 'groups' ? 'page' : undefined} onClick={() => setText('')}>
              Groups
            </Link>
          </li>
        </ul>
      </nav>
      <form
        className="search-form"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          go(view, text.trim());
        }}
      >
        <label htmlFor="directory-search">{view === 'users' ? 'Search users by username' : 'Search groups by name'}</label>
        <div className="copy-row">
          <input id="directory-search" type="search" value={text} onChange={(e) => setText(e.target.value)} placeholder="part of the name" />
          <button type="submit" className="primary">
            Search
          </button>
        </div>
      </form>
      <ErrorMessage error={list.error} />
      {list.loading && !list.data ? <Loading /> : null}
      {view === 'users' && users.data ? (
        <DataTable
          caption="Users"
          columns={['Username', 'Display name', 'E-mail', 'State', 'Owner']}
          rows={users.data.users}
          empty={q ? `No user name contains “${q}”.` : 'The directory has no users yet.'}
          row={(u) => (
            <tr key={u.id}>
              <td>
                <Link to={`/directory/users/${encodeURIComponent(u.id)}`}>{u.username}</Link>
              </td>
              <td>{u.displayName}</td>
              <td>{u.email ?? '—'}</td>
              <td>
                {u.active ? <Badge tone="good">active</Badge> : <Badge tone="warn">inactive</Badge>} {u.inScope ? null : <Badge>out of scope</Badge>}
              </td>
              <td>{ownerText(u.owner)}</td>
            </tr>
          )}
        />
      ) : null}
      {view === 'groups' && groups.data ? (
        <DataTable
          caption="Groups"
          columns={['Name', 'Members', 'Owner']}
          rows={groups.data.groups}
          empty={q ? `No group name contains “${q}”.` : 'The directory has no groups yet.'}
          row={(g) => (
            <tr key={g.id}>
              <td>
                <Link to={`/directory/groups/${encodeURIComponent(g.id)}`}>{g.name}</Link>
              </td>
              <td>{g.memberCount}</td>
              <td>{ownerText(g.owner)}</td>
            </tr>
          )}
        />
      ) : null}
    </>
  );
}
