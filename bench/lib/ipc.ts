// A small request/response channel over the Node IPC pipe between the bench driver and the servers it
// starts. It carries only set-up and control messages (seeding, waiting for the reconciler, profiling),
// never the measured traffic, which goes over HTTP.

import type { ChildProcess } from 'node:child_process';

interface Call {
  rpc: number;
  cmd: string;
  args: unknown;
}

interface Reply {
  rpc: number;
  ok: boolean;
  result?: unknown;
  error?: string;
}

export type Handlers = Record<string, (args: never) => Promise<unknown> | unknown>;

/** In a child: answer the driver's calls with `handlers`. */
export function serveIpc(handlers: Handlers): void {
  if (!process.send) throw new Error('this process was not started with an IPC channel');
  process.on('message', (msg: Call) => {
    void (async () => {
      let reply: Reply;
      try {
        const handler = handlers[msg.cmd];
        if (!handler) throw new Error(`unknown command '${msg.cmd}'`);
        reply = { rpc: msg.rpc, ok: true, result: await handler(msg.args as never) };
      } catch (e) {
        reply = { rpc: msg.rpc, ok: false, error: e instanceof Error ? (e.stack ?? e.message) : String(e) };
      }
      process.send!(reply);
    })();
  });
  // the driver went away: do not linger
  process.on('disconnect', () => process.exit(0));
}

/** In the driver: call a command in a child started with an 'ipc' stdio slot. */
export class IpcClient {
  private next = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  constructor(private readonly child: ChildProcess) {
    child.on('message', (msg: Reply) => {
      const p = this.pending.get(msg.rpc);
      if (!p) return;
      this.pending.delete(msg.rpc);
      if (msg.ok) p.resolve(msg.result);
      else p.reject(new Error(msg.error));
    });
    child.on('exit', (code, signal) => {
      for (const p of this.pending.values()) p.reject(new Error(`server process exited (${signal ?? code})`));
      this.pending.clear();
    });
  }

  call<T>(cmd: string, args: unknown = {}): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const rpc = this.next++;
      this.pending.set(rpc, { resolve: resolve as (v: unknown) => void, reject });
      this.child.send({ rpc, cmd, args } satisfies Call);
    });
  }
}

/** A `shutdown` handler for a child: answer first, then close and exit. */
export function shutdownAfter(close: () => Promise<unknown>): () => null {
  return () => {
    setImmediate(() => void close().finally(() => process.exit(0)));
    return null;
  };
}

/** Ask a child to shut down, and kill it if it has not exited within 10 s. */
export async function stopChildProcess(child: ChildProcess, ipc: IpcClient): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await ipc.call('shutdown').catch(() => {});
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}
