// Add a target: the application and how to reach it, then what it receives and what happens to those who
// leave. The same settings form serves the target's Settings tab.

import { useState } from 'react';
import { Link, useNavigate } from 'react-router';
import type { Connector, ScheduleSettings, TargetKind, TargetSettings, TargetSettingsInput } from '../api.ts';
import { api, targetApi } from '../api.ts';
import { CheckboxField, ErrorMessage, IssuesContext, LinesField, NumberField, PageHeader, RadioGroup, Section, SelectField, TextArea, TextField, useAction, useLoad } from '../components.tsx';
import { useSession } from '../session.tsx';
import { TARGET_KIND_LABELS } from './Targets.tsx';
import { defaultTargetSettings } from '../../../src/targets/defaults.ts';
import { useIdFromName } from './NewConnector.tsx';

/** The settings being edited: everything but the secret, which is typed in on its own. */
export type TargetDraft = Omit<TargetSettings, 'secret'>;

/** The service's own defaults for a kind, without the secret. */
export function defaultTargetDraft(kind: TargetKind): TargetDraft {
  const { secret: _secret, ...draft } = defaultTargetSettings(kind);
  return draft;
}

export function draftFromSettings(s: TargetSettings): TargetDraft {
  const { secret: _secret, ...rest } = s;
  return structuredClone(rest);
}

/** What is sent: empty optional text is null, and the secret only when one was typed in. */
export function targetSettingsBody(draft: TargetDraft, secret: string): TargetSettingsInput {
  const orNull = (v: string | null) => (v && v.trim() ? v.trim() : null);
  return {
    ...draft,
    baseUrl: draft.baseUrl.trim(),
    username: draft.authType === 'basic' ? orNull(draft.username) : null,
    caCertificate: orNull(draft.caCertificate),
    defaultProjectLead: orNull(draft.defaultProjectLead),
    defaultComponentLead: orNull(draft.defaultComponentLead),
    ...(secret ? { secret } : {}),
  };
}

const BASE_URL_HINTS: Record<TargetKind, string> = {
  jira: 'The address of Jira Data Center, with its context path if it has one, e.g. https://jira.example.com.',
  confluence: "The address of Confluence Data Center including its context path, e.g. https://wiki.example.com/confluence.",
  bitbucket: 'The address of Bitbucket Data Center, with its context path if it has one, e.g. https://bitbucket.example.com.',
  'atlassian-cloud': 'The SCIM directory URL from admin.atlassian.com (Security → Identity providers → your directory), https://api.atlassian.com/scim/directory/<directory id>.',
};

const BASE_URL_PLACEHOLDERS: Record<TargetKind, string> = {
  jira: 'https://jira.example.com',
  confluence: 'https://wiki.example.com/confluence',
  bitbucket: 'https://bitbucket.example.com',
  'atlassian-cloud': 'https://api.atlassian.com/scim/directory/…',
};

function secretLabel(kind: TargetKind, authType: 'token' | 'basic'): string {
  if (authType === 'basic') return 'Password';
  return kind === 'atlassian-cloud' ? 'Directory API key' : 'Personal access token';
}

const CLEANUP_OPTIONS: Record<TargetKind, readonly (readonly [TargetDraft['cleanup'], string])[]> = {
  jira: [
    ['deactivate', 'Deactivate the user'],
    ['remove-groups', 'Only remove the groups usersync added'],
    ['delete', 'Delete the user'],
    ['none', 'Leave the user as it is'],
  ],
  confluence: [
    ['deactivate', 'Deactivate the user'],
    ['remove-groups', 'Only remove the groups usersync added'],
    ['delete', 'Delete the user'],
    ['none', 'Leave the user as it is'],
  ],
  bitbucket: [
    ['remove-groups', 'Remove the groups usersync added (Bitbucket cannot deactivate)'],
    ['delete', 'Delete the user'],
    ['none', 'Leave the user as it is'],
    ['deactivate', 'Deactivate (Bitbucket: the groups are removed)'],
  ],
  'atlassian-cloud': [
    ['deactivate', 'Deactivate the user'],
    ['remove-groups', 'Only remove the groups usersync added'],
    ['delete', 'Delete the user from the directory'],
    ['none', 'Leave the user as it is'],
  ],
};

