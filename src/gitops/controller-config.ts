/**
 * The Release controller's environment, validated at start: a bad value stops the process with the
 * variable named (exit 2) before it touches the cluster. The lease timings follow client-go's
 * defaults (15 s, 10 s, 2 s) and their rule: retry < renew deadline < lease duration.
 */
import { z } from 'zod';

const seconds = (name: string, fallback: number) =>
  z.coerce
    .number({ invalid_type_error: `${name} must be a number of seconds` })
    .positive(`${name} must be above 0`)
    .default(fallback);

/** The controller's settings, besides Temporal's (TEMPORAL_*) and the kubeconfig (BLUEGREEN_KUBECONFIG). */
export const ControllerEnvSchema = z
  .object({
    /** The namespace whose Releases this controller watches (its Role's); by default its pod's. */
    BLUEGREEN_RELEASE_NAMESPACE: z
      .string()
      .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'BLUEGREEN_RELEASE_NAMESPACE must be a namespace name')
      .optional(),
    /** This replica's name in the Lease: by default POD_NAME (from the downward API), else host and pid. */
    BLUEGREEN_CONTROLLER_ID: z.string().min(1).optional(),
    BLUEGREEN_LEASE_NAME: z.string().min(1).default('bluegreen-release-controller'),
    BLUEGREEN_LEASE_DURATION_SECONDS: seconds('BLUEGREEN_LEASE_DURATION_SECONDS', 15),
    BLUEGREEN_RENEW_DEADLINE_SECONDS: seconds('BLUEGREEN_RENEW_DEADLINE_SECONDS', 10),
    BLUEGREEN_RETRY_PERIOD_SECONDS: seconds('BLUEGREEN_RETRY_PERIOD_SECONDS', 2),
    /** How often every Release's deployment is read again and mirrored into its status. */
    BLUEGREEN_RESYNC_SECONDS: seconds('BLUEGREEN_RESYNC_SECONDS', 5),
  })
  .refine(
    (s) =>
      s.BLUEGREEN_RETRY_PERIOD_SECONDS < s.BLUEGREEN_RENEW_DEADLINE_SECONDS &&
      s.BLUEGREEN_RENEW_DEADLINE_SECONDS < s.BLUEGREEN_LEASE_DURATION_SECONDS,
    {
      message:
        'BLUEGREEN_RETRY_PERIOD_SECONDS must be below BLUEGREEN_RENEW_DEADLINE_SECONDS, and that below ' +
        'BLUEGREEN_LEASE_DURATION_SECONDS: a leader stops before its lease can expire',
      path: ['BLUEGREEN_RENEW_DEADLINE_SECONDS'],
    },
  );
