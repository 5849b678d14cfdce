// A TCP proxy that passes a connection through until a number of bytes has come back from the server, then
// drops every connection and refuses new ones: a server that goes away in the middle of a conversation.
// `drop()` cuts the open connections but keeps accepting: a server that restarted, or an idle timeout.

import net from 'node:net';

export interface CutProxy {
  port: number;
  /** bytes passed from the server so far */
  passed(): number;
  /** close the open connections; new ones are still accepted (unless the byte limit was reached) */
  drop(): void;
  close(): Promise<void>;
}

/** `delayMs`: each chunk from the server is held this long (a slow network), keeping its order. */
export async function startCutProxy(target: { host?: string; port: number }, cutAfterBytes: number, opts: { delayMs?: number } = {}): Promise<CutProxy> {
  let passed = 0;
  let cut = false;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    if (cut) return client.destroy();
    const upstream = net.connect(target.port, target.host ?? '127.0.0.1');
    sockets.add(client).add(upstream);
    const drop = () => {
      cut = true;
      for (const s of sockets) s.destroy();
      sockets.clear();
    };
    client.on('data', (d) => upstream.write(d));
    let queue = Promise.resolve();
    upstream.on('data', (d) => {
      passed += d.length;
      if (passed > cutAfterBytes) return drop();
      if (!opts.delayMs) return void client.write(d);
      queue = queue.then(() => new Promise<void>((r) => setTimeout(r, opts.delayMs))).then(() => void (client.destroyed || client.write(d)));
    });
    for (const s of [client, upstream]) {
      s.on('error', () => {});
      s.on('close', () => {
        client.destroy();
        upstream.destroy();
      });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    passed: () => passed,
    drop: () => {
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
