// The user sync and group sync settings (src/domain/settings.ts) as forms, with the regex tester and the
// manual mapping table.

import { useId, useMemo, useState } from 'react';
import type { AttributeMapping, ConnectorSettings, GroupSyncSettings, Transform, UserSyncSettings } from '../api.ts';
import { ACTIONS_COLUMN, Badge, CheckboxField, DataTable, LinesField, NumberField, RadioGroup, SelectField, TextArea, TextField, useIssues } from '../components.tsx';
import { groupOutcome, patternProblem, wholeNameRegex } from './rules.ts';

// ---------------------------------------------------------------------------------------- mappings

const TRANSFORMS: [Transform['fn'], string][] = [
  ['regexReplace', 'Regex replace'],
  ['lower', 'Lower case'],
  ['upper', 'Upper case'],
  ['trim', 'Trim spaces'],
  ['template', 'Template'],
  ['firstNonEmpty', 'Fallback (first non-empty)'],
];

function newTransform(fn: Transform['fn']): Transform {
  switch (fn) {
    case 'regexReplace':
      return { fn, pattern: '', replacement: '' };
    case 'template':
      return { fn, template: '${value}' };
    case 'firstNonEmpty':
      return { fn, sources: [] };
    default:
      return { fn };
  }
}

function TransformsEditor({ path, value, onChange, label }: { path: string; value: Transform[]; onChange: (t: Transform[]) => void; label: string }) {
  const [adding, setAdding] = useState<Transform['fn']>('lower');
  const set = (i: number, t: Transform) => onChange(value.map((x, j) => (j === i ? t : x)));
  const move = (i: number, by: number) => {
    const next = [...value];
    const [t] = next.splice(i, 1);
    next.splice(i + by, 0, t!);
    onChange(next);
  };
  return (
    <div className="transforms">
      {value.length ? (
        <ol aria-label={`Transforms of ${label}`}>
          {value.map((t, i) => {
            const p = `${path}.transforms[${i}]`;
            const name = TRANSFORMS.find(([fn]) => fn === t.fn)?.[1] ?? t.fn;
            return (
              <li key={i} className="transform">
                <span className="transform-name">
                  {i + 1}. {name}
                </span>
                {t.fn === 'regexReplace' ? (
                  <div className="field-row">
                    <TextField label="Pattern" path={`${p}.pattern`} mono value={t.pattern} onChange={(v) => set(i, { ...t, pattern: v })} />
                    <TextField label="Replacement" path={`${p}.replacement`} mono value={t.replacement} onChange={(v) => set(i, { ...t, replacement: v })} hint="$1… for groups" />
                    <TextField label="Flags" path={`${p}.flags`} mono value={t.flags ?? ''} onChange={(v) => set(i, v ? { ...t, flags: v } : { fn: t.fn, pattern: t.pattern, replacement: t.replacement })} className="narrow-field" />
                  </div>
                ) : null}
                {t.fn === 'template' ? <TextField label="Template" path={`${p}.template`} mono value={t.template} onChange={(v) => set(i, { ...t, template: v })} hint="${name.givenName} ${name.familyName}; ${value} is the current value" /> : null}
                {t.fn === 'firstNonEmpty' ? (
                  <LinesField label="Fallback sources (one path or template per line)" path={`${p}.sources`} mono value={t.sources} onChange={(v) => set(i, { ...t, sources: v })} rows={2} />
                ) : null}
                <div className="row-actions">
                  <button type="button" className="small" disabled={i === 0} onClick={() => move(i, -1)} aria-label={`Move transform ${i + 1} of ${label} up`}>
                    ↑
                  </button>
                  <button type="button" className="small" disabled={i === value.length - 1} onClick={() => move(i, 1)} aria-label={`Move transform ${i + 1} of ${label} down`}>
                    ↓
                  </button>
                  <button type="button" className="small" onClick={() => onChange(value.filter((_, j) => j !== i))} aria-label={`Remove transform ${i + 1} of ${label}`}>
                    Remove
                  </button>
                </div>
              </li>
            );
          })}
        </ol>
      ) : null}
      <div className="inline-form">
        <SelectField label={`Add a transform to ${label}`} value={adding} onChange={setAdding} options={TRANSFORMS} className="compact-field" />
        <button type="button" className="small" onClick={() => onChange([...value, newTransform(adding)])}>
          Add
        </button>
      </div>
    </div>
  );
}

