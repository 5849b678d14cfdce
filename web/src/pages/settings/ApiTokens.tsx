// API tokens for automation: shown once when created, revocable.

import { useState } from 'react';
import type { AdminTokenRow, TokenScope } from '../../api.ts';
import { api } from '../../api.ts';
import { ErrorMessage, Loading, Notice, Section, SelectField, TextField, useAction, useConfirm, useLoad } from '../../components.tsx';
import { useSession } from '../../session.tsx';
import { NewTokenNotice, TokenTable } from '../connector/Configuration.tsx';

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
          <TokenTable
            caption="API tokens"
            tokens={tokens.data.tokens}
            empty="No API tokens."
            scope={(t) => SCOPES.find(([s]) => s === t.scope)?.[1] ?? t.scope}
            actions={
              canChange
                ? (t) => (
                    <button type="button" className="small danger-outline" onClick={() => void revoke(t)} disabled={action.busy} aria-label={`Revoke API token ${t.label}`}>
                      Revoke
                    </button>
                  )
                : undefined
            }
          />
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
