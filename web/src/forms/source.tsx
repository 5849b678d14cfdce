// The source settings of pull connectors (src/sources/graph/config.ts, src/sources/ldap/config.ts) as
// forms, the connection test, and the LDAP test user search.

import { useId, useState } from 'react';
import type { ConnectionTest, UserSearch } from '../api.ts';
import { api } from '../api.ts';
import { Badge, CheckboxField, ConnectionChecks, DataTable, ErrorMessage, JsonBlock, LinesField, NumberField, RadioGroup, SelectField, TextArea, TextField, useAction } from '../components.tsx';
import type { LdapPreset } from '../../../src/sources/ldap/presets.ts';
import { LDAP_PRESETS } from '../../../src/sources/ldap/presets.ts';

export type SourceDraft = Record<string, unknown>;
/** Secrets typed in this form; an empty one keeps the stored value. */
export type SecretDraft = Record<string, string>;

export const GRAPH_SECRETS = ['clientSecret', 'privateKey'];
export const LDAP_SECRETS = ['bindPassword'];

/** Fields that are null when left empty. */
const NULLABLE = ['credentialExpiresAt', 'authorityHost', 'graphUrl', 'tokenScope', 'caCertificate', 'applicationId', 'tlsServerName', 'userBaseDn', 'groupBaseDn'];

// The defaults of a new Graph connector (GRAPH_DEFAULTS in src/sources/graph/config.ts).
export function newGraphDraft(): SourceDraft {
  return {
    tenantId: '',
    clientId: '',
    credential: 'secret',
    certificate: '',
    credentialExpiresAt: '',
    cloud: 'global',
    authorityHost: '',
    graphUrl: '',
    tokenScope: '',
    caCertificate: '',
    scope: 'directory',
    applicationId: '',
    groups: [],
    nestedGroups: 'flatten',
    usernameAttribute: 'userPrincipalName',
    extraAttributes: [],
    guests: 'include',
    groupTypes: 'all',
    schedule: { kind: 'interval', minutes: 15 },
    fullSyncHours: 24,
    concurrency: 4,
  };
}

/** A new LDAP connector: the defaults of src/sources/ldap/config.ts, and the preset's filters and attribute names (presets.ts). */
export function newLdapDraft(preset: LdapPreset = 'activeDirectory'): SourceDraft {
  return {
    preset,
    url: '',
    failoverUrls: [],
    startTls: false,
    caCertificate: '',
    tlsServerName: '',
    bindDn: '',
    baseDn: '',
    userBaseDn: '',
    groupBaseDn: '',
    searchScope: 'sub',
    extraAttributes: [],
    membership: 'member',
    nestedGroups: 'flatten',
    timeoutSeconds: 60,
    connectTimeoutSeconds: 10,
    schedule: { kind: 'interval', minutes: 15 },
    fullSyncHours: 24,
    concurrency: 4,
    ...structuredClone(LDAP_PRESETS[preset]),
  };
}

/** The stored settings as a form draft: nulls as empty text, dates as days, secrets out. */
export function draftFrom(stored: Record<string, unknown>, secrets: string[]): SourceDraft {
  const out: SourceDraft = {};
  for (const [k, v] of Object.entries(stored)) {
    if (secrets.includes(k)) continue;
    if (NULLABLE.includes(k) && v === null) out[k] = '';
    else if (k === 'credentialExpiresAt' && typeof v === 'string') out[k] = v.slice(0, 10);
    else out[k] = v;
  }
  return out;
}

/** Which secrets are stored now. */
export function secretsSet(stored: Record<string, unknown>, secrets: string[]): Record<string, boolean> {
  return Object.fromEntries(secrets.map((k) => [k, !!stored[k] && typeof stored[k] === 'object']));
}

/** The request body: empty optional fields as null; secrets only when typed (a secret left out keeps its value). */
export function sourceBody(kind: 'graph' | 'ldap', draft: SourceDraft, secrets: SecretDraft): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(draft)) {
    if (NULLABLE.includes(k) && (v === '' || v === undefined)) out[k] = null;
    else out[k] = v;
  }
  if (kind === 'graph') {
    if (out.credential === 'certificate') delete out.credentialExpiresAt; // read from the certificate
    if (out.credential !== 'certificate') delete out.certificate;
    else if (out.certificate === '') delete out.certificate;
  }
  for (const [k, v] of Object.entries(secrets)) if (v) out[k] = v;
  return out;
}

