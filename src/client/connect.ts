/**
 * A connected DeploymentClient from the same settings the CLI and the worker read: TEMPORAL_ADDRESS,
 * TEMPORAL_NAMESPACE, TEMPORAL_TASK_QUEUE and the TLS or API-key settings (see docs/configuration.md). For
 * teams that drive deployments from their own tooling.
 */
import { Client, Connection } from '@temporalio/client';
import { connectionOptions, TemporalConfigSchema } from '../config/temporal.js';
import type { TemporalConfig } from '../config/temporal.js';
import { parseEnv } from '../config/env.js';
import { DeploymentClient } from './deployment-client.js';
import { TrainClient } from './train-client.js';

export interface ConnectedDeployments {
  deployments: DeploymentClient;
  /** Release trains, started on the same task queue (the train needs no cluster's credentials). */
  trains: TrainClient;
  connection: Connection;
  config: TemporalConfig;
  /** Closes the connection to Temporal. */
  close(): Promise<void>;
}

/** Thrown when Temporal does not answer at the configured address. */
export class TemporalUnreachableError extends Error {
  constructor(address: string, cause: unknown) {
    super(`cannot reach Temporal at ${address}: ${(cause as Error).message}`, { cause });
    this.name = 'TemporalUnreachableError';
  }
}

/**
 * Connects with `settings` (environment-style names; process.env by default). Invalid settings
 * throw a ConfigError naming each one; an unreachable server, TemporalUnreachableError after 5 s.
 */
export async function connectDeployments(
  settings: Record<string, string | undefined> = process.env,
): Promise<ConnectedDeployments> {
  const config = parseEnv(TemporalConfigSchema, settings);
  let connection: Connection;
  try {
    connection = await Connection.connect({ ...connectionOptions(config), connectTimeout: '5s' });
  } catch (error) {
    throw new TemporalUnreachableError(config.TEMPORAL_ADDRESS, error);
  }
  const client = new Client({ connection, namespace: config.TEMPORAL_NAMESPACE });
  return {
    deployments: new DeploymentClient(client, config.TEMPORAL_TASK_QUEUE),
    trains: new TrainClient(client, config.TEMPORAL_TASK_QUEUE),
    connection,
    config,
    close: () => connection.close(),
  };
}