function MappingEditor({ label, path, value, onChange, hint }: { label: string; path: string; value: AttributeMapping; onChange: (m: AttributeMapping) => void; hint?: string }) {
  return (
    <fieldset className="group mapping">
      <legend>{label}</legend>
      <TextField
        label={`${label}: source attribute`}
        path={`${path}.source`}
        mono
        value={value.source ?? ''}
        onChange={(v) => {
          const { source: _s, ...rest } = value;
          onChange(v ? { ...rest, source: v } : rest);
        }}
        hint={hint ?? 'A SCIM attribute path: userName, emails[type eq "work"].value, name.givenName, urn:…:enterprise:2.0:User:department'}
      />
      <TransformsEditor
        label={label}
        path={path}
        value={value.transforms ?? []}
        onChange={(t) => {
          const { transforms: _t, ...rest } = value;
          onChange(t.length ? { ...rest, transforms: t } : rest);
        }}
      />
    </fieldset>
  );
}

/** The path, value and change of the field for setting `k` of a part of the settings, to spread into it. */
function binder<S extends object>(prefix: string, part: S, set: (patch: Partial<S>) => void) {
  return <K extends keyof S & string>(k: K) => ({ path: `${prefix}.${k}`, value: part[k], onChange: (v: S[K]) => set({ [k]: v } as unknown as Partial<S>) });
}

// ------------------------------------------------------------------------------------------- users

const OPERATIONS = [
  ['create', 'Create users'],
  ['update', 'Update users'],
  ['activate', 'Activate users'],
  ['deactivate', 'Deactivate users'],
] as const;

export function UserSettingsFields({ value, onChange, disabled }: { value: ConnectorSettings; onChange: (s: ConnectorSettings) => void; disabled?: boolean }) {
  const u = value.user;
  const set = (patch: Partial<UserSyncSettings>) => onChange({ ...value, user: { ...u, ...patch } });
  const field = binder('user', u, set);
  const limit = value.safety.deletionLimit;
  return (
    <fieldset className="plain" disabled={disabled}>
      <section className="card" aria-labelledby="ops-title">
        <h2 id="ops-title">Operations</h2>
        <p className="muted">What this connector may do to directory users.</p>
        <div className="check-row">
          {OPERATIONS.map(([k, label]) => (
            <CheckboxField key={k} label={label} path={`user.operations.${k}`} checked={u.operations[k]} onChange={(v) => set({ operations: { ...u.operations, [k]: v } })} />
          ))}
        </div>
        <CheckboxField
          label="Adopt local users of the same name (copy behaviour)"
          path="user.copyBehaviour"
          checked={u.copyBehaviour}
          onChange={(v) => set({ copyBehaviour: v })}
          hint="A local user with the provider user's username becomes this connector's user, keeping its groups and attributes."
        />
      </section>

      <section className="card" aria-labelledby="attrs-title">
        <h2 id="attrs-title">Attribute mapping</h2>
        <p className="muted">Where each directory attribute comes from, and how it is transformed (in order).</p>
        <MappingEditor label="Username" path="user.username" value={u.username} onChange={(m) => set({ username: m })} />
        <MappingEditor label="E-mail" path="user.email" value={u.email} onChange={(m) => set({ email: m })} />
        <MappingEditor label="Display name" path="user.displayName" value={u.displayName} onChange={(m) => set({ displayName: m })} />
      </section>

      <section className="card" aria-labelledby="custom-title">
        <h2 id="custom-title">Custom attributes</h2>
        <p className="muted">More attributes kept with each directory user, e.g. the department.</p>
        {u.customAttributes.map((a, i) => (
          <div key={i} className="custom-attribute">
            <div className="field-row">
              <TextField
                label={`Custom attribute ${i + 1}: name`}
                path={`user.customAttributes[${i}].name`}
                mono
                value={a.name}
                onChange={(v) => set({ customAttributes: u.customAttributes.map((x, j) => (j === i ? { ...x, name: v } : x)) })}
              />
              <button type="button" className="small align-end" onClick={() => set({ customAttributes: u.customAttributes.filter((_, j) => j !== i) })} aria-label={`Remove custom attribute ${a.name || i + 1}`}>
                Remove
              </button>
            </div>
            <MappingEditor
              label={a.name || `Custom attribute ${i + 1}`}
              path={`user.customAttributes[${i}].mapping`}
              value={a.mapping}
              onChange={(m) => set({ customAttributes: u.customAttributes.map((x, j) => (j === i ? { ...x, mapping: m } : x)) })}
            />
          </div>
        ))}
        <button type="button" onClick={() => set({ customAttributes: [...u.customAttributes, { name: '', mapping: { source: '' } }] })}>
          Add custom attribute
        </button>
      </section>

      <section className="card" aria-labelledby="scope-title">
        <h2 id="scope-title">Which users, and what happens when they go</h2>
        <TextArea
          label="Condition (SCIM filter)"
          {...field('condition')}
          mono
          rows={2}
          placeholder='e.g. urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "Engineering"'
          hint="Users that do not match are left out and get the cleanup behaviour. Empty: every user."
        />
        <RadioGroup
          legend="Cleanup: users deleted in the provider, out of scope, or left out by the condition"
          {...field('cleanup')}
          options={[
            ['deactivate', 'Deactivate', 'the user keeps its groups; the default'],
            ['delete', 'Delete'],
            ['leave', 'Leave unchanged'],
          ]}
        />
      </section>

      <section className="card" aria-labelledby="safety-title">
        <h2 id="safety-title">Deletion limit</h2>
        <p className="muted">A run that would deactivate or delete more users than this is held until someone approves it. Empty: no limit.</p>
        <div className="field-row">
          <NumberField
            label="At most this many users"
            path="safety.deletionLimit.count"
            min={0}
            value={limit.count}
            onChange={(v) => onChange({ ...value, safety: { deletionLimit: { ...limit, count: v } } })}
          />
          <NumberField
            label="At most this percentage of the connector's users"
            path="safety.deletionLimit.percent"
            min={0}
            max={100}
            step={0.1}
            value={limit.percent}
            onChange={(v) => onChange({ ...value, safety: { deletionLimit: { ...limit, percent: v } } })}
          />
        </div>
      </section>
    </fieldset>
  );
}

