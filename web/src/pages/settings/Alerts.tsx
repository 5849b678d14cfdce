// Alerts by webhook and e-mail: where they go, when they are sent, a test, and the alerts sent so far.

import { useEffect, useState } from 'react';
import type { AlertRow, AlertSettings } from '../../api.ts';
import { api } from '../../api.ts';
import { CheckboxField, DataTable, ErrorMessage, IssuesContext, LinesField, Loading, Notice, NumberField, Section, SelectField, TextArea, TextField, useAction, useLoad } from '../../components.tsx';
import { formatDate } from '../../format.ts';
import { useSession } from '../../session.tsx';

type TestResult = { webhook: { ok: boolean; error?: string } | null; email: { ok: boolean; error?: string } | null };

/** A stored secret: keep it (undefined), replace it (a string), or clear it (null). */
type SecretChange = string | null | undefined;

function SecretField({ label, stored, value, onChange, disabled }: { label: string; stored: boolean; value: SecretChange; onChange: (v: SecretChange) => void; disabled?: boolean }) {
  return (
    <div className="secret-field">
      <TextField
        label={label}
        type="password"
        autoComplete="new-password"
        value={typeof value === 'string' ? value : ''}
        onChange={(v) => onChange(v === '' ? undefined : v)}
        placeholder={stored && value !== null ? '(stored)' : ''}
        hint={stored ? 'One is stored. Leave this empty to keep it.' : undefined}
        disabled={disabled || value === null}
      />
      {stored ? <CheckboxField label={`Remove the stored ${label.toLowerCase()}`} checked={value === null} onChange={(on) => onChange(on ? null : undefined)} disabled={disabled} /> : null}
    </div>
  );
}

