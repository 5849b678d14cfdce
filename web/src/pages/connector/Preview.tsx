// Preview: what a full sync would do with the settings in the form (saved or not), computed by the service
// on the current mirror without changing anything; then Save.

import { useState } from 'react';
import { Link } from 'react-router';
import type { PassReport, SettingsIssue } from '../../api.ts';
import { ApiError, api, errorMessage, sentence } from '../../api.ts';
import { CounterList, DataTable, ErrorMessage, Notice } from '../../components.tsx';
import { describeChange, formatNumber, namesIn } from '../../format.ts';
import { useSession } from '../../session.tsx';
import type { SettingsDraft } from '../Connector.tsx';

function tabOf(path: string): string {
  return path.startsWith('group') ? 'groups' : 'users';
}

export function PreviewTab({ settings, connectorId }: { settings: SettingsDraft; connectorId: string }) {
  const { canChange } = useSession();
  const [plan, setPlan] = useState<PassReport>();
  const [planOf, setPlanOf] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  const [issues, setIssues] = useState<SettingsIssue[]>([]);
  const current = JSON.stringify(settings.draft);

  const run = async () => {
    setBusy(true);
    setError('');
    setIssues([]);
    try {
      const p = await api.post<PassReport>(`/connectors/${encodeURIComponent(connectorId)}/preview`, { settings: settings.draft }, { limit: 1000 });
      setPlan(p);
      setPlanOf(current);
    } catch (e) {
      setError(errorMessage(e));
      if (e instanceof ApiError) {
        setIssues(e.issues);
        settings.setServerIssues(e.issues);
      }
    } finally {
      setBusy(false);
    }
  };

  const stale = plan && planOf !== current;
  const held = plan?.held ?? [];
  const names = namesIn(plan?.changes ?? []);
  return (
    <div>
      <section className="card" aria-labelledby="preview-title">
        <h2 id="preview-title">Preview</h2>
        <p className="muted">
          What a full sync would change in the directory with {settings.dirty ? 'the settings in the form (not saved yet)' : 'the saved settings'}, from what the identity provider has sent so far. Nothing
          is changed.
        </p>
        <div className="form-actions">
          <button type="button" className={settings.dirty ? undefined : 'primary'} onClick={() => void run()} disabled={busy || settings.localIssues.length > 0}>
            {busy ? 'Computing the preview…' : 'Run preview'}
          </button>
          {canChange && settings.dirty ? (
            <button type="button" className="primary" onClick={() => void settings.save()} disabled={settings.saving || settings.localIssues.length > 0}>
              {settings.saving ? 'Saving…' : 'Save settings'}
            </button>
          ) : null}
          {canChange && settings.dirty ? (
            <button type="button" onClick={settings.discard} disabled={settings.saving}>
              Discard changes
            </button>
          ) : null}
        </div>
        <div aria-live="polite">
          {busy ? <p className="muted">Computing what would change…</p> : null}
          {settings.localIssues.length ? <p className="problem">Some settings need attention first: see the settings tabs.</p> : null}
          {settings.saved_ ? <Notice kind="success">{settings.saved_}</Notice> : null}
          {stale ? <Notice kind="warning">The settings changed since this preview. Run it again to see their effect.</Notice> : null}
        </div>
        <ErrorMessage error={error || settings.saveError} />
        {issues.length ? (
          <ul className="issue-links">
            {issues.map((i, n) => (
              <li key={n}>
                <Link to={`/connectors/${encodeURIComponent(connectorId)}/${tabOf(i.path)}`}>
                  <code>{i.path}</code>
                </Link>
                : {i.message}
              </li>
            ))}
          </ul>
        ) : null}
      </section>

      {plan ? (
        <>
          <section className="card" aria-labelledby="plan-counters">
            <h2 id="plan-counters">What would change</h2>
            <p>
              {plan.totalChanges === 0 ? 'Nothing would change.' : `${formatNumber(plan.totalChanges)} change${plan.totalChanges === 1 ? '' : 's'} in all.`}
              {plan.status === 'held' ? ' The run would be held: it is over the deletion limit, and its deactivations and deletions would wait for approval.' : ''}
            </p>
            <CounterList counters={plan.counters} empty="No changes." />
          </section>
          {plan.targetProblems?.length ? (
            <section className="card" aria-labelledby="plan-target-problems">
              <h2 id="plan-target-problems">What the targets would refuse</h2>
              <p className="muted">Users these settings create or change that a target would refuse: they would be parked there until fixed. Nothing has been sent.</p>
              <ul className="target-problems">
                {plan.targetProblems.map((p, i) => (
                  <li key={i}>
                    <Link to={`/targets/${encodeURIComponent(p.targetId)}`}>{p.target}</Link> would refuse <strong>{p.username}</strong>: {sentence(p.problem)}
                  </li>
                ))}
              </ul>
            </section>
          ) : null}
          {held.length ? (
            <section className="card" aria-labelledby="plan-held">
              <h2 id="plan-held">Held by the deletion limit</h2>
              <DataTable
                wrap={false}
                columns={['User', 'Change', 'Why']}
                rows={held}
                row={(h, i) => (
                  <tr key={i}>
                    <td>{h.username}</td>
                    <td>{h.op}</td>
                    <td>{h.reason}</td>
                  </tr>
                )}
              />
            </section>
          ) : null}
          {plan.seats.length || plan.merges.length ? (
            <section className="card" aria-labelledby="plan-groups">
              <h2 id="plan-groups">Licences and merged groups</h2>
              {plan.seats.map((s) => (
                <p key={s.group}>
                  <strong>{s.group}</strong>: {s.after} of {s.seats} seats used (now {s.before}).
                </p>
              ))}
              {plan.merges.map((m) => (
                <p key={m.group}>
                  <strong>{m.group}</strong> is fed by several provider groups: {m.sources.join(', ')}.
                </p>
              ))}
            </section>
          ) : null}
          <section className="card" aria-labelledby="plan-changes">
            <h2 id="plan-changes">Changes{plan.changes.length < plan.totalChanges ? ` (the first ${formatNumber(plan.changes.length)})` : ''}</h2>
            <DataTable
              caption="Planned changes"
              columns={['What', 'Change']}
              rows={plan.changes}
              empty="No changes."
              row={(c, i) => (
                <tr key={i}>
                  <td>{c.entity}</td>
                  <td>{describeChange(c, names)}</td>
                </tr>
              )}
            />
          </section>
          {plan.log.length ? (
            <section className="card" aria-labelledby="plan-log">
              <h2 id="plan-log">Log</h2>
              <ul className="log">
                {plan.log.map((l, i) => (
                  <li key={i} className={`log-${l.level}`}>
                    <span className="log-level">{l.level}</span> {l.message}
                  </li>
                ))}
              </ul>
            </section>
          ) : null}
        </>
      ) : null}
    </div>
  );
}
