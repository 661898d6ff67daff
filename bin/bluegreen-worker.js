#!/usr/bin/env node
// The deployment worker (configuration from the environment: see the README): the compiled worker
// when installed, its TypeScript in a checkout, as `npm run worker` runs it (entry.js).
import { importEntry } from './entry.js';

await importEntry('worker/main');
