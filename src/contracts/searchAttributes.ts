/**
 * Temporal search attributes of instance workflows: the Web UI and the API filter
 * on them. They carry names and states, never a secret. The embedded dev server
 * registers them (src/embedded/temporal.ts); so must a production namespace.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const SEARCH_ATTRIBUTES = {
  server: 'McpServer',
  status: 'McpInstanceStatus',
  health: 'McpHealth',
  /** The node an instance is placed on; placement counts a node's instances with it. */
  node: 'McpNode',
} as const;

export const mcpServerKey = defineSearchAttributeKey(SEARCH_ATTRIBUTES.server, SearchAttributeType.KEYWORD);
export const mcpInstanceStatusKey = defineSearchAttributeKey(SEARCH_ATTRIBUTES.status, SearchAttributeType.KEYWORD);
export const mcpHealthKey = defineSearchAttributeKey(SEARCH_ATTRIBUTES.health, SearchAttributeType.KEYWORD);
export const mcpNodeKey = defineSearchAttributeKey(SEARCH_ATTRIBUTES.node, SearchAttributeType.KEYWORD);
