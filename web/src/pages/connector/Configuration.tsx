// Configuration: the connector's name and state; for SCIM the Base URL and its tokens (create, rotate,
// revoke); for Graph and LDAP the source settings with Test connection (and LDAP's Test user search).

import type { ReactNode } from 'react';
import { useState } from 'react';
import type { ConnectorDetail, ScimTokenRow } from '../../api.ts';
import { api } from '../../api.ts';
import { ACTIONS_COLUMN, Badge, CheckboxField, CopyField, DataTable, ErrorMessage, IssuesContext, Loading, Notice, Section, TextField, useAction, useConfirm, useLoad } from '../../components.tsx';
import { formatDate } from '../../format.ts';
import type { SecretDraft, SourceDraft } from '../../forms/source.tsx';
import { ConnectionTestPanel, draftFrom, GRAPH_SECRETS, GraphSourceFields, LDAP_SECRETS, LdapSourceFields, secretsSet, sourceBody, UserSearchPanel } from '../../forms/source.tsx';
import { useSession } from '../../session.tsx';

export function scimBaseUrl(c: { id: string; scimBaseUrl?: string }): string {
  return c.scimBaseUrl ?? `${window.location.origin}/scim/v2/${encodeURIComponent(c.id)}`;
}

export function ConfigurationTab({ connector, onChanged }: { connector: ConnectorDetail; onChanged: () => void }) {
  return (
    <>
      <GeneralSection connector={connector} onChanged={onChanged} />
      {connector.kind === 'scim' ? <ScimSection connector={connector} /> : <SourceSection connector={connector} onChanged={onChanged} />}
    </>
  );
}

function GeneralSection({ connector, onChanged }: { connector: ConnectorDetail; onChanged: () => void }) {
  const { canChange } = useSession();
  const [name, setName] = useState(connector.name);
  const [enabled, setEnabled] = useState(connector.enabled);
  const [done, setDone] = useState('');
  const action = useAction();
  const dirty = name !== connector.name || enabled !== connector.enabled;
  const save = async () => {
    setDone('');
    const ok = await action.run(async () => {
      await api.patch(`/connectors/${encodeURIComponent(connector.id)}`, { ...(name !== connector.name ? { name } : {}), ...(enabled !== connector.enabled ? { enabled } : {}) });
      return true;
    });
    if (ok) {
      setDone('Saved.');
      onChanged();
    }
  };
  return (
    <Section title="Connector">
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void save();
        }}
      >
        <fieldset className="plain" disabled={!canChange}>
          <div className="field-row">
            <TextField label="Name" value={name} onChange={setName} required />
            <TextField label="Connector ID" value={connector.id} onChange={() => {}} readOnly mono hint="Used in URLs and on the command line; it cannot change." />
          </div>
          <CheckboxField
            label="Enabled"
            checked={enabled}
            onChange={setEnabled}
            hint={connector.kind === 'scim' ? 'A disabled SCIM connector answers 403 to its identity provider.' : 'A disabled pull connector does not run, by schedule or by hand.'}
          />
        </fieldset>
        <ErrorMessage error={action.error} />
        <div aria-live="polite">{done && !dirty ? <Notice kind="success">{done}</Notice> : null}</div>
        {canChange ? (
          <div className="form-actions">
            <button type="submit" disabled={!dirty || action.busy}>
              Save
            </button>
          </div>
        ) : null}
      </form>
      <p className="muted small">Created {formatDate(connector.createdAt)}.</p>
    </Section>
  );
}

// ------------------------------------------------------------------------------------------------ SCIM

/** A token shown this once. */
export function NewTokenNotice({ token, what }: { token: string; what: string }) {
  return (
    <div className="new-token" role="status">
      <CopyField label={what} value={token} secret />
      <p className="warning">
        <strong>Copy it now: it will not be shown again.</strong> usersync keeps only a hash of it. If it is lost, create a new one.
      </p>
    </div>
  );
}

