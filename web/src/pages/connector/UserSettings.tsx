// User sync settings: operations, attribute mapping, custom attributes, condition and cleanup, the deletion limit.

import { UserSettingsFields } from '../../forms/settings.tsx';
import { useSession } from '../../session.tsx';
import type { SettingsDraft } from '../Connector.tsx';
import { SaveBar } from './SaveBar.tsx';

export function UserSettingsTab({ settings, connectorId }: { settings: SettingsDraft; connectorId: string }) {
  const { canChange } = useSession();
  return (
    <form
      aria-label="User sync settings"
      onSubmit={(e) => {
        e.preventDefault();
        if (settings.dirty) void settings.save();
      }}
    >
      <UserSettingsFields value={settings.draft} onChange={settings.setDraft} disabled={!canChange} />
      <SaveBar settings={settings} connectorId={connectorId} />
    </form>
  );
}
