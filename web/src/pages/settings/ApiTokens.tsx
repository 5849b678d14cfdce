// API tokens for automation: shown once when created, revocable.

import { useState } from 'react';
import type { AdminTokenRow, TokenScope } from '../../api.ts';
import { api } from '../../api.ts';
import { Badge, EmptyRow, ErrorMessage, Loading, Notice, Section, SelectField, TextField, useAction, useConfirm, useLoad } from '../../components.tsx';
import { formatDate } from '../../format.ts';
import { useSession } from '../../session.tsx';
import { NewTokenNotice } from '../connector/Configuration.tsx';

const SCOPES: readonly (readonly [TokenScope, string])[] = [
  ['admin', 'Administrator: everything'],
  ['auditor', 'Auditor: read only'],
  ['sync', 'Sync: trigger syncs and read their status'],
  ['sync-user', 'Sync one user (sign-in hook)'],
];

export function ApiTokensSettings() {
  const { canChange } = useSession();
  const tokens = useLoad((signal) => api.get<{ tokens: AdminTokenRow[] }>('/admin-tokens', undefined, signal), []);
  const [label, setLabel] = useState('');
  const [scope, setScope] = useState<TokenScope>('sync');
  const [shown, setShown] = useState<{ token: string; label: string }>();
  const [confirm, dialog] = useConfirm();
  const action = useAction();

  const create = async () => {
    const r = await action.run(() => api.post<{ token: string; info: AdminTokenRow }>('/admin-tokens', { label: label.trim(), scope }));
    if (r) {
      setShown({ token: r.token, label: r.info?.label ?? label });
      setLabel('');
      tokens.reload();
    }
  };
  const revoke = async (t: AdminTokenRow) => {
    if (!(await confirm({ title: `Revoke the token “${t.label}”?`, message: <p>Requests with it get 401 from now on. This cannot be undone.</p>, confirmLabel: 'Revoke token', danger: true }))) return;
    await action.run(() => api.del(`/admin-tokens/${encodeURIComponent(t.id)}`));
    tokens.reload();
  };

  return (
    <>
      {dialog}
      <Section title="API tokens" description="For scripts and other systems: send it as Authorization: Bearer <token>. The API is described at /api/openapi.json.">
        <ErrorMessage error={tokens.error || action.error} />
        {shown ? (
          <>
            <Notice kind="success">The token “{shown.label}” is created.</Notice>
            <NewTokenNotice token={shown.token} what="New API token" />
          </>
        ) : null}
        {tokens.data ? (
          <div className="table-wrap">
            <table>
              <caption className="sr-only">API tokens</caption>
              <thead>
                <tr>
                  <th scope="col">Label</th>
                  <th scope="col">Scope</th>
                  <th scope="col">Created</th>
                  <th scope="col">State</th>
                  {canChange ? (
                    <th scope="col">
                      <span className="sr-only">Actions</span>
                    </th>
                  ) : null}
                </tr>
              </thead>
              <tbody>
                {tokens.data.tokens.length === 0 ? <EmptyRow colSpan={canChange ? 5 : 4}>No API tokens.</EmptyRow> : null}
                {tokens.data.tokens.map((t) => (
                  <tr key={t.id}>
                    <td>{t.label || <span className="muted">(no label)</span>}</td>
                    <td>{SCOPES.find(([s]) => s === t.scope)?.[1] ?? t.scope}</td>
                    <td>{formatDate(t.createdAt)}</td>
                    <td>{t.revokedAt ? <Badge>revoked {formatDate(t.revokedAt)}</Badge> : <Badge tone="good">active</Badge>}</td>
                    {canChange ? (
                      <td className="row-actions">
                        {!t.revokedAt ? (
                          <button type="button" className="small danger-outline" onClick={() => void revoke(t)} disabled={action.busy} aria-label={`Revoke API token ${t.label}`}>
                            Revoke
                          </button>
                        ) : null}
                      </td>
                    ) : null}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ) : (
          <Loading />
        )}
      </Section>
      {canChange ? (
        <Section title="Create an API token">
          <form
            onSubmit={(e) => {
              e.preventDefault();
              void create();
            }}
          >
            <div className="field-row">
              <TextField label="Token label" value={label} onChange={setLabel} required placeholder="e.g. nightly report" />
              <SelectField label="Token scope" value={scope} onChange={setScope} options={SCOPES} />
            </div>
            <div className="form-actions">
              <button type="submit" className="primary" disabled={action.busy || !label.trim()}>
                Create API token
              </button>
            </div>
          </form>
        </Section>
      ) : null}
    </>
  );
}
