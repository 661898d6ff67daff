#!/usr/bin/env node
// The `bluegreen` command: the compiled CLI when installed, its TypeScript in a checkout (entry.js).
import { importEntry } from './entry.js';

const cli = await importEntry('client/cli');
process.exitCode = await cli.runCli(process.argv.slice(2));
