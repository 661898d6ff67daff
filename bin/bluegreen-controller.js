#!/usr/bin/env node
// The Release controller (GitOps; configuration from the environment: see the README): the
// compiled controller when installed, its TypeScript in a checkout, as `npm run controller` runs it
// (entry.js).
import { importEntry } from './entry.js';

await importEntry('gitops/main');
