#!/usr/bin/env node
// The `bluegreen` command: runs the TypeScript CLI through tsx, so no build step is needed.
import { register } from 'tsx/esm/api';

register();
const { runCli } = await import('../src/client/cli.ts');
process.exitCode = await runCli(process.argv.slice(2));