function ComparisonScheduleFields({ value, onChange }: { value: ScheduleSettings; onChange: (s: ScheduleSettings) => void }) {
  return (
    <div className="field-row">
      <SelectField
        label="Full comparison runs by itself"
        path="comparisonSchedule"
        value={value.kind}
        options={[
          ['off', 'Never (on demand only)'],
          ['interval', 'Every few minutes'],
          ['cron', 'On a cron schedule'],
        ]}
        onChange={(k) => onChange(k === 'off' ? { kind: 'off' } : k === 'interval' ? { kind: 'interval', minutes: 1440 } : { kind: 'cron', expression: '0 3 * * *' })}
      />
      {value.kind === 'interval' ? (
        <NumberField label="Minutes between comparisons" min={1} max={10080} value={value.minutes} onChange={(m) => onChange({ kind: 'interval', minutes: m ?? 1440 })} />
      ) : null}
      {value.kind === 'cron' ? (
        <>
          <TextField label="Cron expression" mono value={value.expression} hint="minute hour day month weekday, e.g. 0 3 * * *" onChange={(e) => onChange({ ...value, expression: e })} />
          <TextField
            label="Time zone"
            value={value.timezone ?? ''}
            placeholder="UTC"
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

/** Which connectors' users the target receives: all, or those ticked. */
function ConnectorScope({ value, onChange }: { value: 'all' | string[]; onChange: (v: 'all' | string[]) => void }) {
  const connectors = useLoad((signal) => api.get<{ connectors: Connector[] }>('/connectors', undefined, signal), []);
  const chosen = value === 'all' ? [] : value;
  return (
    <>
      <RadioGroup
        legend="Connectors"
        path="connectors"
        value={value === 'all' ? 'all' : 'chosen'}
        onChange={(v) => onChange(v === 'all' ? 'all' : chosen)}
        options={[
          ['all', 'Users and groups of every connector'],
          ['chosen', 'Only those of the connectors chosen below'],
        ]}
      />
      {value !== 'all' ? (
        <fieldset className="group connector-choice">
          <legend>Connectors delivered to this target</legend>
          <ErrorMessage error={connectors.error} />
          {connectors.data?.connectors.length === 0 ? <p className="muted">There are no connectors yet.</p> : null}
          {connectors.data?.connectors.map((c) => (
            <CheckboxField
              key={c.id}
              label={`${c.name} (${c.id})`}
              checked={chosen.includes(c.id)}
              onChange={(on) => onChange(on ? [...chosen, c.id] : chosen.filter((x) => x !== c.id))}
            />
          ))}
          {/* a connector deleted since keeps its place until it is unticked */}
          {chosen
            .filter((id) => connectors.data && !connectors.data.connectors.some((c) => c.id === id))
            .map((id) => (
              <CheckboxField key={id} label={`${id} (no longer exists)`} checked onChange={() => onChange(chosen.filter((x) => x !== id))} />
            ))}
        </fieldset>
      ) : null}
    </>
  );
}

/**
 * The target's settings, grouped: connection, scope, policy, the application's own options, delivery and
 * the comparison schedule. `secretStored`: a secret is stored and an empty field keeps it.
 */
export function TargetSettingsFields({
  kind,
  draft,
  setDraft,
  secret,
  setSecret,
  secretStored,
  disabled,
}: {
  kind: TargetKind;
  draft: TargetDraft;
  setDraft: (d: TargetDraft) => void;
  secret: string;
  setSecret: (s: string) => void;
  secretStored: boolean;
  disabled?: boolean;
}) {
  const set =
    <K extends keyof TargetDraft>(k: K) =>
    (v: TargetDraft[K]) =>
      setDraft({ ...draft, [k]: v });
  const text = (k: 'username' | 'caCertificate' | 'defaultProjectLead' | 'defaultComponentLead') => ({ path: k, value: draft[k] ?? '', onChange: (v: string) => setDraft({ ...draft, [k]: v }) });
  const number = (k: 'timeoutSeconds' | 'retries' | 'concurrency' | 'maxAttempts') => ({ path: k, value: draft[k], onChange: (v: number | null) => setDraft({ ...draft, [k]: v as number }) });
  const app = TARGET_KIND_LABELS[kind];
  return (
    <div className="form-grid target-settings">
      <fieldset className="group" disabled={disabled}>
        <legend>Connection</legend>
        <TextField label="Base URL" path="baseUrl" mono value={draft.baseUrl} onChange={set('baseUrl')} placeholder={BASE_URL_PLACEHOLDERS[kind]} hint={BASE_URL_HINTS[kind]} />
        {kind === 'atlassian-cloud' ? null : (
          <RadioGroup
            legend="Authentication"
            path="authType"
            value={draft.authType}
            onChange={set('authType')}
            options={[
              ['token', 'Personal access token', `of a ${app} administrator`],
              ['basic', 'Username and password', `of a ${app} administrator`],
            ]}
          />
        )}
        <div className="field-row">
          {draft.authType === 'basic' && kind !== 'atlassian-cloud' ? <TextField label="Username" {...text('username')} autoComplete="off" /> : null}
          <TextField
            label={secretLabel(kind, draft.authType)}
            path="secret"
            type="password"
            autoComplete="new-password"
            value={secret}
            onChange={setSecret}
            placeholder={secretStored ? '(stored)' : ''}
            hint={secretStored ? 'One is stored. Leave this empty to keep it; type a new one to replace it.' : 'Kept encrypted; never shown again.'}
          />
        </div>
        <TextArea label="CA certificate (PEM)" {...text('caCertificate')} mono rows={3} hint="Only for an application whose certificate an internal CA signed." />
      </fieldset>

      <fieldset className="group" disabled={disabled}>
        <legend>Scope: what {app} receives</legend>
        <ConnectorScope value={draft.connectors} onChange={set('connectors')} />
        <div className="field-row">
          <SelectField
            label="Groups"
            path="groups.mode"
            value={draft.groups.mode}
            onChange={(mode) => setDraft({ ...draft, groups: { ...draft.groups, mode } })}
            options={[
              ['all', 'Every group'],
              ['only', 'Only the groups listed'],
              ['except', 'Every group except those listed'],
            ]}
          />
          {draft.groups.mode !== 'all' ? (
            <LinesField
              label="Group names or patterns (one per line)"
              path="groups.patterns"
              mono
              value={draft.groups.patterns}
              onChange={(patterns) => setDraft({ ...draft, groups: { ...draft.groups, patterns } })}
              hint="An exact name (any case), or a /regular expression/ such as /^jira-/."
            />
          ) : null}
        </div>
        <RadioGroup
          legend="Users"
          path="users"
          value={draft.users}
          onChange={set('users')}
          options={[
            ['all', 'Every user'],
            ['group-members', 'Only members of a group it receives'],
          ]}
        />
        <CheckboxField label="Local users (created in usersync, no connector)" path="localUsers" checked={draft.localUsers} onChange={set('localUsers')} />
      </fieldset>

      <fieldset className="group" disabled={disabled}>
        <legend>Policy</legend>
        <SelectField
          label="When a user leaves the scope or is deleted in the directory"
          path="cleanup"
          value={draft.cleanup}
          onChange={set('cleanup')}
          options={CLEANUP_OPTIONS[kind]}
          hint="Only users usersync created or adopted are touched."
        />
        <CheckboxField
          label="Adopt groups that already exist"
          path="adoptExistingGroups"
          checked={draft.adoptExistingGroups}
          onChange={set('adoptExistingGroups')}
          hint={`A directory group whose name exists in ${app} is used as it is instead of being parked; usersync never deletes an adopted group.`}
        />
      </fieldset>

      {kind === 'bitbucket' ? (
        <fieldset className="group" disabled={disabled}>
          <legend>Bitbucket</legend>
          <SelectField
            label="An inactive user"
            path="bitbucketInactive"
            value={draft.bitbucketInactive}
            onChange={set('bitbucketInactive')}
            options={[
              ['remove-groups', 'Loses its groups and the licence groups'],
              ['delete', 'Is deleted'],
            ]}
          />
          <LinesField label="Licence groups (one per line)" path="licenceGroups" value={draft.licenceGroups} onChange={set('licenceGroups')} hint="Groups that grant the licence, such as stash-users: taken from inactive users even though usersync did not add them." />
        </fieldset>
      ) : null}

      {kind === 'jira' ? (
        <fieldset className="group" disabled={disabled}>
          <legend>Jira</legend>
          <p className="hint">Jira will not deactivate or delete a project or component lead: name who takes over.</p>
          <div className="field-row">
            <TextField label="Default project lead" {...text('defaultProjectLead')} placeholder="jira-admin" />
            <TextField label="Default component lead" {...text('defaultComponentLead')} placeholder="jira-admin" />
          </div>
        </fieldset>
      ) : null}

      {kind === 'atlassian-cloud' ? (
        <fieldset className="group" disabled={disabled}>
          <legend>Atlassian Cloud</legend>
          <LinesField
            label="Verified domains (one per line)"
            path="verifiedDomains"
            value={draft.verifiedDomains}
            onChange={set('verifiedDomains')}
            hint="The organisation's verified e-mail domains; users with other addresses are refused before anything is sent."
          />
        </fieldset>
      ) : null}

      <fieldset className="group" disabled={disabled}>
        <legend>Delivery</legend>
        <div className="field-row">
          <NumberField label="Requests at once" {...number('concurrency')} min={1} max={64} />
          <NumberField label="Retries of a failed request" {...number('retries')} min={0} max={10} hint="For 429, 5xx and timeouts." />
          <NumberField label="Timeout (seconds)" {...number('timeoutSeconds')} min={1} max={600} />
          <NumberField label="Attempts before a change is parked" {...number('maxAttempts')} min={1} max={100} />
        </div>
      </fieldset>

      <fieldset className="group" disabled={disabled}>
        <legend>Comparison schedule</legend>
        <ComparisonScheduleFields value={draft.comparisonSchedule} onChange={set('comparisonSchedule')} />
        <CheckboxField
          label="Scheduled comparisons repair what usersync owns"
          path="comparisonFix"
          checked={draft.comparisonFix}
          onChange={set('comparisonFix')}
          hint="Users and groups usersync created or adopted are set back to what the directory says; nothing else is changed."
        />
      </fieldset>
    </div>
  );
}


const KINDS: readonly (readonly [TargetKind, string, string])[] = [
  ['jira', 'Jira Data Center', 'users, groups, memberships; project and component leads handed over'],
  ['confluence', 'Confluence Data Center', 'lowercase usernames without spaces'],
  ['bitbucket', 'Bitbucket Data Center', 'no deactivation: inactive users lose their groups'],
  ['atlassian-cloud', 'Atlassian Cloud', 'through the organisation’s SCIM directory'],
];

export function NewTargetPage() {
  const { canChange } = useSession();
  const navigate = useNavigate();
  const [kind, setKind] = useState<TargetKind>('jira');
  const [name, setName] = useState('');
  const { id: effectiveId, setId, problem: idProblem } = useIdFromName(name);
  const [draft, setDraft] = useState<TargetDraft>(() => defaultTargetDraft('jira'));
  const [secret, setSecret] = useState('');
  const action = useAction();

  if (!canChange) {
    return (
      <>
        <PageHeader title="Add target" back={{ to: '/targets', label: 'Targets' }} />
        <p>Only administrators add targets.</p>
      </>
    );
  }

  const changeKind = (k: TargetKind) => {
    // the defaults that differ by kind follow it, unless they were changed
    const before = defaultTargetDraft(kind);
    const after = defaultTargetDraft(k);
    const next = { ...draft };
    for (const f of ['baseUrl', 'cleanup', 'licenceGroups', 'authType'] as const) {
      if (JSON.stringify(draft[f]) === JSON.stringify(before[f]) || (f === 'authType' && k === 'atlassian-cloud')) (next as Record<string, unknown>)[f] = after[f];
    }
    setKind(k);
    setDraft(next);
    action.clear();
  };

  const submit = async () => {
    const r = await action.run(() => targetApi.create({ name: name.trim(), kind, ...(effectiveId ? { id: effectiveId } : {}), settings: targetSettingsBody(draft, secret) }));
    if (r) navigate(`/targets/${encodeURIComponent(r.id)}/comparison`, { state: { created: true } });
  };

  return (
    <>
      <PageHeader title="Add target" back={{ to: '/targets', label: 'Targets' }} />
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void submit();
        }}
      >
        <Section title="1. Application">
          <RadioGroup legend="Kind" value={kind} onChange={changeKind} options={KINDS} />
        </Section>
        <Section title="2. Name">
          <div className="field-row">
            <TextField label="Target name" value={name} onChange={setName} required placeholder={`${TARGET_KIND_LABELS[kind]} production`} />
            <TextField
              label="Target ID"
              mono
              value={effectiveId}
              onChange={setId}
              problem={idProblem}
              hint="Used in URLs and on the command line; it cannot change later."
            />
          </div>
        </Section>
        <Section title="3. Settings">
          <IssuesContext.Provider value={action.issues}>
            <TargetSettingsFields kind={kind} draft={draft} setDraft={setDraft} secret={secret} setSecret={setSecret} secretStored={false} />
          </IssuesContext.Provider>
        </Section>
        <ErrorMessage error={action.error} issues={action.issues} />
        <div className="form-actions">
          <button type="submit" className="primary" disabled={action.busy || !name.trim() || !!idProblem}>
            {action.busy ? 'Creating…' : 'Create target'}
          </button>
          <Link className="button" to="/targets">
            Cancel
          </Link>
        </div>
        <p className="hint">
          Nothing is sent to {TARGET_KIND_LABELS[kind]} until the first comparison, which starts once the target is created, has been reviewed and its matches adopted.
        </p>
      </form>
    </>
  );
}
