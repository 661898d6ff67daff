/**
 * A TEST DOUBLE of a slow API: a plain HTTP proxy in front of the local platform's control API that
 * forwards everything, but holds writes (PATCH, PUT, POST, DELETE) before forwarding them, as an
 * API server that is slow for one request would. It tells the test the moment each write arrives,
 * so a drill can send `abort` while that write is in flight. The platform behind it is the real one.
 */
import { createServer, request } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

const WRITES = new Set(['PATCH', 'PUT', 'POST', 'DELETE']);

/** A write as it arrived at the proxy, before it was forwarded. */
export interface ArrivedWrite {
  method: string;
  path: string;
  /** performance.now() at arrival. */
  at: number;
}

export class SlowWriteProxy {
  /** Every write is held this long before it is forwarded. */
  writeDelayMs = 0;
  /** Writes matching `path` are held `ms` instead (each once, then the rule is gone). */
  private holds: { path: RegExp; ms: number }[] = [];
  private listeners: ((write: ArrivedWrite) => void)[] = [];
  readonly writes: ArrivedWrite[] = [];

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

  /** Holds the next write whose path matches for `ms` before forwarding it. */
  holdNext(path: RegExp, ms: number): void {
    this.holds.push({ path, ms });
  }

  /** Resolves with the next write whose path matches, the moment it arrives. */
  nextWrite(path: RegExp): Promise<ArrivedWrite> {
    return new Promise((resolve) => {
      const listener = (write: ArrivedWrite) => {
        if (!path.test(write.path)) return;
        this.listeners = this.listeners.filter((l) => l !== listener);
        resolve(write);
      };
      this.listeners.push(listener);
    });
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';
    if (!WRITES.has(method)) return this.forward(req, res);
    const write = { method, path, at: performance.now() };
    this.writes.push(write);
    const hold = this.holds.find((h) => h.path.test(path));
    if (hold) this.holds = this.holds.filter((h) => h !== hold);
    for (const listener of [...this.listeners]) listener(write);
    const delay = hold?.ms ?? this.writeDelayMs;
    if (delay > 0) setTimeout(() => this.forward(req, res), delay);
    else this.forward(req, res);
  }

  private forward(req: IncomingMessage, res: ServerResponse): void {
    const upstream = request(
      { host: this.upstream.hostname, port: this.upstream.port, method: req.method, path: req.url, headers: req.headers },
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
