/**
 * The messages of virtualServerWorkflow (apart from the spec module, so mcpctl can
 * validate a spec without loading the Temporal workflow library).
 */
import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { VirtualServerSpecInput, VirtualServerView } from './virtualServer';

/** Validated by the workflow's update validator: an invalid spec is rejected whole. */
export const applyVirtualServerUpdate = defineUpdate<VirtualServerView, [VirtualServerSpecInput]>('applyVirtualServer');
/** Ends the virtual server's workflow; returns its name. */
export const deleteVirtualServerUpdate = defineUpdate<string>('deleteVirtualServer');
export const virtualServerQuery = defineQuery<VirtualServerView>('virtualServer');
