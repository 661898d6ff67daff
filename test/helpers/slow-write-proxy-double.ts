/**
 * A TEST DOUBLE of a slow API: a plain HTTP proxy in front of the local platform's control API that
 * forwards everything, but can hold writes before forwarding them (its `tap`), as an API server
 * that is slow for one request would. The platform behind it is the real one.
 */
import { createServer, request } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WriteTap } from './write-tap.js';

export class SlowWriteProxy {
  readonly tap = new WriteTap();

  private constructor(
    private readonly server: Server,
    private readonly upstream: URL,
  ) {}

  static async start(upstream: string): Promise<SlowWriteProxy> {
    let proxy: SlowWriteProxy | null = null;
    const server = createServer((req, res) => proxy!.handle(req, res));
    proxy = new SlowWriteProxy(server, new URL(upstream));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    WriteTap.after(this.tap.arrive(req.method ?? 'GET', req.url ?? '/'), () => this.forward(req, res));
  }

  private forward(req: IncomingMessage, res: ServerResponse): void {
    const upstream = request(
      {
        host: this.upstream.hostname,
        port: this.upstream.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', (error) => {
      if (!res.headersSent) {
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(`slow-write proxy: upstream failed: ${error.message}`);
      } else res.destroy();
    });
    req.pipe(upstream);
  }
}
