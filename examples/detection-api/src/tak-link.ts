/**
 * The TCP connection to the TAK server's CoT input: connects, reconnects with backoff when the
 * server goes away, and reports its state for /health and the delivery loop.
 */
import { EventEmitter } from 'node:events';
import { Socket } from 'node:net';

export class TakLink extends EventEmitter<{ connected: []; disconnected: [Error | null] }> {
  private socket: Socket | null = null;
  private connectedSocket: Socket | null = null;
  private retryMs = 100;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  lastError: string | null = null;

  constructor(
    private readonly host: string,
    private readonly port: number,
  ) {
    super();
  }

  get connected(): boolean {
    return this.connectedSocket !== null;
  }

  start(): void {
    this.stopped = false;
    this.connect();
  }

  /** Writes one event; resolves once it is handed to the kernel, rejects if the link is down. */
  send(payload: string): Promise<void> {
    const socket = this.connectedSocket;
    if (!socket) return Promise.reject(new Error('TAK link is down'));
    return new Promise((resolve, reject) => {
      socket.write(payload, (error) => (error ? reject(error) : resolve()));
    });
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.socket?.destroy();
    this.socket = null;
    this.connectedSocket = null;
  }

  private connect(): void {
    const socket = new Socket();
    this.socket = socket;
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 10_000);
    socket.once('connect', () => {
      this.connectedSocket = socket;
      this.retryMs = 100;
      this.lastError = null;
      this.emit('connected');
    });
    socket.on('error', (error) => {
      this.lastError = error.message;
    });
    socket.once('close', () => {
      const wasConnected = this.connectedSocket === socket;
      if (wasConnected) this.connectedSocket = null;
      if (this.socket === socket) this.socket = null;
      if (wasConnected) this.emit('disconnected', this.lastError ? new Error(this.lastError) : null);
      if (!this.stopped) {
        this.timer = setTimeout(() => this.connect(), this.retryMs);
        this.retryMs = Math.min(this.retryMs * 2, 2000);
      }
    });
    // A TAK server sends nothing we need on this input; reading keeps the socket's close visible.
    socket.on('data', () => undefined);
    socket.connect(this.port, this.host);
  }
}
