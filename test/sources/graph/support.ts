// A running service plus a Graph emulator, with helpers to create Graph connectors and call the admin API.

import type { GraphEmulator } from '../../support/graph-emulator/index.ts';
import { startGraphEmulator } from '../../support/graph-emulator/index.ts';
import type { ServiceRig } from '../../support/service-rig.ts';
import { startServiceRig } from '../../support/service-rig.ts';
import type { Dialect } from '../../../src/store/db.ts';

export interface GraphRig extends ServiceRig {
  emu: GraphEmulator;
  /** the source settings that point a connector at the emulator */
  source(extra?: Record<string, unknown>): Record<string, unknown>;
  createConnector(id: string, extra?: Record<string, unknown>, settings?: unknown): Promise<void>;
}

/** Source settings that point a Graph connector at the emulator (trusting its certificate through the settings). */
export function emulatorSource(emu: GraphEmulator, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    tenantId: emu.tenantId,
    clientId: emu.clientId,
    clientSecret: emu.clientSecret,
    cloud: 'custom',
    authorityHost: emu.authorityHost,
    graphUrl: emu.url,
    caCertificate: emu.caCert,
    schedule: { kind: 'off' },
    ...extra,
  };
}

export async function startGraphRig(dialect: Dialect, opts: { emulator?: Parameters<typeof startGraphEmulator>[0]; schedulerTickMs?: number; bulkMarkThreshold?: number } = {}): Promise<GraphRig> {
  const emu = await startGraphEmulator(opts.emulator);
  const base = await startServiceRig(dialect, opts);
  const source = (extra: Record<string, unknown> = {}) => emulatorSource(emu, extra);
  return {
    ...base,
    emu,
    source,
    async createConnector(id, extra = {}, settings) {
      const res = await base.api('/connectors', { method: 'POST', body: { id, name: `Graph ${id}`, kind: 'graph', source: source(extra), ...(settings ? { settings } : {}) } });
      if (res.status !== 201) throw new Error(`creating connector ${id}: ${res.status} ${JSON.stringify(res.body)}`);
    },
    async close() {
      await base.close();
      await emu.close();
    },
  };
}
