/**
 * The TAK side of bench:service, in a process of its own so that reading the events never
 * competes with the load generator: counts CoT events on 127.0.0.1:PORT and prints the count when
 * asked to stop (SIGTERM).
 */
import { createServer } from 'node:net';

let delivered = 0;
const server = createServer((socket) => {
  let tail = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    const text = tail + chunk;
    delivered += text.split('</event>').length - 1;
    tail = text.slice(text.lastIndexOf('</event>') + '</event>'.length);
  });
});
server.listen(Number(process.env['PORT']), '127.0.0.1', () => process.stdout.write('listening\n'));
process.on('SIGTERM', () => {
  process.stdout.write(`${delivered}\n`);
  process.exit(0);
});
