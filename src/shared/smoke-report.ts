/**
 * What the smoke suite reports: a verdict per check, in one vocabulary. Pure module: the workflow
 * keeps the report in its status and history.
 */

export const CheckVerdict = {
  Passed: 'passed',
  Warning: 'warning',
  Failed: 'failed',
} as const;
export type CheckVerdict = (typeof CheckVerdict)[keyof typeof CheckVerdict];

export interface SmokeCheckResult {
  name: string;
  verdict: CheckVerdict;
  latencyMs: number | null;
  message: string;
}

export interface SmokeReport {
  endpoint: string;
  passed: boolean;
  checks: SmokeCheckResult[];
}
