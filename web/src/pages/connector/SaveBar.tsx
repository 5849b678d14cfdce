// The bar under the settings forms: unsaved changes, Preview, Save, Discard; problems and the outcome.

import { Link } from 'react-router';
import { ErrorMessage, Notice } from '../../components.tsx';
import { useSession } from '../../session.tsx';
import type { SettingsDraft } from '../Connector.tsx';

export function SaveBar({ settings, connectorId }: { settings: SettingsDraft; connectorId: string }) {
  const { canChange } = useSession();
  if (!canChange) return <p className="muted">You can read these settings; only administrators change them.</p>;
  const problems = settings.localIssues.length;
  return (
    <div className={`save-bar${settings.dirty ? ' sticky' : ''}`} role="region" aria-label="Save settings">
      <div aria-live="polite">
        {settings.dirty ? <p className="save-state">You have unsaved changes.{problems ? ` ${problems === 1 ? 'One field needs' : `${problems} fields need`} attention.` : ''}</p> : null}
        {!settings.dirty && !settings.saved_ ? <p className="save-state muted">No unsaved changes.</p> : null}
        {settings.saved_ ? <Notice kind="success">{settings.saved_}</Notice> : null}
      </div>
      <ErrorMessage error={settings.saveError} />
      <div className="form-actions">
        <Link className={`button${settings.dirty ? '' : ' disabled'}`} to={`/connectors/${encodeURIComponent(connectorId)}/preview`} aria-disabled={!settings.dirty}>
          Preview changes
        </Link>
        <button type="button" className="primary" disabled={!settings.dirty || settings.saving || problems > 0} onClick={() => void settings.save()}>
          {settings.saving ? 'Saving…' : 'Save settings'}
        </button>
        <button type="button" disabled={!settings.dirty || settings.saving} onClick={settings.discard}>
          Discard changes
        </button>
      </div>
    </div>
  );
}
