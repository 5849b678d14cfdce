// Add a connector, guided by kind: SCIM shows its Base URL and first token once; Graph and LDAP take their
// source settings, then lead to the connection test.

import { useState } from 'react';
import { Link, useNavigate } from 'react-router';
import type { ConnectorDetail } from '../api.ts';
import { api } from '../api.ts';
import { CopyField, ErrorMessage, IssuesContext, Notice, PageHeader, RadioGroup, Section, TextField, useAction } from '../components.tsx';
import type { SecretDraft, SourceDraft } from '../forms/source.tsx';
import { GraphSourceFields, LdapSourceFields, newGraphDraft, newLdapDraft, sourceBody } from '../forms/source.tsx';
import { useSession } from '../session.tsx';
import { NewTokenNotice, scimBaseUrl } from './connector/Configuration.tsx';

type Kind = 'scim' | 'graph' | 'ldap';

/** A connector's or target's id: what the service accepts. */
const ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** An id made from a name. */
function slug(name: string): string {
  return name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63)
    .replace(/-+$/, '');
}

/**
 * A connector's or target's id: made from its name until the administrator types one; `problem` when the
 * service would refuse it.
 */
export function useIdFromName(name: string): { id: string; setId: (v: string) => void; problem: string | undefined } {
  const [typed, setTyped] = useState<string | null>(null);
  const id = typed ?? slug(name);
  const problem = id && !ID_PATTERN.test(id) ? 'Lower-case letters, digits and dashes only, starting with a letter or digit (at most 63).' : undefined;
  return { id, setId: setTyped, problem };
}

export function NewConnectorPage() {
  const { canChange } = useSession();
  const navigate = useNavigate();
  const [kind, setKind] = useState<Kind>('scim');
  const [name, setName] = useState('');
  const { id: effectiveId, setId, problem: idProblem } = useIdFromName(name);
  const [graph, setGraph] = useState<SourceDraft>(newGraphDraft);
  const [ldap, setLdap] = useState<SourceDraft>(() => newLdapDraft());
  const [secrets, setSecrets] = useState<SecretDraft>({});
  const [created, setCreated] = useState<ConnectorDetail & { token?: string; scimBaseUrl?: string }>();
  const action = useAction();

  if (!canChange) {
    return (
      <>
        <PageHeader title="Add connector" back={{ to: '/connectors', label: 'Connectors' }} />
        <p>Only administrators add connectors.</p>
      </>
    );
  }

  if (created?.kind === 'scim' && created.token) {
    return (
      <>
        <PageHeader title={`Connector ${created.name} is ready`} back={{ to: '/connectors', label: 'Connectors' }} />
        <Notice kind="success">The SCIM connector is created. Give these two values to the identity provider.</Notice>
        <Section title="Connect Entra ID" description="Enterprise applications → your app → Provisioning → Automatic: paste the SCIM Base URL as the Tenant URL and the bearer token as the Secret Token, then Test Connection.">
          <CopyField label="SCIM Base URL" value={scimBaseUrl(created)} />
          <NewTokenNotice token={created.token} what="Bearer token" />
        </Section>
        <div className="form-actions">
          <Link className="button primary" to={`/connectors/${encodeURIComponent(created.id)}/configuration`}>
            I have copied the token: open the connector
          </Link>
        </div>
      </>
    );
  }

  const submit = async () => {
    const body: Record<string, unknown> = { name: name.trim(), kind, ...(effectiveId ? { id: effectiveId } : {}) };
    if (kind === 'graph') body.source = sourceBody('graph', graph, secrets);
    if (kind === 'ldap') body.source = sourceBody('ldap', ldap, secrets);
    const r = await action.run(() => api.post<ConnectorDetail & { token?: string }>('/connectors', body));
    if (!r) return;
    if (r.kind === 'scim') setCreated(r);
    else navigate(`/connectors/${encodeURIComponent(r.id)}/configuration`, { state: { created: true } });
  };

  // problems of the source settings come with paths such as `tenantId`; the connector's own as messages
  return (
    <>
      <PageHeader title="Add connector" back={{ to: '/connectors', label: 'Connectors' }} />
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void submit();
        }}
      >
        <Section title="1. Identity provider">
          <RadioGroup
            legend="How the users come"
            value={kind}
            onChange={(k) => {
              setKind(k);
              setSecrets({});
              action.clear();
            }}
            options={[
              ['scim', 'SCIM 2.0: the identity provider pushes (Entra ID provisioning, Okta, …)', 'usersync gives you a URL and a token'],
              ['graph', 'Microsoft Graph: usersync reads Entra ID', 'needs an app registration'],
              ['ldap', 'LDAP: usersync reads Active Directory or OpenLDAP'],
            ]}
          />
        </Section>
        <Section title="2. Name">
          <div className="field-row">
            <TextField label="Connector name" value={name} onChange={setName} required placeholder="Contoso Entra ID" />
            <TextField
              label="Connector ID"
              mono
              value={effectiveId}
              onChange={setId}
              problem={idProblem}
              hint={kind === 'scim' ? 'Part of the SCIM Base URL; it cannot change later.' : 'Used in URLs and on the command line; it cannot change later.'}
            />
          </div>
        </Section>
        {kind !== 'scim' ? (
          <Section title="3. Source settings">
            <IssuesContext.Provider value={action.issues}>
              {kind === 'graph' ? (
                <GraphSourceFields draft={graph} setDraft={setGraph} secrets={secrets} setSecrets={setSecrets} stored={{}} />
              ) : (
                <LdapSourceFields draft={ldap} setDraft={setLdap} secrets={secrets} setSecrets={setSecrets} stored={{}} />
              )}
            </IssuesContext.Provider>
          </Section>
        ) : null}
        <ErrorMessage error={action.error} issues={action.issues} />
        <div className="form-actions">
          <button type="submit" className="primary" disabled={action.busy || !name.trim() || !!idProblem}>
            {action.busy ? 'Creating…' : 'Create connector'}
          </button>
          <Link className="button" to="/connectors">
            Cancel
          </Link>
        </div>
        {kind !== 'scim' ? <p className="hint">After creating it you can test the connection before the first sync.</p> : null}
      </form>
    </>
  );
}