// ------------------------------------------------------------------------------------------- helpers

interface DraftProps {
  draft: SourceDraft;
  setDraft: (d: SourceDraft) => void;
  secrets: SecretDraft;
  setSecrets: (s: SecretDraft) => void;
  /** which secrets are stored already */
  stored: Record<string, boolean>;
  disabled?: boolean;
}

function fields(p: DraftProps) {
  const str = (k: string) => (typeof p.draft[k] === 'string' ? (p.draft[k] as string) : p.draft[k] === null || p.draft[k] === undefined ? '' : String(p.draft[k]));
  const set = (k: string) => (v: unknown) => p.setDraft({ ...p.draft, [k]: v });
  const list = (k: string) => (Array.isArray(p.draft[k]) ? (p.draft[k] as string[]) : []);
  const num = (k: string) => (typeof p.draft[k] === 'number' ? (p.draft[k] as number) : null);
  const secret = (k: string) => p.secrets[k] ?? '';
  const setSecret = (k: string) => (v: string) => p.setSecrets({ ...p.secrets, [k]: v });
  const secretHint = (k: string, what: string) => (p.stored[k] ? `A ${what} is stored. Leave this empty to keep it; type a new one to replace it.` : undefined);
  // the path, value and change of a field for setting k, to spread into it
  const text = (k: string) => ({ path: k, value: str(k), onChange: set(k) });
  const lines = (k: string) => ({ path: k, value: list(k), onChange: set(k) });
  const number = (k: string) => ({ path: k, value: num(k), onChange: set(k) });
  const secretField = (k: string, what: string, placeholder = '') => ({ path: k, value: secret(k), onChange: setSecret(k), placeholder: p.stored[k] ? '(stored)' : placeholder, hint: secretHint(k, what) });
  return { str, set, text, lines, number, secretField };
}

type Schedule = { kind: 'off' } | { kind: 'interval'; minutes: number } | { kind: 'cron'; expression: string; timezone?: string };

export function ScheduleFields({ value, onChange, disabled }: { value: Schedule; onChange: (s: Schedule) => void; disabled?: boolean }) {
  const kind = value?.kind ?? 'off';
  return (
    <div className="field-row">
      <SelectField
        label="Runs by itself"
        path="schedule"
        value={kind}
        disabled={disabled}
        options={[
          ['off', 'Never (Sync now only)'],
          ['interval', 'Every few minutes'],
          ['cron', 'On a cron schedule'],
        ]}
        onChange={(k) => onChange(k === 'off' ? { kind: 'off' } : k === 'interval' ? { kind: 'interval', minutes: 15 } : { kind: 'cron', expression: '0 * * * *' })}
      />
      {value?.kind === 'interval' ? (
        <NumberField label="Minutes between runs" min={1} max={10080} value={value.minutes} disabled={disabled} onChange={(m) => onChange({ kind: 'interval', minutes: m ?? 15 })} />
      ) : null}
      {value?.kind === 'cron' ? (
        <>
          <TextField label="Cron expression" mono value={value.expression} disabled={disabled} hint="minute hour day month weekday, e.g. */10 * * * *" onChange={(e) => onChange({ ...value, expression: e })} />
          <TextField
            label="Time zone"
            value={value.timezone ?? ''}
            placeholder="UTC"
            disabled={disabled}
            onChange={(tz) => {
              const { timezone: _t, ...rest } = value;
              onChange(tz ? { ...rest, timezone: tz } : rest);
            }}
          />
        </>
      ) : null}
    </div>
  );
}

// ----------------------------------------------------------------------------------------------- Graph

/** How members of nested groups count, for Graph and LDAP alike. */
const NESTED_GROUPS = [
  ['flatten', 'Members of nested groups count'],
  ['direct', 'Direct members only'],
] as const;

