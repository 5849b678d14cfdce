// Group sync settings: mapping (on the fly or the manual table), default and always-assigned groups,
// filters with the regex tester, licence groups.

import { GroupSettingsFields } from '../../forms/settings.tsx';
import { useSession } from '../../session.tsx';
import type { SettingsDraft } from '../Connector.tsx';
import { SaveBar } from './SaveBar.tsx';

export function GroupSettingsTab({ settings, connectorId }: { settings: SettingsDraft; connectorId: string }) {
  const { canChange } = useSession();
  return (
    <form
      aria-label="Group sync settings"
      onSubmit={(e) => {
        e.preventDefault();
        if (settings.dirty) void settings.save();
      }}
    >
      <GroupSettingsFields value={settings.draft} onChange={settings.setDraft} disabled={!canChange} />
      <SaveBar settings={settings} connectorId={connectorId} />
    </form>
  );
}
