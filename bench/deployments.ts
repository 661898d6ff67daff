/** What the benches wait for in a running deployment. */
import type { DeploymentClient } from '../src/client/deployment-client.js';

/** Polls every 20 ms until the app's deployment is Monitoring; throws if it ends or rolls back first. */
export async function untilMonitoring(client: DeploymentClient, namespace: string, app: string): Promise<void> {
  for (;;) {
    const status = await client.status(namespace, app).catch(() => null);
    if (status?.phase === 'Monitoring') return;
    if (status && ['Succeeded', 'RolledBack', 'Failed', 'RollingBack'].includes(status.phase)) {
      throw new Error(`the deployment of ${app} ended before monitoring: ${status.phase}: ${status.message}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
