/**
 * How tests (and the start benchmark) talk to a running mcpd the way users do:
 * its REST API with the bearer token, and the mcpctl binary.
 */
import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
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

export interface McpctlRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs mcpctl as a user on the mcpd host does: the token comes from the data dir. */
export function runMcpctl(mcpd: Pick<McpdProcess, 'url' | 'dataDir'>, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv }): Promise<McpctlRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MCPCTL, ...args], {
      cwd: options.cwd,
      env: { PATH: process.env.PATH, HOME: os.homedir(), MCPD_URL: mcpd.url, MCPD_DATA_DIR: mcpd.dataDir, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}
