/**
 * A stand-in for the TAK server's CoT input, for the demo and the benchmarks: a TCP listener on
 * loopback that counts the events it receives and otherwise discards them.
 */
import { createServer } from 'node:net';
import type { Socket } from 'node:net';

export interface TakSink {
  port: number;
  delivered(): number;
  close(): Promise<void>;
}

export async function startTakSink(port: number, host = '127.0.0.1'): Promise<TakSink> {
  let delivered = 0;
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    let tail = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      const text = tail + chunk;
      delivered += text.split('</event>').length - 1;
      tail = text.slice(text.lastIndexOf('</event>') + '</event>'.length);
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return {
    port: (server.address() as { port: number }).port,
    delivered: () => delivered,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