export function GraphSourceFields(p: DraftProps) {
  const f = fields(p);
  const d = p.disabled;
  return (
    <div className="form-grid">
      <fieldset className="group" disabled={d}>
        <legend>App registration</legend>
        <p className="hint">
          An app registration in Entra ID with the application permissions <code>User.Read.All</code> and <code>Group.Read.All</code> (and{' '}
          <code>Application.Read.All</code> for the application scope), with admin consent.
        </p>
        <div className="field-row">
          <TextField label="Tenant (directory) ID" {...f.text('tenantId')} placeholder="contoso.onmicrosoft.com or a GUID" mono />
          <TextField label="Application (client) ID" {...f.text('clientId')} placeholder="00000000-0000-0000-0000-000000000000" mono />
        </div>
        <RadioGroup
          legend="Credential"
          path="credential"
          value={f.str('credential') as 'secret' | 'certificate'}
          onChange={f.set('credential')}
          options={[
            ['secret', 'Client secret'],
            ['certificate', 'Certificate', 'the key never leaves this service'],
          ]}
        />
        {f.str('credential') === 'certificate' ? (
          <>
            <TextArea label="Certificate (PEM)" {...f.text('certificate')} mono rows={4} placeholder="-----BEGIN CERTIFICATE-----" hint="The certificate uploaded to the app registration. Its expiry date is read from it." />
            <TextArea label="Private key (PEM)" {...f.secretField('privateKey', 'private key', '-----BEGIN PRIVATE KEY-----')} mono rows={4} />
          </>
        ) : (
          <div className="field-row">
            <TextField label="Client secret" {...f.secretField('clientSecret', 'client secret')} type="password" autoComplete="new-password" />
            <TextField label="Secret expires on" {...f.text('credentialExpiresAt')} type="date" hint="For the expiry alert." />
          </div>
        )}
      </fieldset>

      <fieldset className="group" disabled={d}>
        <legend>Cloud</legend>
        <SelectField
          label="Cloud"
          {...f.text('cloud')}
          options={[
            ['global', 'Global (login.microsoftonline.com)'],
            ['usgov', 'US Government (GCC High)'],
            ['usgov-dod', 'US Government (DoD)'],
            ['china', 'China (21Vianet)'],
            ['custom', 'Custom hosts'],
          ]}
        />
        {f.str('cloud') === 'custom' ? (
          <div className="field-row">
            <TextField label="Authority host" {...f.text('authorityHost')} mono placeholder="https://login.example.com" />
            <TextField label="Graph URL" {...f.text('graphUrl')} mono placeholder="https://graph.example.com/v1.0" />
            <TextField label="Token scope" {...f.text('tokenScope')} mono placeholder="https://graph.microsoft.com/.default" />
          </div>
        ) : null}
        <TextArea label="Extra CA certificates (PEM)" {...f.text('caCertificate')} mono rows={3} hint="Only behind a TLS-inspecting proxy; leave empty otherwise." />
      </fieldset>

      <fieldset className="group" disabled={d}>
        <legend>What to read</legend>
        <RadioGroup
          legend="Scope"
          path="scope"
          value={f.str('scope') as 'directory'}
          onChange={f.set('scope')}
          options={[
            ['directory', 'The whole directory'],
            ['application', 'Users and groups assigned to an enterprise application'],
            ['groups', 'The members of these groups'],
          ]}
        />
        {f.str('scope') === 'application' ? (
          <TextField label="Enterprise application (client) ID" {...f.text('applicationId')} mono hint="Leave empty for this app registration's own enterprise application." />
        ) : null}
        {f.str('scope') === 'groups' ? <LinesField label="Groups (one id or display name per line)" {...f.lines('groups')} mono /> : null}
        <div className="field-row">
          <SelectField label="Nested groups" {...f.text('nestedGroups')} options={NESTED_GROUPS} />
          <SelectField
            label="Group types"
            {...f.text('groupTypes')}
            options={[
              ['all', 'All groups'],
              ['security', 'Security groups only'],
            ]}
          />
          <SelectField
            label="Guests"
            {...f.text('guests')}
            options={[
              ['include', 'Include (under their e-mail address)'],
              ['exclude', 'Leave out'],
            ]}
          />
        </div>
        <div className="field-row">
          <TextField label="Username attribute" {...f.text('usernameAttribute')} mono hint="userPrincipalName, mail, onPremisesSamAccountName, employeeId, …" />
        </div>
        <LinesField label="Extra user properties (one per line)" {...f.lines('extraAttributes')} mono hint="Read for mappings and conditions, e.g. officeLocation." />
      </fieldset>

      <fieldset className="group" disabled={d}>
        <legend>When</legend>
        <ScheduleFields value={p.draft.schedule as Schedule} onChange={f.set('schedule')} />
        <div className="field-row">
          <NumberField label="Full read at least every (hours)" {...f.number('fullSyncHours')} min={1} max={720} />
          <NumberField label="Requests at once" {...f.number('concurrency')} min={1} max={16} />
        </div>
      </fieldset>
    </div>
  );
}

