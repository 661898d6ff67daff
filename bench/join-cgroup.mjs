// bench:kubernetes's capped worker: joins the memory cgroup (argv[2], its cgroup.procs) before
// loading anything, then runs the worker (argv[3]) in this same process. Plain JavaScript, so
// nothing is loaded before the join.
import { writeFileSync } from 'node:fs';
import process from 'node:process';

writeFileSync(process.argv[2], String(process.pid));
await import(process.argv[3]);
