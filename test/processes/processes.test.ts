/**
 * freePort: the ports it hands out stay clear of the kernel's ephemeral range, where every
 * port-0 bind and outgoing connection of any process lands, and none is handed out twice, by one
 * process or by two at once.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { freePort } from '../../src/processes/processes.js';

describe('freePort', () => {
  it('hands out distinct ports below the ephemeral range, each free to bind', async () => {
    const firstEphemeral = Number(
      readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0],
    );
    const ports: number[] = [];
    for (let i = 0; i < 200; i++) ports.push(await freePort());
    assert.equal(new Set(ports).size, ports.length, 'no port twice');
    for (const port of ports)
      assert.ok(port >= 10_000 && port < firstEphemeral, `${port} lies below ${firstEphemeral}`);
    const servers = await Promise.all(
      ports.slice(0, 20).map(
        (port) =>
          new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
            const server = createServer();
            server.once('error', reject);
            server.listen(port, '127.0.0.1', () => resolve(server));
          }),
      ),
    );
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  });

  it('never hands two processes the same port, though each checks it free before the other binds it', async () => {
    // 400 ports each, at once, none bound: 400 × 400 draws from about 22,000 ports meet about 7
    // times by chance, which the bind check alone does not see.
    const script =
      "import { freePort } from './src/processes/processes.ts'; const p = []; for (let i = 0; i < 400; i++) p.push(await freePort()); console.log(JSON.stringify(p));";
    const run = async () =>
      JSON.parse(
        (
          await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
            cwd: new URL('../..', import.meta.url).pathname,
          })
        ).stdout,
      ) as number[];
    const [first, second] = await Promise.all([run(), run()]);
    assert.equal(first.length, 400);
    assert.equal(second.length, 400);
    const shared = first.filter((port) => second.includes(port));
    assert.deepEqual(shared, [], 'ports handed to both processes');
  });
});
