/** What a failed call to the Kubernetes API says, whichever of client-node's paths it failed on. */

/**
 * The HTTP status of a failed API call: client-node's ApiException has it in `code`, a refused
 * watch (its informer's ERROR event) in `statusCode`.
 */
export function httpCodeOf(error: unknown): number | undefined {
  const { code, statusCode } = (error ?? {}) as { code?: unknown; statusCode?: unknown };
  if (typeof code === 'number') return code;
  return typeof statusCode === 'number' ? statusCode : undefined;
}
