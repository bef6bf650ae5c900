/**
 * mcpd's fixture for the MCP conformance suite's server scenarios
 * (@modelcontextprotocol/conformance, pinned in tests/conformance/package.json): one
 * STDIO MCP server with every tool, resource, prompt and utility the scenarios ask
 * for, written from the requirements each scenario states (`conformance list
 * --server`, and each scenario's description). The suite publishes no server in its
 * npm package, so this is built into the image mcpd/conformance-everything:dev by
 * scripts/images.mjs. It runs behind mcpd, so what the suite measures is the gateway:
 * /mcp/servers/<name> and a one-server virtual server with naming "none".
 *
 * The low-level Server is used so that tool input schemas go out exactly as written
 * (the json-schema-2020-12 scenario checks that $schema and $defs survive).
 */
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import {
  CallToolRequestSchema,
  CompleteRequestSchema,
  ElicitResultSchema,
  CreateMessageResultSchema,
  ErrorCode,
  GetPromptRequestSchema,
  ListPromptsRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListResourcesRequestSchema,
  ListToolsRequestSchema,
  McpError,
  ReadResourceRequestSchema,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
  type CallToolResult,
  type LoggingLevel,
} from '@modelcontextprotocol/sdk/types.js';
import { setTimeout as sleep } from 'node:timers/promises';

/** A 1x1 PNG (one red pixel). */
const PNG_BASE64 = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==';

/** A WAV file of 8 silent 8-bit samples at 8 kHz, built rather than stored. */
function silentWavBase64(): string {
  const samples = 8;
  const buffer = Buffer.alloc(44 + samples);
  buffer.write('RIFF', 0);
  buffer.writeUInt32LE(36 + samples, 4);
  buffer.write('WAVE', 8);
  buffer.write('fmt ', 12);
  buffer.writeUInt32LE(16, 16); // fmt chunk size
  buffer.writeUInt16LE(1, 20); // PCM
  buffer.writeUInt16LE(1, 22); // mono
  buffer.writeUInt32LE(8000, 24); // sample rate
  buffer.writeUInt32LE(8000, 28); // byte rate
  buffer.writeUInt16LE(1, 32); // block align
  buffer.writeUInt16LE(8, 34); // bits per sample
  buffer.write('data', 36);
  buffer.writeUInt32LE(samples, 40);
  buffer.fill(128, 44); // 8-bit silence
  return buffer.toString('base64');
}

const noArguments = { type: 'object', properties: {} } as const;

const TOOLS = [
  { name: 'test_simple_text', description: 'Returns one text content item', inputSchema: noArguments },
  { name: 'test_image_content', description: 'Returns one PNG image', inputSchema: noArguments },
  { name: 'test_audio_content', description: 'Returns one WAV audio clip', inputSchema: noArguments },
  { name: 'test_embedded_resource', description: 'Returns an embedded text resource', inputSchema: noArguments },
  { name: 'test_multiple_content_types', description: 'Returns text, an image and an embedded resource', inputSchema: noArguments },
  { name: 'test_tool_with_logging', description: 'Sends three info log messages while it runs', inputSchema: noArguments },
  { name: 'test_error_handling', description: 'Always fails with a tool error', inputSchema: noArguments },
  { name: 'test_tool_with_progress', description: 'Reports progress 0, 50 and 100 of 100', inputSchema: noArguments },
  {
    name: 'test_sampling',
    description: 'Asks the client to sample an LLM with the prompt',
    inputSchema: { type: 'object', properties: { prompt: { type: 'string', description: 'The prompt for the LLM' } }, required: ['prompt'] },
  },
  {
    name: 'test_elicitation',
    description: 'Asks the user, through the client, for a username and an email address',
    inputSchema: { type: 'object', properties: { message: { type: 'string', description: 'What to ask the user' } }, required: ['message'] },
  },
  { name: 'test_elicitation_sep1034_defaults', description: 'Elicits fields of every primitive type with defaults', inputSchema: noArguments },
  { name: 'test_elicitation_sep1330_enums', description: 'Elicits the five kinds of enum fields', inputSchema: noArguments },
  { name: 'test_reconnection', description: 'Answers after a short pause (stream resumption is the transport’s job)', inputSchema: noArguments },
  {
    name: 'json_schema_2020_12_tool',
    description: 'Tool with JSON Schema 2020-12 features',
    inputSchema: {
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      type: 'object',
      $defs: { address: { type: 'object', properties: { street: { type: 'string' }, city: { type: 'string' } } } },
      properties: { name: { type: 'string' }, address: { $ref: '#/$defs/address' } },
      additionalProperties: false,
    },
  },
];

const RESOURCES = [
  { uri: 'test://static-text', name: 'static-text', description: 'A static text resource', mimeType: 'text/plain' },
  { uri: 'test://static-binary', name: 'static-binary', description: 'A static PNG resource', mimeType: 'image/png' },
  { uri: 'test://watched-resource', name: 'watched-resource', description: 'A resource clients may subscribe to', mimeType: 'text/plain' },
];