// ------------------------------------------------------------------------------------------------ LDAP

const ATTRIBUTE_ROLES: [string, string][] = [
  ['id', 'Immutable id'],
  ['username', 'Username'],
  ['email', 'E-mail'],
  ['displayName', 'Display name'],
  ['givenName', 'Given name'],
  ['familyName', 'Family name'],
  ['employeeNumber', 'Employee number'],
  ['title', 'Title'],
  ['department', 'Department'],
  ['groupName', 'Group name'],
  ['member', 'Group members'],
  ['memberOf', 'Member of'],
];

export function LdapSourceFields(p: DraftProps) {
  const f = fields(p);
  const d = p.disabled;
  const preset = (f.str('preset') || 'activeDirectory') as LdapPreset;
  const attributes = (p.draft.attributes ?? {}) as Record<string, string>;
  const disabled = p.draft.disabled as { attribute: string; match: 'bit' | 'present' | 'equals'; value: string | null } | null;
  return (
    <div className="form-grid">
      <fieldset className="group" disabled={d}>
        <legend>Server</legend>
        <RadioGroup
          legend="Directory type (preset)"
          path="preset"
          value={preset}
          onChange={(v) => p.setDraft({ ...p.draft, preset: v, ...structuredClone(LDAP_PRESETS[v]) })}
          options={[
            ['activeDirectory', 'Active Directory'],
            ['openldap', 'OpenLDAP and others'],
          ]}
        />
        <p className="hint">Choosing a preset fills in the filters and attribute names below; each can be changed.</p>
        <div className="field-row">
          <TextField label="Server URL" {...f.text('url')} mono placeholder="ldaps://dc1.corp.example:636" />
          <CheckboxField label="StartTLS (for ldap:// URLs)" path="startTls" checked={p.draft.startTls === true} onChange={f.set('startTls')} />
        </div>
        <LinesField label="Failover server URLs (one per line)" {...f.lines('failoverUrls')} mono hint="Other domain controllers, tried in order when the first cannot be reached." />
        <TextArea label="CA certificate (PEM)" {...f.text('caCertificate')} mono rows={3} hint="The CA that signed the server's certificate; the system's CAs when empty." />
        <TextField label="Name on the server certificate" {...f.text('tlsServerName')} mono hint="Only when it differs from the URL's host." />
      </fieldset>

      <fieldset className="group" disabled={d}>
        <legend>Sign-in</legend>
        <div className="field-row">
          <TextField label="Bind DN" {...f.text('bindDn')} mono placeholder="CN=usersync,OU=Service Accounts,DC=corp,DC=example" />
          <TextField label="Bind password" {...f.secretField('bindPassword', 'password')} type="password" autoComplete="new-password" />
        </div>
      </fieldset>

      <fieldset className="group" disabled={d}>
        <legend>Where users and groups are</legend>
        <TextField label="Base DN" {...f.text('baseDn')} mono placeholder="DC=corp,DC=example" />
        <div className="field-row">
          <TextField label="User base DN" {...f.text('userBaseDn')} mono hint="The base DN when empty." />
          <TextField label="Group base DN" {...f.text('groupBaseDn')} mono hint="The base DN when empty." />
        </div>
        <div className="field-row">
          <TextField label="User filter" {...f.text('userFilter')} mono />
          <TextField label="Group filter" {...f.text('groupFilter')} mono />
        </div>
        <SelectField
          label="Search scope"
          {...f.text('searchScope')}
          options={[
            ['sub', 'The whole subtree'],
            ['one', 'Only entries right under the base'],
          ]}
        />
      </fieldset>

      <fieldset className="group" disabled={d}>
        <legend>Attributes</legend>
        <div className="field-grid-3">
          {ATTRIBUTE_ROLES.map(([k, label]) => (
            <TextField key={k} label={label} path={`attributes.${k}`} mono value={attributes[k] ?? ''} onChange={(v) => p.setDraft({ ...p.draft, attributes: { ...attributes, [k]: v } })} />
          ))}
        </div>
        <LinesField label="Extra user attributes (one per line)" {...f.lines('extraAttributes')} mono />
      </fieldset>

      <fieldset className="group" disabled={d}>
        <legend>Memberships and accounts</legend>
        <div className="field-row">
          <SelectField
            label="Memberships come from"
            {...f.text('membership')}
            options={[
              ['member', "the group's member list"],
              ['memberOf', "the user's memberOf"],
            ]}
          />
          <SelectField label="Nested groups" {...f.text('nestedGroups')} options={NESTED_GROUPS} />
          <SelectField
            label="Flattened by"
            {...f.text('nestedMethod')}
            options={[
              ['inChain', "AD's in-chain rule"],
              ['client', 'walking the groups read'],
            ]}
          />
        </div>
        <div className="field-row">
          <SelectField
            label="Disabled accounts"
            path="disabled"
            value={disabled ? disabled.match : 'none'}
            onChange={(m) => p.setDraft({ ...p.draft, disabled: m === 'none' ? null : { attribute: disabled?.attribute ?? '', match: m, value: m === 'present' ? null : (disabled?.value ?? '') } })}
            options={[
              ['none', 'Every account is active'],
              ['bit', 'A bit of an attribute is set'],
              ['present', 'An attribute is present'],
              ['equals', 'An attribute has a value'],
            ]}
          />
          {disabled ? (
            <TextField label="Disabled: attribute" path="disabled.attribute" mono value={disabled.attribute} onChange={(v) => p.setDraft({ ...p.draft, disabled: { ...disabled, attribute: v } })} />
          ) : null}
          {disabled && disabled.match !== 'present' ? (
            <TextField label={disabled.match === 'bit' ? 'Disabled: bit mask' : 'Disabled: value'} path="disabled.value" mono value={disabled.value ?? ''} onChange={(v) => p.setDraft({ ...p.draft, disabled: { ...disabled, value: v } })} />
          ) : null}
        </div>
      </fieldset>

      <fieldset className="group" disabled={d}>
        <legend>When and how</legend>
        <ScheduleFields value={p.draft.schedule as Schedule} onChange={f.set('schedule')} />
        <div className="field-row">
          <SelectField
            label="Finding changes"
            {...f.text('changeTracking')}
            options={[
              ['usn', 'uSNChanged (Active Directory)'],
              ['modifyTimestamp', 'modifyTimestamp'],
              ['none', 'Read everything every run'],
            ]}
          />
          <NumberField label="Full read at least every (hours)" {...f.number('fullSyncHours')} min={1} max={720} />
        </div>
        <div className="field-row">
          <NumberField label="Page size" {...f.number('pageSize')} min={10} max={5000} />
          <NumberField label="Range size" {...f.number('rangeSize')} min={10} max={100000} hint="Empty: as the server sends them." />
          <NumberField label="Timeout (seconds)" {...f.number('timeoutSeconds')} min={1} max={3600} />
          <NumberField label="Connect timeout (seconds)" {...f.number('connectTimeoutSeconds')} min={1} max={300} />
          <NumberField label="Searches at once" {...f.number('concurrency')} min={1} max={16} />
        </div>
      </fieldset>
    </div>
  );
}