// ------------------------------------------------------------------------------------------ groups

export function GroupSettingsFields({ value, onChange, disabled }: { value: ConnectorSettings; onChange: (s: ConnectorSettings) => void; disabled?: boolean }) {
  const g = value.group;
  const set = (patch: Partial<GroupSyncSettings>) => onChange({ ...value, group: { ...g, ...patch } });
  const field = binder('group', g, set);
  return (
    <>
      <fieldset className="plain" disabled={disabled}>
        <section className="card" aria-labelledby="mapping-title">
          <h2 id="mapping-title">Group mapping</h2>
          <RadioGroup
            legend="How provider groups become directory groups"
            {...field('mode')}
            options={[
              ['onTheFly', 'On the fly', 'a provider group feeds the directory group of the same name, created when missing'],
              ['manual', 'Manual mapping', 'only the groups in the table below, to the directory groups named there'],
            ]}
          />
          {g.mode === 'onTheFly' ? (
            <fieldset className="group">
              <legend>Rename (optional)</legend>
              <CheckboxField label="Rename provider groups that match a pattern" checked={g.rename !== null} onChange={(on) => set({ rename: on ? { pattern: '', replacement: '' } : null })} />
              {g.rename ? (
                <div className="field-row">
                  <TextField label="Rename pattern" path="group.rename.pattern" mono value={g.rename.pattern} onChange={(v) => set({ rename: { ...g.rename!, pattern: v } })} hint="Matches the whole name, ignoring case" />
                  <TextField label="Rename to" path="group.rename.replacement" mono value={g.rename.replacement} onChange={(v) => set({ rename: { ...g.rename!, replacement: v } })} hint="$1… for the pattern's groups" />
                </div>
              ) : null}
            </fieldset>
          ) : (
            <ManualMappingTable value={g.manualMappings} onChange={(m) => set({ manualMappings: m })} />
          )}
          <CheckboxField label="Create mapped groups even when they have no members" path="group.createEmptyGroups" checked={g.createEmptyGroups} onChange={(v) => set({ createEmptyGroups: v })} />
          <CheckboxField
            label="Delete a group this connector created once the provider deleted it and it is empty"
            path="group.deleteEmptyManagedGroups"
            checked={g.deleteEmptyManagedGroups}
            onChange={(v) => set({ deleteEmptyManagedGroups: v })}
          />
        </section>

        <section className="card" aria-labelledby="assign-title">
          <h2 id="assign-title">Default and always-assigned groups</h2>
          <div className="field-row">
            <LinesField label="Default groups (given to new users; one per line)" {...field('defaultGroups')} placeholder="jira-software-users" />
            <LinesField label="Always-assigned groups (every synced user; one per line)" {...field('alwaysGroups')} />
          </div>
        </section>

        <section className="card" aria-labelledby="filter-title">
          <h2 id="filter-title">Group filters</h2>
          <p className="muted">Regular expressions on the directory group name. Each must match the whole name; case is ignored.</p>
          <div className="field-row">
            <LinesField label="Only assign groups matching (one pattern per line)" {...field('onlyAssign')} mono placeholder="jira-.*" hint="Empty: every group." />
            <LinesField label="Never assign groups matching" {...field('neverAssign')} mono placeholder="jira-administrators" />
            <LinesField label="Never remove memberships of groups matching" {...field('neverRemove')} mono />
          </div>
          <RadioGroup
            legend="Memberships the provider does not manage"
            {...field('membershipAuthority')}
            options={[
              ['keepUnmanaged', 'Keep them', 'memberships added by hand stay'],
              ['sourceOfTruth', 'Remove them', 'the provider is the source of truth for a synced user'],
            ]}
          />
        </section>

        <section className="card" aria-labelledby="licence-title">
          <h2 id="licence-title">Licence groups</h2>
          <p className="muted">Groups that grant application access, with the seats you have: users over the limit are not added.</p>
          <LicencesTable value={g.licences} onChange={(l) => set({ licences: l })} />
        </section>
      </fieldset>
      <RegexTester settings={g} />
    </>
  );
}

