/**
 * The TAK side of bench:service, in a process of its own so that reading the events never
 * competes with the load generator: counts CoT events on 127.0.0.1:PORT and prints the count when
 * asked to stop (SIGTERM).
 */
import { startTakSink } from '../src/demo/tak-sink.js';

const sink = await startTakSink(Number(process.env['PORT']));
process.stdout.write('listening\n');
process.on('SIGTERM', () => {
  process.stdout.write(`${sink.delivered()}\n`);
  process.exit(0);
});