// --------------------------------------------------------------------------------------- connection test

export function ConnectionTestPanel({ connectorId, beforeTest, disabled }: { connectorId: string; beforeTest?: () => Promise<boolean>; disabled?: boolean }) {
  const [result, setResult] = useState<ConnectionTest>();
  const action = useAction();
  const test = async () => {
    setResult(undefined);
    if (beforeTest && !(await beforeTest())) return;
    const r = await action.run(() => api.post<ConnectionTest>(`/connectors/${encodeURIComponent(connectorId)}/test`));
    if (r) setResult(r);
  };
  return (
    <div className="test-panel">
      <button type="button" onClick={() => void test()} disabled={action.busy || disabled}>
        {action.busy ? 'Testing…' : 'Test connection'}
      </button>
      <div aria-live="polite">
        {action.busy ? <p className="muted">Testing the connection…</p> : null}
        <ErrorMessage error={action.error} />
        {result ? (
          <ConnectionChecks ok={result.ok} failure={result.failure} checks={result.checks}>
            {result.missingPermissions.length ? (
              <p>
                The app lacks these permissions: {result.missingPermissions.map((m) => <code key={m}>{m} </code>)}. Grant them with admin consent in Entra ID.
              </p>
            ) : null}
          </ConnectionChecks>
        ) : null}
      </div>
    </div>
  );
}

// ---------------------------------------------------------------------------------------- user search

