/**
 * How to reach Temporal, from the environment, validated: shared by the worker and the CLI so both
 * read the same variables. Credentials (TLS keys, API key) stay here, in the process that needs
 * them; they never enter workflow input or history.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import type { TLSConfig } from '@temporalio/client';
import { DEFAULT_TASK_QUEUE } from '../shared/workflow-id.js';
import { ConfigError } from './env.js';

const optionalPath = z.string().min(1).optional();

export const TemporalConfigSchema = z
  .object({
    TEMPORAL_ADDRESS: z
      .string()
      .regex(/^[^\s:]+:[0-9]{1,5}$/, 'TEMPORAL_ADDRESS must be host:port')
      .default('localhost:7233'),
    TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
    TEMPORAL_TASK_QUEUE: z.string().min(1).default(DEFAULT_TASK_QUEUE),
    /** An API key (Temporal Cloud); implies TLS. */
    TEMPORAL_API_KEY: z.string().min(1).optional(),
    /** 'true' turns on TLS with the system's trust store when no CA file is given. */
    TEMPORAL_TLS: z.enum(['true', 'false']).optional(),
    TEMPORAL_TLS_CERT_PATH: optionalPath,
    TEMPORAL_TLS_KEY_PATH: optionalPath,
    TEMPORAL_TLS_CA_PATH: optionalPath,
    TEMPORAL_TLS_SERVER_NAME: z.string().min(1).optional(),
  })
  .superRefine((env, ctx) => {
    if (Boolean(env.TEMPORAL_TLS_CERT_PATH) !== Boolean(env.TEMPORAL_TLS_KEY_PATH)) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: [env.TEMPORAL_TLS_CERT_PATH ? 'TEMPORAL_TLS_KEY_PATH' : 'TEMPORAL_TLS_CERT_PATH'],
        message: 'mutual TLS needs both TEMPORAL_TLS_CERT_PATH and TEMPORAL_TLS_KEY_PATH',
      });
    }
  });

export type TemporalConfig = z.output<typeof TemporalConfigSchema>;

export interface TemporalConnectionOptions {
  address: string;
  apiKey?: string;
  tls?: TLSConfig;
}

/** Connection options for client and worker, with TLS files read here and only here. */
export function connectionOptions(config: TemporalConfig): TemporalConnectionOptions {
  const read = (path: string | undefined, variable: string) => {
    if (!path) return undefined;
    try {
      return readFileSync(path);
    } catch (error) {
      throw new ConfigError(`${variable}: cannot read ${path}: ${(error as Error).message}`);
    }
  };
  const cert = read(config.TEMPORAL_TLS_CERT_PATH, 'TEMPORAL_TLS_CERT_PATH');
  const key = read(config.TEMPORAL_TLS_KEY_PATH, 'TEMPORAL_TLS_KEY_PATH');
  const ca = read(config.TEMPORAL_TLS_CA_PATH, 'TEMPORAL_TLS_CA_PATH');
  const tlsWanted = config.TEMPORAL_TLS === 'true' || Boolean(cert || ca || config.TEMPORAL_API_KEY);
  return {
    address: config.TEMPORAL_ADDRESS,
    apiKey: config.TEMPORAL_API_KEY,
    tls: tlsWanted
      ? {
          serverNameOverride: config.TEMPORAL_TLS_SERVER_NAME,
          serverRootCACertificate: ca,
          clientCertPair: cert && key ? { crt: cert, key } : undefined,
        }
      : undefined,
  };
}