export function AlertsSettings() {
  const { canChange } = useSession();
  const loaded = useLoad((signal) => api.get<AlertSettings>('/alerts/settings', undefined, signal), []);
  const history = useLoad((signal) => api.get<{ alerts: AlertRow[] }>('/alerts', undefined, signal), []);
  const [draft, setDraft] = useState<AlertSettings>();
  const [webhookSecret, setWebhookSecret] = useState<SecretChange>();
  const [emailPassword, setEmailPassword] = useState<SecretChange>();
  const [note, setNote] = useState('');
  const [test, setTest] = useState<TestResult>();
  const action = useAction();
  const testing = useAction();

  useEffect(() => {
    const d = loaded.data;
    if (!d) return;
    // empty text fields are null in the API, and '' in the form
    setDraft({
      ...d,
      webhook: { ...d.webhook, url: d.webhook.url ?? '' },
      email: { ...d.email, host: d.email.host ?? '', username: d.email.username ?? '', from: d.email.from ?? '', caCertificate: d.email.caCertificate ?? '', to: [...d.email.to] },
    });
  }, [loaded.data]);

  if (loaded.error && !loaded.data) return <ErrorMessage error={loaded.error} />;
  if (!draft) return <Loading />;
  const w = draft.webhook;
  const m = draft.email;
  const setW = (p: Partial<AlertSettings['webhook']>) => setDraft({ ...draft, webhook: { ...w, ...p } });
  const setM = (p: Partial<AlertSettings['email']>) => setDraft({ ...draft, email: { ...m, ...p } });

  const save = async () => {
    setNote('');
    const webhook: Record<string, unknown> = { enabled: w.enabled, url: w.url };
    if (webhookSecret !== undefined) webhook.secret = webhookSecret;
    const email: Record<string, unknown> = { enabled: m.enabled, host: m.host, port: m.port, security: m.security, username: m.username, from: m.from, to: m.to, caCertificate: m.caCertificate || null };
    if (emailPassword !== undefined) email.password = emailPassword;
    const r = await action.run(() => api.put<AlertSettings>('/alerts/settings', { webhook, email, rules: draft.rules }));
    if (r) {
      loaded.setData(r);
      setWebhookSecret(undefined);
      setEmailPassword(undefined);
      setNote('The alert settings are saved.');
    }
  };

  const sendTest = async () => {
    setTest(undefined);
    const r = await testing.run(() => api.post<TestResult>('/alerts/test'));
    if (r) setTest(r);
    history.reload();
  };

  return (
    <>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void save();
        }}
      >
        <IssuesContext.Provider value={action.issues}>
        <fieldset className="plain" disabled={!canChange}>
          <Section title="When to alert" description="Held runs waiting for approval always raise an alert.">
            <div className="field-row">
              <NumberField label="Alert after this many failed runs in a row" min={1} value={draft.rules.failingRuns} onChange={(v) => setDraft({ ...draft, rules: { ...draft.rules, failingRuns: v ?? 1 } })} />
              <NumberField
                label="Alert this many days before a Graph secret or certificate expires"
                min={0}
                value={draft.rules.credentialExpiryDays}
                onChange={(v) => setDraft({ ...draft, rules: { ...draft.rules, credentialExpiryDays: v ?? 0 } })}
              />
            </div>
          </Section>
          <Section title="Webhook" description="A JSON POST to this URL for every alert, signed with the secret when one is set.">
            <CheckboxField label="Send alerts to a webhook" checked={w.enabled} onChange={(v) => setW({ enabled: v })} />
            <div className="field-row">
              <TextField label="Webhook URL" path="webhook.url" mono value={w.url ?? ''} onChange={(v) => setW({ url: v })} placeholder="https://hooks.example.com/usersync" />
              <SecretField label="Signing secret" stored={!!w.secret?.set} value={webhookSecret} onChange={setWebhookSecret} />
            </div>
          </Section>
          <Section title="E-mail" description="Alerts by e-mail through your SMTP server.">
            <CheckboxField label="Send alerts by e-mail" checked={m.enabled} onChange={(v) => setM({ enabled: v })} />
            <div className="field-row">
              <TextField label="SMTP host" path="email.host" mono value={m.host ?? ''} onChange={(v) => setM({ host: v })} placeholder="smtp.example.com" />
              <NumberField label="SMTP port" min={1} max={65535} value={m.port} onChange={(v) => setM({ port: v ?? 587 })} />
              <SelectField
                label="Connection security"
                value={m.security}
                onChange={(v) => setM({ security: v })}
                options={[
                  ['starttls', 'STARTTLS'],
                  ['tls', 'TLS'],
                  ['none', 'None (not recommended)'],
                ]}
              />
            </div>
            <div className="field-row">
              <TextField label="SMTP username" path="email.username" value={m.username ?? ''} onChange={(v) => setM({ username: v })} autoComplete="off" />
              <SecretField label="SMTP password" stored={!!m.password?.set} value={emailPassword} onChange={setEmailPassword} />
            </div>
            <div className="field-row">
              <TextField label="From address" path="email.from" value={m.from ?? ''} onChange={(v) => setM({ from: v })} placeholder="usersync@example.com" />
              <LinesField label="To addresses (one per line)" path="email.to" value={m.to} onChange={(v) => setM({ to: v })} />
            </div>
            <TextArea label="SMTP server CA certificate (PEM)" path="email.caCertificate" mono rows={3} value={m.caCertificate ?? ''} onChange={(v) => setM({ caCertificate: v })} hint="Only for a server whose certificate an internal CA signed." />
          </Section>
        </fieldset>
        </IssuesContext.Provider>
        <div aria-live="polite">{note ? <Notice kind="success">{note}</Notice> : null}</div>
        <ErrorMessage error={action.error} issues={action.issues} />
        {canChange ? (
          <div className="form-actions">
            <button type="submit" className="primary" disabled={action.busy}>
              {action.busy ? 'Saving…' : 'Save alert settings'}
            </button>
            <button type="button" onClick={() => void sendTest()} disabled={testing.busy}>
              {testing.busy ? 'Sending…' : 'Send test alert'}
            </button>
          </div>
        ) : null}
        <div aria-live="polite">
          <ErrorMessage error={testing.error} />
          {test ? (
            <ul className="checks" aria-label="Test alert results">
              <li className={test.webhook === null ? '' : test.webhook.ok ? 'ok' : 'bad'}>
                <strong>Webhook</strong>: {test.webhook === null ? 'not enabled' : test.webhook.ok ? 'delivered' : `failed: ${test.webhook.error ?? 'no reason given'}`}
              </li>
              <li className={test.email === null ? '' : test.email.ok ? 'ok' : 'bad'}>
                <strong>E-mail</strong>: {test.email === null ? 'not enabled' : test.email.ok ? 'delivered' : `failed: ${test.email.error ?? 'no reason given'}`}
              </li>
            </ul>
          ) : null}
        </div>
        <p className="hint">The test uses the saved settings.</p>
      </form>
      <Section title="Alerts sent">
        <ErrorMessage error={history.error} />
        {history.data ? (
          <DataTable
            caption="Alerts sent"
            columns={['When', 'Kind', 'Connector', 'Subject', 'Delivered']}
            rows={history.data.alerts}
            empty="No alerts yet."
            row={(a) => (
              <tr key={a.seq}>
                <td className="nowrap">{formatDate(a.at)}</td>
                <td>{a.kind}</td>
                <td>{a.connectorId ?? '—'}</td>
                <td>
                  <details>
                    <summary>{a.subject}</summary>
                    <p>{a.message}</p>
                  </details>
                </td>
                <td>{a.deliveredAt ? formatDate(a.deliveredAt) : 'not yet'}</td>
              </tr>
            )}
          />
        ) : (
          <Loading />
        )}
      </Section>
    </>
  );
}
