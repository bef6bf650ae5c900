/**
 * The OpenAPI 3.1 document of the REST API, served at GET /api/v1/openapi.json.
 * The McpServer schema comes from the same zod schema the API validates with,
 * so the two cannot drift.
 */
import { z } from 'zod';
import { mcpServerSpecSchema } from '../contracts/spec';
import { HEALTH_STATUSES, INSTANCE_STATUSES } from './visibility';

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: object) => ({ 'application/json': { schema } });
const ok = (description: string, schema: object) => ({ description, content: json(schema) });
const err = (description: string) => ({ description, content: json(ref('Error')) });

const nameParam = { name: 'name', in: 'path', required: true, schema: { type: 'string' } };
const idParam = {
  name: 'id',
  in: 'path',
  required: true,
  description: 'Instance id, `mcp-instance:<server>:<ordinal>` (URL-encoded) or the short form `<server>:<ordinal>`.',
  schema: { type: 'string' },
};

const common = { '401': err('Missing bearer token'), '403': err('Wrong bearer token'), '503': err('Temporal unavailable') };

export function buildOpenApiDocument(): Record<string, unknown> {
  const serverView = {
    type: 'object',
    required: ['name', 'spec', 'running', 'instances', 'specVersion', 'readyReplicas'],
    properties: {
      name: { type: 'string' },
      spec: ref('McpServerSpec'),
      running: { type: 'boolean' },
      instances: { type: 'array', items: { type: 'string' }, description: 'Instance workflow ids the server wants.' },
      specVersion: { type: 'integer' },
      rollout: { type: ['object', 'null'], properties: { inProgress: { type: 'boolean' }, updated: { type: 'integer' }, total: { type: 'integer' } } },
      createdAt: { type: ['string', 'null'], format: 'date-time' },
      readyReplicas: { type: 'integer', description: 'Instances RUNNING and healthy.' },
    },
  };
  const event = { type: 'object', required: ['at', 'type', 'message'], properties: { at: { type: 'string', format: 'date-time' }, type: { type: 'string' }, message: { type: 'string' } } };
  const nullableTime = { type: ['string', 'null'], format: 'date-time' };
  const instanceView = {
    type: 'object',
    required: ['id', 'server', 'ordinal', 'status', 'health', 'attemptCount', 'events'],
    properties: {
      id: { type: 'string' },
      server: { type: 'string' },
      ordinal: { type: 'integer' },
      status: { type: 'string', enum: INSTANCE_STATUSES },
      health: { type: 'string', enum: HEALTH_STATUSES },
      containerId: { type: ['string', 'null'] },
      attemptCount: { type: 'integer' },
      lastAttemptAt: nullableTime,
      nextRetryAt: nullableTime,
      error: { type: ['string', 'null'] },
      healthReason: { type: ['string', 'null'] },
      runningSince: nullableTime,
      events: { type: 'array', items: ref('InstanceEvent'), maxItems: 50 },
    },
  };
  const secretSummary = {
    type: 'object',
    description: 'Names and keys only: values are never returned.',
    required: ['name', 'keys', 'version'],
    properties: { name: { type: 'string' }, keys: { type: 'array', items: { type: 'string' } }, version: { type: 'integer' }, updatedAt: nullableTime },
  };
  const instanceIds = { type: 'object', properties: { name: { type: 'string' }, instances: { type: 'array', items: { type: 'string' } } } };
  const signalled = { type: 'object', properties: { id: { type: 'string' }, signal: { type: 'string' } } };

  return {
    openapi: '3.1.0',
    info: {
      title: 'mcpd API',
      version: '1',
      description:
        'Runs MCP servers as Docker containers. Every /api/v1 route except this document needs "Authorization: Bearer <token>" ' +
        '(the token is in <data dir>/api-token). Errors are JSON {"error", "details"}.',
    },
    servers: [{ url: '/' }],
    security: [{ bearer: [] }],
    paths: {
      '/healthz': { get: { summary: 'Liveness of the mcpd process', security: [], responses: { '200': ok('Alive', { type: 'object' }) } } },
      '/readyz': {
        get: { summary: 'Readiness (worker and gateway up)', security: [], responses: { '200': ok('Ready', { type: 'object' }), '503': err('Not ready') } },
      },
      '/api/v1/openapi.json': { get: { summary: 'This document', security: [], responses: { '200': ok('OpenAPI document', { type: 'object' }) } } },
      '/api/v1/servers': {
        get: { summary: 'List servers', responses: { '200': ok('Servers', { type: 'object', properties: { items: { type: 'array', items: ref('Server') } } }), ...common } },
      },
      '/api/v1/servers/{name}': {
        parameters: [nameParam],
        get: { summary: 'Get a server', responses: { '200': ok('The server', ref('Server')), '404': err('No such server'), ...common } },
        put: {
          summary: 'Apply a spec (create or update); spec.name must equal the URL name',
          requestBody: { required: true, content: json(ref('McpServerSpec')) },
          responses: {
            '200': ok('Updated (outcome "configured" or "unchanged")', ref('AppliedServer')),
            '201': ok('Created', ref('AppliedServer')),
            '400': err('Invalid spec; details lists every bad field'),
            '409': err('The server workflow rejected the spec'),
            ...common,
          },
        },
        delete: { summary: 'Stop every instance, remove containers, forget the server', responses: { '200': ok('Deleted', instanceIds), '404': err('No such server'), ...common } },
      },
      '/api/v1/servers/{name}/start': {
        parameters: [nameParam],
        post: { summary: 'Start the instances for the spec replicas', responses: { '200': ok('Instance ids', instanceIds), '404': err('No such server'), ...common } },
      },
      '/api/v1/servers/{name}/stop': {
        parameters: [nameParam],
        post: { summary: 'Stop every instance (the spec is kept)', responses: { '200': ok('Instance ids', instanceIds), '404': err('No such server'), ...common } },
      },
      '/api/v1/servers/{name}/scale': {
        parameters: [nameParam],
        post: {
          summary: 'Set the number of replicas',
          requestBody: { required: true, content: json({ type: 'object', required: ['replicas'], properties: { replicas: { type: 'integer', minimum: 0, maximum: 100 } } }) },
          responses: { '200': ok('The server', ref('Server')), '400': err('Invalid replicas'), '404': err('No such server'), ...common },
        },
      },
      '/api/v1/instances': {
        get: {
          summary: 'List instances',
          parameters: [
            { name: 'server', in: 'query', schema: { type: 'string' } },
            { name: 'status', in: 'query', schema: { type: 'string', enum: INSTANCE_STATUSES } },
            { name: 'health', in: 'query', schema: { type: 'string', enum: HEALTH_STATUSES } },
            { name: 'all', in: 'query', description: 'Include ended instances', schema: { type: 'boolean' } },
          ],
          responses: { '200': ok('Instances', { type: 'object', properties: { items: { type: 'array', items: ref('Instance') } } }), '400': err('Invalid filter'), ...common },
        },
      },
      '/api/v1/instances/{id}': {
        parameters: [idParam],
        get: { summary: 'Describe an instance (ended ones too)', responses: { '200': ok('The instance', ref('Instance')), '400': err('Not an instance id'), '404': err('No such instance'), ...common } },
      },
      '/api/v1/instances/{id}/events': {
        parameters: [idParam],
        get: {
          summary: 'The instance’s last 50 events',
          responses: { '200': ok('Events', { type: 'object', properties: { id: { type: 'string' }, items: { type: 'array', items: ref('InstanceEvent') } } }), '404': err('No such instance'), ...common },
        },
      },
      '/api/v1/instances/{id}/logs': {
        parameters: [idParam],
        get: {
          summary: 'The container’s stderr (stdout carries the MCP protocol)',
          parameters: [
            { name: 'tail', in: 'query', schema: { oneOf: [{ type: 'integer', minimum: 0 }, { const: 'all' }], default: 200 } },
            { name: 'follow', in: 'query', description: 'Stream until the client disconnects', schema: { type: 'boolean' } },
            { name: 'timestamps', in: 'query', schema: { type: 'boolean' } },
          ],
          responses: { '200': { description: 'Log text', content: { 'text/plain': { schema: { type: 'string' } } } }, '404': err('No such instance or container'), ...common },
        },
      },
      '/api/v1/instances/{id}/retry': {
        parameters: [idParam],
        post: { summary: 'Cut a retry wait short (the forceRetry signal)', responses: { '202': ok('Signalled', signalled), '404': err('No such instance'), '409': err('The instance has ended'), ...common } },
      },
      '/api/v1/instances/{id}/restart': {
        parameters: [idParam],
        post: { summary: 'Replace the container with a fresh one', responses: { '202': ok('Signalled', signalled), '404': err('No such instance'), '409': err('The instance has ended'), ...common } },
      },
      '/api/v1/secrets': {
        get: { summary: 'List secrets (names and keys, never values)', responses: { '200': ok('Secrets', { type: 'object', properties: { items: { type: 'array', items: ref('SecretSummary') } } }), ...common } },
      },
      '/api/v1/secrets/{name}': {
        parameters: [nameParam],
        get: { summary: 'Describe a secret (keys, never values)', responses: { '200': ok('The secret', ref('SecretSummary')), '404': err('No such secret'), ...common } },
        put: {
          summary: 'Write a secret (a new version with exactly these keys)',
          requestBody: {
            required: true,
            content: json({ type: 'object', required: ['data'], additionalProperties: false, properties: { data: { type: 'object', minProperties: 1, additionalProperties: { type: 'string' } } } }),
          },
          responses: { '200': ok('Written', ref('SecretSummary')), '400': err('Invalid name or data'), ...common },
        },
        delete: { summary: 'Delete every version of a secret', responses: { '200': ok('Deleted', { type: 'object' }), '404': err('No such secret'), ...common } },
      },
      '/api/v1/gateway': {
        get: { summary: 'What the gateway in this process routes to', responses: { '200': ok('Gateway state', { type: 'object' }), '404': err('No gateway in this process'), ...common } },
      },
    },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: {
        Error: {
          type: 'object',
          required: ['error'],
          properties: {
            error: { type: 'string' },
            details: { description: 'For validation errors: [{field, message}] naming every bad field.' },
          },
        },
        McpServerSpec: z.toJSONSchema(mcpServerSpecSchema, { io: 'input', unrepresentable: 'any' }),
        Server: serverView,
        AppliedServer: { allOf: [ref('Server'), { type: 'object', properties: { outcome: { type: 'string', enum: ['created', 'configured', 'unchanged'] } } }] },
        Instance: instanceView,
        InstanceEvent: event,
        SecretSummary: secretSummary,
      },
    },
  };
}