export function UserSearchPanel({ connectorId }: { connectorId: string }) {
  const [username, setUsername] = useState('');
  const [result, setResult] = useState<UserSearch>();
  const action = useAction();
  const ids = useId();
  const search = async () => {
    if (!username.trim()) return;
    setResult(undefined);
    const r = await action.run(() => api.post<UserSearch>(`/connectors/${encodeURIComponent(connectorId)}/search-user`, { username: username.trim() }));
    if (r) setResult(r);
  };
  const dir = result?.directory;
  return (
    <div className="test-panel">
      <form
        className="inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          void search();
        }}
      >
        <TextField label="Username to look up" value={username} onChange={setUsername} mono />
        <button type="submit" disabled={action.busy || !username.trim()}>
          {action.busy ? 'Searching…' : 'Test user search'}
        </button>
      </form>
      <div aria-live="polite">
        <ErrorMessage error={action.error} />
        {result && !result.found ? <p>No entry matches this username{result.skipped ? `: ${result.skipped}` : '.'}</p> : null}
        {result && result.found ? (
          <div className="search-result">
            <p>
              {result.matches === 1 ? 'One entry matches.' : `${result.matches} entries match; the first is shown.`}
              {result.skipped ? ` The source leaves it out: ${result.skipped}.` : ''}
            </p>
            {result.entry ? (
              <details open>
                <summary>The entry as the server has it{result.entry.dn ? `: ${result.entry.dn}` : ''}</summary>
                <table className="compact">
                  <caption className="sr-only">Entry attributes</caption>
                  <tbody>
                    {Object.entries(result.entry.attributes).map(([k, vs]) => (
                      <tr key={k}>
                        <th scope="row" className="mono">
                          {k}
                        </th>
                        <td className="mono">{vs.join(', ')}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </details>
            ) : null}
            {result.record ? (
              <details>
                <summary>The mirror record (SCIM)</summary>
                <JsonBlock value={result.record.doc} label="Mirror record" />
              </details>
            ) : null}
            <h4 id={`${ids}-groups`}>Groups in the directory server</h4>
            {result.groups.length ? (
              <ul aria-labelledby={`${ids}-groups`}>
                {result.groups.map((g) => (
                  <li key={g.id}>{g.name}</li>
                ))}
              </ul>
            ) : (
              <p className="muted">None.</p>
            )}
            <h4>What the current rules make of it</h4>
            {!dir ? <p className="muted">Nothing: the source leaves this user out.</p> : null}
            {dir && !dir.inScope ? (
              <p>
                <Badge tone="warn">not synced</Badge> {dir.reason}
              </p>
            ) : null}
            {dir && dir.inScope && dir.user ? (
              <>
                <dl className="props">
                  <dt>Username</dt>
                  <dd>{dir.user.username}</dd>
                  <dt>E-mail</dt>
                  <dd>{dir.user.email ?? '—'}</dd>
                  <dt>Display name</dt>
                  <dd>{dir.user.displayName}</dd>
                  <dt>Active</dt>
                  <dd>{dir.user.active ? 'yes' : 'no'}</dd>
                  {Object.entries(dir.user.attributes).map(([k, v]) => (
                    <div key={k} className="contents">
                      <dt>{k}</dt>
                      <dd>{v}</dd>
                    </div>
                  ))}
                </dl>
                {dir.existing ? (
                  <p>
                    The directory has a user <strong>{dir.existing.username}</strong> already
                    {dir.existing.sameRecord ? ', from this very entry.' : dir.existing.ownedBy ? `, owned by connector ${dir.existing.ownedBy}.` : ', a local user.'}
                  </p>
                ) : (
                  <p>The directory has no user of this name yet: it would be created.</p>
                )}
              </>
            ) : null}
            {dir && dir.groups.length ? (
              <DataTable
                className="compact"
                wrap={false}
                caption="Directory groups"
                showCaption
                columns={['Group', 'Because']}
                rows={dir.groups}
                row={(g) => (
                  <tr key={g.name}>
                    <td>{g.name}</td>
                    <td>{g.because}</td>
                  </tr>
                )}
              />
            ) : null}
            {dir && dir.excluded.length ? (
              <DataTable
                className="compact"
                wrap={false}
                caption="Left out"
                showCaption
                columns={['Group', 'Why']}
                rows={dir.excluded}
                row={(g, i) => (
                  <tr key={i}>
                    <td>{g.name}</td>
                    <td>{g.reason}</td>
                  </tr>
                )}
              />
            ) : null}
          </div>
        ) : null}
      </div>
    </div>
  );
}
