/**
 * Configuration from environment variables, validated at start: a setting that cannot work stops
 * the process with every variable at fault named, instead of failing later and far away.
 */
import type { z } from 'zod';

/** A configuration that cannot work, with every variable at fault named. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Parses environment variables with a schema; the error lists each variable and its rule. */
export function parseEnv<S extends z.ZodTypeAny>(schema: S, env: NodeJS.ProcessEnv): z.output<S> {
  const result = schema.safeParse(env);
  if (result.success) return result.data as z.output<S>;
  const lines = result.error.issues.map((i) => `  - ${i.path.join('.') || '(environment)'}: ${i.message}`);
  throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
}
