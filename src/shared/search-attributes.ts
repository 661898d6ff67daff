/**
 * The typed search attributes a deployment carries where the Temporal namespace has them
 * registered, so deployments can be found by app, version, phase and outcome in the Temporal UI,
 * with `temporal workflow list --query`, and with `bluegreen list`. Register them once per
 * namespace (see docs/cli.md); on a namespace without them, deployments run the same, unindexed.
 * Pure module: safe to import from workflow code.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const SearchAttribute = {
  App: defineSearchAttributeKey('BlueGreenApp', SearchAttributeType.KEYWORD),
  Version: defineSearchAttributeKey('BlueGreenVersion', SearchAttributeType.KEYWORD),
  Phase: defineSearchAttributeKey('BlueGreenPhase', SearchAttributeType.KEYWORD),
  Outcome: defineSearchAttributeKey('BlueGreenOutcome', SearchAttributeType.KEYWORD),
} as const;

export const SEARCH_ATTRIBUTE_KEYS = Object.values(SearchAttribute);