function ManualMappingTable({ value, onChange }: { value: GroupSyncSettings['manualMappings']; onChange: (v: GroupSyncSettings['manualMappings']) => void }) {
  const issues = useIssues('group.manualMappings');
  const set = (i: number, patch: Partial<GroupSyncSettings['manualMappings'][number]>) => onChange(value.map((m, j) => (j === i ? { ...m, ...patch } : m)));
  return (
    <div className="manual-mappings">
      <DataTable
        className="edit-table"
        wrap={false}
        caption="Manual mapping: provider group → directory groups"
        showCaption
        columns={['Provider group', 'Directory groups (comma-separated)', ACTIONS_COLUMN]}
        rows={value}
        empty="No rows: in manual mode, no provider group feeds any directory group."
        row={(m, i) => <MappingRow key={i} index={i} value={m} onChange={(patch) => set(i, patch)} onRemove={() => onChange(value.filter((_, j) => j !== i))} />}
      />
      {issues.length ? <p className="problem">{issues.join(' ')}</p> : null}
      <button type="button" onClick={() => onChange([...value, { source: '', targets: [] }])}>
        Add mapping row
      </button>
    </div>
  );
}

function MappingRow({ index, value, onChange, onRemove }: { index: number; value: { source: string; targets: string[] }; onChange: (p: Partial<{ source: string; targets: string[] }>) => void; onRemove: () => void }) {
  const [targets, setTargets] = useState(value.targets.join(', '));
  const sourceId = useId();
  const targetsId = useId();
  const n = index + 1;
  return (
    <tr>
      <td>
        <label htmlFor={sourceId} className="sr-only">
          Provider group of row {n}
        </label>
        <input id={sourceId} type="text" value={value.source} onChange={(e) => onChange({ source: e.target.value })} />
      </td>
      <td>
        <label htmlFor={targetsId} className="sr-only">
          Directory groups of row {n}
        </label>
        <input
          id={targetsId}
          type="text"
          value={targets}
          onChange={(e) => {
            setTargets(e.target.value);
            onChange({ targets: e.target.value.split(',').map((t) => t.trim()).filter(Boolean) });
          }}
        />
      </td>
      <td>
        <button type="button" className="small" onClick={onRemove} aria-label={`Remove mapping row ${n}`}>
          Remove
        </button>
      </td>
    </tr>
  );
}

