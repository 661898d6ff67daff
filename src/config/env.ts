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

/**
 * Parses the environment once with a schema per part (an adapter's settings each), and throws one
 * error listing every variable at fault across all of them; each part comes back parsed, for the
 * adapter it configures.
 */
export function parseEnvParts<S extends Record<string, z.ZodTypeAny>>(
  schemas: S,
  env: NodeJS.ProcessEnv,
): { [K in keyof S]: z.output<S[K]> } {
  const parts: Record<string, unknown> = {};
  const lines: string[] = [];
  for (const [name, schema] of Object.entries(schemas)) {
    const result = schema.safeParse(env);
    if (result.success) parts[name] = result.data;
    else
      for (const issue of result.error.issues) {
        const line = `  - ${issue.path.join('.') || '(environment)'}: ${issue.message}`;
        if (!lines.includes(line)) lines.push(line);
      }
  }
  if (lines.length > 0) throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  return parts as { [K in keyof S]: z.output<S[K]> };
}

/** Parses environment variables with a schema; the error lists each variable and its rule. */
export function parseEnv<S extends z.ZodTypeAny>(schema: S, env: NodeJS.ProcessEnv): z.output<S> {
  const result = schema.safeParse(env);
  if (result.success) return result.data as z.output<S>;
  const lines = result.error.issues.map((i) => `  - ${i.path.join('.') || '(environment)'}: ${i.message}`);
  throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
}
