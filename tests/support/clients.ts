/**
 * How tests (and the start benchmark) talk to a running mcpd the way users do:
 * its REST API with the bearer token, and the mcpctl binary.
 */
import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { REPO_ROOT, type McpdProcess } from './stack';

export interface ApiResponse {
  status: number;
  text: string;
  json: any;
}

/** One REST call with mcpd's token; never throws on an HTTP error status; `json` is the parsed body of a JSON answer. */
export async function callApi(mcpd: Pick<McpdProcess, 'url' | 'token'>, method: string, urlPath: string, body?: unknown): Promise<ApiResponse> {
  const res = await fetch(`${mcpd.url}${urlPath}`, {
    method,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${mcpd.token}` },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  // Logs answer text/plain; everything else of the API answers JSON.
  const isJson = /json/.test(res.headers.get('content-type') ?? '');
  return { status: res.status, text, json: isJson && text ? JSON.parse(text) : undefined };
}

export const MCPCTL = path.join(REPO_ROOT, 'dist', 'src', 'cli', 'mcpctl.js');

/** What a finished command printed, and its exit code. */
export interface CommandRun {
  code: number;
  stdout: string;
  stderr: string;
}
export type McpctlRun = CommandRun;

/** Runs a command to its end, collecting its output; `stdin` is written to it when given. */
export function runCommand(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; stdin?: string } = {}): Promise<CommandRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(options.stdin ?? '');
  });
}

/** Runs mcpctl as a user on the mcpd host does: the token comes from the data dir. */
export function runMcpctl(mcpd: Pick<McpdProcess, 'url' | 'dataDir'>, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv }): Promise<McpctlRun> {
  return runCommand(process.execPath, [MCPCTL, ...args], {
    cwd: options.cwd,
    env: { PATH: process.env.PATH, HOME: os.homedir(), MCPD_URL: mcpd.url, MCPD_DATA_DIR: mcpd.dataDir, ...options.env },
  });
}

/** An MCP SDK client connected to an endpoint of mcpd (`/mcp`, `/mcp/servers/<name>`, `/mcp/virtual/<name>`) with a bearer token. */
export async function connectMcp(mcpd: Pick<McpdProcess, 'url'>, urlPath: string, token: string, name = 'mcpd-test'): Promise<Client> {
  const client = new Client({ name, version: '1' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${mcpd.url}${urlPath}`), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
  return client;
}