/** Bearer tokens (SCIM or API): label, created, state; `scope` adds a column, `actions` a cell of buttons for live tokens. */
export function TokenTable<T extends ScimTokenRow>({ caption, tokens, empty, scope, actions }: { caption: string; tokens: T[]; empty: string; scope?: (t: T) => ReactNode; actions?: ((t: T) => ReactNode) | undefined }) {
  return (
    <DataTable
      caption={caption}
      columns={['Label', scope ? 'Scope' : null, 'Created', 'State', actions ? ACTIONS_COLUMN : null]}
      rows={tokens}
      empty={empty}
      row={(t) => (
        <tr key={t.id}>
          <td>{t.label || <span className="muted">(no label)</span>}</td>
          {scope ? <td>{scope(t)}</td> : null}
          <td>{formatDate(t.createdAt)}</td>
          <td>{t.revokedAt ? <Badge>revoked {formatDate(t.revokedAt)}</Badge> : <Badge tone="good">active</Badge>}</td>
          {actions ? <td className="row-actions">{!t.revokedAt ? actions(t) : null}</td> : null}
        </tr>
      )}
    />
  );
}

function ScimSection({ connector }: { connector: ConnectorDetail }) {
  const { canChange } = useSession();
  const path = `/connectors/${encodeURIComponent(connector.id)}/tokens`;
  const tokens = useLoad((signal) => api.get<{ tokens: ScimTokenRow[] }>(path, undefined, signal), [path]);
  const [label, setLabel] = useState('');
  const [shown, setShown] = useState<{ token: string; note: string }>();
  const [confirm, dialog] = useConfirm();
  const action = useAction();

  const create = async (tokenLabel: string) => api.post<{ token: string; info: ScimTokenRow }>(path, { label: tokenLabel });

  const add = async () => {
    const r = await action.run(() => create(label.trim() || `token ${new Date().toISOString().slice(0, 10)}`));
    if (r) {
      setShown({ token: r.token, note: `The token “${r.info?.label ?? label}” is created.` });
      setLabel('');
      tokens.reload();
    }
  };

  const rotate = async (t: ScimTokenRow) => {
    const ok = await confirm({
      title: `Rotate the token “${t.label}”?`,
      message: <p>A new token is created and this one is revoked at once: the identity provider gets 401 until you paste the new token into it.</p>,
      confirmLabel: 'Rotate token',
    });
    if (!ok) return;
    const r = await action.run(async () => {
      const made = await create(`${t.label} (rotated ${new Date().toISOString().slice(0, 10)})`);
      await api.del(`${path}/${encodeURIComponent(t.id)}`);
      return made;
    });
    if (r) setShown({ token: r.token, note: `The token “${t.label}” is revoked; this is its replacement. Paste it into the identity provider as the Secret Token.` });
    tokens.reload();
  };

  const revoke = async (t: ScimTokenRow) => {
    const ok = await confirm({
      title: `Revoke the token “${t.label}”?`,
      message: <p>Requests with this token get 401 within two seconds. This cannot be undone.</p>,
      confirmLabel: 'Revoke token',
      danger: true,
    });
    if (!ok) return;
    await action.run(() => api.del(`${path}/${encodeURIComponent(t.id)}`));
    tokens.reload();
  };

  return (
    <>
      {dialog}
      <Section title="SCIM endpoint" description="In Entra ID: Enterprise applications → your app → Provisioning → Automatic. Paste the SCIM Base URL as the Tenant URL and a token as the Secret Token, then Test Connection.">
        <CopyField label="SCIM Base URL" value={scimBaseUrl(connector)} />
      </Section>
      <Section title="Tokens" description="Several tokens may be valid at once, so a new one can be put in place before the old one is revoked.">
        <ErrorMessage error={tokens.error || action.error} />
        {shown ? (
          <>
            <Notice kind="success">{shown.note}</Notice>
            <NewTokenNotice token={shown.token} what="New bearer token" />
          </>
        ) : null}
        {tokens.data ? (
          <TokenTable
            caption="SCIM tokens"
            tokens={tokens.data.tokens}
            empty="No tokens: the identity provider cannot connect."
            actions={
              canChange
                ? (t) => (
                    <>
                      <button type="button" className="small" onClick={() => void rotate(t)} disabled={action.busy} aria-label={`Rotate token ${t.label}`}>
                        Rotate token
                      </button>
                      <button type="button" className="small danger-outline" onClick={() => void revoke(t)} disabled={action.busy} aria-label={`Revoke token ${t.label}`}>
                        Revoke
                      </button>
                    </>
                  )
                : undefined
            }
          />
        ) : tokens.loading ? (
          <Loading />
        ) : null}
        {canChange ? (
          <form
            className="inline-form"
            onSubmit={(e) => {
              e.preventDefault();
              void add();
            }}
          >
            <TextField label="Label of a new token" value={label} onChange={setLabel} placeholder="e.g. rotation 2026-11" />
            <button type="submit" disabled={action.busy}>
              Create token
            </button>
          </form>
        ) : null}
      </Section>
    </>
  );
}