function LicencesTable({ value, onChange }: { value: GroupSyncSettings['licences']; onChange: (v: GroupSyncSettings['licences']) => void }) {
  const issues = useIssues('group.licences');
  return (
    <div>
      {value.length ? (
        <DataTable
          className="edit-table"
          wrap={false}
          caption="Licence groups"
          columns={['Group', 'Seats', ACTIONS_COLUMN]}
          rows={value}
          row={(l, i) => (
            <tr key={i}>
              <td>
                <input aria-label={`Licence group ${i + 1}`} type="text" value={l.group} onChange={(e) => onChange(value.map((x, j) => (j === i ? { ...x, group: e.target.value } : x)))} />
              </td>
              <td>
                <input
                  aria-label={`Seats of licence group ${i + 1}`}
                  type="number"
                  min={0}
                  value={l.seats}
                  onChange={(e) => onChange(value.map((x, j) => (j === i ? { ...x, seats: Number(e.target.value) } : x)))}
                />
              </td>
              <td>
                <button type="button" className="small" onClick={() => onChange(value.filter((_, j) => j !== i))} aria-label={`Remove licence group ${l.group || i + 1}`}>
                  Remove
                </button>
              </td>
            </tr>
          )}
        />
      ) : null}
      {issues.length ? <p className="problem">{issues.join(' ')}</p> : null}
      <button type="button" onClick={() => onChange([...value, { group: '', seats: 0 }])}>
        Add licence group
      </button>
    </div>
  );
}

// ------------------------------------------------------------------------------------- regex tester

/**
 * Try a pattern, and the group settings of the form, on sample group names: in the page, with the
 * service's rules (whole name, case-insensitive).
 */
export function RegexTester({ settings }: { settings: GroupSyncSettings }) {
  const [pattern, setPattern] = useState('');
  const [samples, setSamples] = useState('jira-software-users\nJira-Administrators\nconfluence-users\nAll Staff');
  const names = samples
    .split('\n')
    .map((s) => s.trim())
    .filter(Boolean);
  const problem = pattern ? patternProblem(pattern) : undefined;
  const re = useMemo(() => {
    if (!pattern) return undefined;
    try {
      return wholeNameRegex(pattern);
    } catch {
      return undefined;
    }
  }, [pattern]);
  const matching = re ? names.filter((n) => re.test(n)).length : 0;
  return (
    <section className="card regex-tester" aria-labelledby="tester-title">
      <h2 id="tester-title">Regex tester</h2>
      <p className="muted">Type a pattern and some group names to see which match, and what the settings above do with each name. Nothing is saved.</p>
      <div className="field-row">
        <TextField label="Pattern to try" mono value={pattern} onChange={setPattern} placeholder="jira-.*" problem={problem} hint="Matched against the whole name, ignoring case, as the service does." />
        <TextArea label="Sample group names (one per line)" mono rows={4} value={samples} onChange={setSamples} />
      </div>
      <p aria-live="polite" className="muted">
        {re ? `${matching} of ${names.length} names match the pattern.` : pattern && problem ? 'The pattern is not a valid regular expression.' : ''}
      </p>
      <DataTable
        wrap={false}
        caption="Regex tester results"
        columns={['Group name', 'Pattern', 'With the settings above']}
        rows={names}
        row={(n, i) => {
          const o = groupOutcome(settings, n);
          return (
            <tr key={`${n}-${i}`}>
              <td className="mono">{n}</td>
              <td>{re ? re.test(n) ? <Badge tone="good">matches</Badge> : <Badge>no match</Badge> : '—'}</td>
              <td>
                {o.problem ? <span className="muted">— (a pattern above is not valid)</span> : null}
                {o.targets.map((t) => (
                  <div key={t}>
                    → <strong>{t}</strong>
                    {o.neverRemove.includes(t) ? ' (never removed)' : ''}
                  </div>
                ))}
                {o.excluded.map((x, j) => (
                  <div key={j} className="muted">
                    {x.name === n ? 'left out' : `${x.name} left out`}: {x.reason}
                  </div>
                ))}
              </td>
            </tr>
          );
        }}
      />
    </section>
  );
}
