/** The local platform's log: one line of JSON per event, on the process's stdout. */
import { pino } from 'pino';

export const logger = pino({ name: 'bluegreen-local-platform' });