// --------------------------------------------------------------------------------------------- source

function SourceSection({ connector, onChanged }: { connector: ConnectorDetail; onChanged: () => void }) {
  const { canChange } = useSession();
  const kind = connector.kind as 'graph' | 'ldap';
  const secretNames = kind === 'graph' ? GRAPH_SECRETS : LDAP_SECRETS;
  const initial = connector.source ?? {};
  const [stored, setStored] = useState<Record<string, unknown>>(initial);
  const [draft, setDraft] = useState<SourceDraft>(() => draftFrom(initial, secretNames));
  const [secrets, setSecrets] = useState<SecretDraft>({});
  const [savedNote, setSavedNote] = useState('');
  const action = useAction();
  const dirty = JSON.stringify(draft) !== JSON.stringify(draftFrom(stored, secretNames)) || Object.values(secrets).some(Boolean);

  const save = async (): Promise<boolean> => {
    setSavedNote('');
    const r = await action.run(() => api.put<Record<string, unknown>>(`/connectors/${encodeURIComponent(connector.id)}/source`, sourceBody(kind, draft, secrets)));
    if (!r) return false;
    setStored(r);
    setDraft(draftFrom(r, secretNames));
    setSecrets({});
    setSavedNote('The source settings are saved.');
    onChanged();
    return true;
  };

  const Fields = kind === 'graph' ? GraphSourceFields : LdapSourceFields;
  return (
    <>
      <Section title={kind === 'graph' ? 'Microsoft Graph' : 'LDAP / Active Directory'} description="Where usersync reads users and groups from. Secrets are sealed at rest and never shown again.">
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void save();
          }}
        >
          <IssuesContext.Provider value={action.issues}>
            <Fields draft={draft} setDraft={setDraft} secrets={secrets} setSecrets={setSecrets} stored={secretsSet(stored, secretNames)} disabled={!canChange} />
          </IssuesContext.Provider>
          <ErrorMessage error={action.error} issues={action.issues} />
          <div aria-live="polite">{savedNote && !dirty ? <Notice kind="success">{savedNote}</Notice> : null}</div>
          {canChange ? (
            <div className="form-actions">
              <button type="submit" className="primary" disabled={!dirty || action.busy}>
                {action.busy ? 'Saving…' : 'Save source settings'}
              </button>
              <button
                type="button"
                disabled={!dirty || action.busy}
                onClick={() => {
                  setDraft(draftFrom(stored, secretNames));
                  setSecrets({});
                  action.clear();
                }}
              >
                Discard changes
              </button>
            </div>
          ) : null}
        </form>
      </Section>
      <Section title="Test connection" description={dirty ? 'The test uses the saved settings: unsaved changes are saved first.' : 'Checks the credentials, the permissions and the scope with the saved settings; changes nothing.'}>
        <ConnectionTestPanel connectorId={connector.id} beforeTest={async () => (dirty ? save() : true)} disabled={!canChange && dirty} />
      </Section>
      {kind === 'ldap' ? (
        <Section title="Test user search" description="Looks one user up in the directory server: the entry as read, the record usersync makes of it, its groups, and what the current rules would make of it in the directory, with reasons. Changes nothing.">
          <UserSearchPanel connectorId={connector.id} />
        </Section>
      ) : null}
    </>
  );
}