const PROMPTS = [
  { name: 'test_simple_prompt', description: 'A prompt without arguments' },
  {
    name: 'test_prompt_with_arguments',
    description: 'A prompt with two arguments',
    arguments: [
      { name: 'arg1', description: 'First test argument', required: true },
      { name: 'arg2', description: 'Second test argument', required: true },
    ],
  },
  {
    name: 'test_prompt_with_embedded_resource',
    description: 'A prompt that embeds a resource',
    arguments: [{ name: 'resourceUri', description: 'URI of the resource to embed', required: true }],
  },
  { name: 'test_prompt_with_image', description: 'A prompt with an image' },
];

const text = (value: string) => ({ type: 'text' as const, text: value });

export function buildServer(): Server {
  const server = new Server(
    { name: 'mcpd-conformance-everything', version: '1.0.0' },
    {
      capabilities: {
        tools: { listChanged: true },
        resources: { subscribe: true, listChanged: true },
        prompts: { listChanged: true },
        logging: {},
        completions: {},
      },
    },
  );
  const subscriptions = new Set<string>();

  const log = (level: LoggingLevel, data: string) => server.sendLoggingMessage({ level, logger: 'conformance', data });

  server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: TOOLS }));
  server.setRequestHandler(CallToolRequestSchema, async (request, extra): Promise<CallToolResult> => {
    const args = request.params.arguments ?? {};
    switch (request.params.name) {
      case 'test_simple_text':
        return { content: [text('This is a simple text response for testing.')] };
      case 'test_image_content':
        return { content: [{ type: 'image', data: PNG_BASE64, mimeType: 'image/png' }] };
      case 'test_audio_content':
        return { content: [{ type: 'audio', data: silentWavBase64(), mimeType: 'audio/wav' }] };
      case 'test_embedded_resource':
        return {
          content: [{ type: 'resource', resource: { uri: 'test://embedded-resource', mimeType: 'text/plain', text: 'This is an embedded resource content.' } }],
        };
      case 'test_multiple_content_types':
        return {
          content: [
            text('Multiple content types test:'),
            { type: 'image', data: PNG_BASE64, mimeType: 'image/png' },
            {
              type: 'resource',
              resource: { uri: 'test://mixed-content-resource', mimeType: 'application/json', text: JSON.stringify({ test: 'data', value: 123 }) },
            },
          ],
        };
      case 'test_tool_with_logging':
        await log('info', 'Tool execution started');
        await sleep(50);
        await log('info', 'Tool processing data');
        await sleep(50);
        await log('info', 'Tool execution completed');
        return { content: [text('Tool with logging executed successfully')] };
      case 'test_error_handling':
        return { isError: true, content: [text('This tool intentionally returns an error for testing')] };
      case 'test_tool_with_progress': {
        const progressToken = request.params._meta?.progressToken;
        for (const progress of [0, 50, 100]) {
          if (progressToken !== undefined) {
            await extra.sendNotification({ method: 'notifications/progress', params: { progressToken, progress, total: 100, message: `${progress}%` } });
          }
          if (progress < 100) await sleep(50);
        }
        return { content: [text('Tool with progress executed successfully')] };
      }
      case 'test_sampling': {
        if (!server.getClientCapabilities()?.sampling) return { isError: true, content: [text('The client does not support sampling')] };
        const reply = await extra.sendRequest(
          {
            method: 'sampling/createMessage',
            params: { messages: [{ role: 'user', content: text(typeof args.prompt === 'string' ? args.prompt : '') }], maxTokens: 100 },
          },
          CreateMessageResultSchema,
        );
        const content = reply.content as { type: string; text?: string };
        return { content: [text(`LLM response: ${content.type === 'text' ? content.text : JSON.stringify(content)}`)] };
      }
      case 'test_elicitation': {
        if (!server.getClientCapabilities()?.elicitation) return { isError: true, content: [text('The client does not support elicitation')] };
        const reply = await extra.sendRequest(
          {
            method: 'elicitation/create',
            params: {
              message: typeof args.message === 'string' ? args.message : '',
              requestedSchema: {
                type: 'object',
                properties: {
                  username: { type: 'string', description: "User's response" },
                  email: { type: 'string', description: "User's email address" },
                },
                required: ['username', 'email'],
              },
            },
          },
          ElicitResultSchema,
        );
        return { content: [text(`User response: action=${reply.action}, content=${JSON.stringify(reply.content ?? {})}`)] };
      }
      case 'test_elicitation_sep1034_defaults': {
        const reply = await extra.sendRequest(
          {
            method: 'elicitation/create',
            params: {
              message: 'Confirm or change these values',
              requestedSchema: {
                type: 'object',
                properties: {
                  name: { type: 'string', default: 'John Doe' },
                  age: { type: 'integer', default: 30 },
                  score: { type: 'number', default: 95.5 },
                  status: { type: 'string', enum: ['active', 'inactive', 'pending'], default: 'active' },
                  verified: { type: 'boolean', default: true },
                },
              },
            },
          },
          ElicitResultSchema,
        );
        return { content: [text(`Elicitation completed: action=${reply.action}, content=${JSON.stringify(reply.content ?? {})}`)] };
      }
      case 'test_elicitation_sep1330_enums': {
        const reply = await extra.sendRequest(
          {
            method: 'elicitation/create',
            params: {
              message: 'Pick some options',
              requestedSchema: {
                type: 'object',
                properties: {
                  untitledSingle: { type: 'string', enum: ['option1', 'option2', 'option3'] },
                  titledSingle: {
                    type: 'string',
                    oneOf: [
                      { const: 'value1', title: 'First Option' },
                      { const: 'value2', title: 'Second Option' },
                      { const: 'value3', title: 'Third Option' },
                    ],
                  },
                  legacyEnum: { type: 'string', enum: ['opt1', 'opt2', 'opt3'], enumNames: ['Option One', 'Option Two', 'Option Three'] },
                  untitledMulti: { type: 'array', items: { type: 'string', enum: ['option1', 'option2', 'option3'] } },
                  titledMulti: {
                    type: 'array',
                    items: {
                      anyOf: [
                        { const: 'value1', title: 'First Choice' },
                        { const: 'value2', title: 'Second Choice' },
                        { const: 'value3', title: 'Third Choice' },
                      ],
                    },
                  },
                },
              },
            },
          },
          ElicitResultSchema,
        );
        return { content: [text(`Elicitation completed: action=${reply.action}, content=${JSON.stringify(reply.content ?? {})}`)] };
      }
      case 'test_reconnection':
        await sleep(100);
        return { content: [text('Reconnection test completed')] };
      case 'json_schema_2020_12_tool':
        return { content: [text(`Received: ${JSON.stringify(args)}`)] };
      default:
        throw new McpError(ErrorCode.InvalidParams, `Unknown tool: ${request.params.name}`);
    }
  });

  server.setRequestHandler(ListResourcesRequestSchema, () => ({ resources: RESOURCES }));
  server.setRequestHandler(ListResourceTemplatesRequestSchema, () => ({
    resourceTemplates: [{ uriTemplate: 'test://template/{id}/data', name: 'template-data', description: 'Data for an id', mimeType: 'application/json' }],
  }));
  server.setRequestHandler(ReadResourceRequestSchema, ({ params: { uri } }) => {
    if (uri === 'test://static-text') return { contents: [{ uri, mimeType: 'text/plain', text: 'This is the content of the static text resource.' }] };
    if (uri === 'test://static-binary') return { contents: [{ uri, mimeType: 'image/png', blob: PNG_BASE64 }] };
    if (uri === 'test://watched-resource') return { contents: [{ uri, mimeType: 'text/plain', text: 'Watched resource content.' }] };
    const templated = /^test:\/\/template\/([^/]+)\/data$/.exec(uri);
    if (templated) {
      const id = decodeURIComponent(templated[1]);
      return { contents: [{ uri, mimeType: 'application/json', text: JSON.stringify({ id, templateTest: true, data: `Data for ID: ${id}` }) }] };
    }
    throw new McpError(-32002, `Resource not found: ${uri}`, { uri });
  });
  server.setRequestHandler(SubscribeRequestSchema, ({ params: { uri } }) => {
    subscriptions.add(uri);
    return {};
  });
  server.setRequestHandler(UnsubscribeRequestSchema, ({ params: { uri } }) => {
    subscriptions.delete(uri);
    return {};
  });

  server.setRequestHandler(ListPromptsRequestSchema, () => ({ prompts: PROMPTS }));
  server.setRequestHandler(GetPromptRequestSchema, ({ params: { name, arguments: args = {} } }) => {
    switch (name) {
      case 'test_simple_prompt':
        return { messages: [{ role: 'user', content: text('This is a simple prompt for testing.') }] };
      case 'test_prompt_with_arguments':
        return { messages: [{ role: 'user', content: text(`Prompt with arguments: arg1='${args.arg1 ?? ''}', arg2='${args.arg2 ?? ''}'`) }] };
      case 'test_prompt_with_embedded_resource':
        return {
          messages: [
            {
              role: 'user',
              content: { type: 'resource', resource: { uri: args.resourceUri ?? '', mimeType: 'text/plain', text: 'Embedded resource content for testing.' } },
            },
            { role: 'user', content: text('Please process the embedded resource above.') },
          ],
        };
      case 'test_prompt_with_image':
        return {
          messages: [
            { role: 'user', content: { type: 'image', data: PNG_BASE64, mimeType: 'image/png' } },
            { role: 'user', content: text('Please analyze the image above.') },
          ],
        };
      default:
        throw new McpError(ErrorCode.InvalidParams, `Unknown prompt: ${name}`);
    }
  });

  server.setRequestHandler(CompleteRequestSchema, ({ params }) => {
    const candidates = ['paris', 'park', 'party', 'test', 'testing'];
    const values = candidates.filter((v) => v.startsWith(params.argument.value));
    return { completion: { values, total: values.length, hasMore: false } };
  });

  return server;
}

if (require.main === module) {
  buildServer()
    .connect(new StdioServerTransport())
    .catch((err: Error) => {
      process.stderr.write(`conformance-everything: ${err.message}\n`);
      process.exit(1);
    });
}
