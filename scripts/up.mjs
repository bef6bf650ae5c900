#!/usr/bin/env node
/**
 * `npm start`: the embedded default on one machine. Installs and compiles what is
 * missing, gets the pinned toolchain, a Docker engine and the local images, starts the
 * Temporal dev server (SQLite + Web UI) and OpenBao (persistent) unless the environment
 * names existing ones, then runs mcpd (`node dist/src/main.js`). Ctrl-C stops what it
 * started, in reverse order.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, buildProject, embedded, prepareInfrastructure, say } from './lib/bootstrap.mjs';

const P = 'mcpd';
const log = (msg) => say(P, msg);

async function waitForReady(url, child, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) return false;
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (response.status === 200) return true;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(`mcpd did not answer ${url} with 200 within ${timeoutMs / 1000}s`);
}

async function main() {
  const startedAt = Date.now();
  // Until the stack exists, a Ctrl-C only takes note; the stack is stopped as soon as
  // startStack returns, so no detached server outlives an early interrupt.
  let interrupted = false;
  let startingStack = false;
  let stopAll = null;
  const onSignal = () => {
    if (stopAll) stopAll(0);
    else if (startingStack) interrupted = true;
    else process.exit(130); // nothing started yet
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const dataDir = path.resolve(process.env.MCPD_DATA_DIR ?? path.join(ROOT, '.data'));
  fs.mkdirSync(dataDir, { recursive: true });
  buildProject(P);
  const { tools, docker } = await prepareInfrastructure(P, dataDir);

  const { stack: stackModule } = embedded();
  startingStack = true;
  const stack = await stackModule.startStack(
    {
      dataDir,
      temporal: { port: 7233, uiPort: 8233, persistent: true },
      openbao: { port: 8200, persistent: true },
      env: process.env,
    },
    tools,
    log,
  );

  let stopping = false;
  let mcpd = null;
  stopAll = async (code) => {
    if (stopping) return;
    stopping = true;
    log('stopping what npm start started…');
    if (mcpd && mcpd.exitCode === null && mcpd.signalCode === null) {
      log('stopping mcpd');
      const exited = new Promise((r) => mcpd.once('exit', r));
      try {
        process.kill(-mcpd.pid, 'SIGTERM');
      } catch {}
      const timer = setTimeout(() => {
        try {
          process.kill(-mcpd.pid, 'SIGKILL');
        } catch {}
      }, 15_000);
      await exited;
      clearTimeout(timer);
    }
    await stack.stop();
    log('stopped.');
    process.exit(code);
  };
  if (interrupted) return stopAll(130);

  const host = process.env.MCPD_HOST ?? '127.0.0.1';
  const port = process.env.MCPD_PORT ?? '7400';
  const mainJs = path.join(ROOT, 'dist', 'src', 'main.js');
  const env = {
    ...process.env,
    TEMPORAL_ADDRESS: stack.temporalAddress,
    BAO_ADDR: stack.baoAddress,
    BAO_TOKEN: stack.baoToken,
    MCPD_DATA_DIR: dataDir,
    MCPD_HOST: host,
    MCPD_PORT: port,
  };
  const api = `http://${host}:${port}`;
  if (fs.existsSync(mainJs)) {
    log('starting mcpd (worker, API, gateway)');
    // Own process group: Ctrl-C reaches this launcher only, which stops mcpd first.
    mcpd = spawn(process.execPath, [mainJs], { cwd: ROOT, env, stdio: 'inherit', detached: true });
    mcpd.once('exit', (code, signal) => {
      if (!stopping) {
        log(`mcpd exited (${code ?? signal}); stopping the rest`);
        stopAll(typeof code === 'number' && code !== 0 ? code : 1);
      }
    });
    let ready;
    try {
      ready = await waitForReady(`${api}/readyz`, mcpd, 120_000);
    } catch (err) {
      log(err.message);
      await stopAll(1);
    }
    if (!ready) return; // the exit handler is stopping everything
  } else {
    log(`dist/src/main.js does not exist yet (src/main.ts is not written); running the infrastructure only`);
  }

  const lines = [
    '',
    `mcpd is up (${((Date.now() - startedAt) / 1000).toFixed(1)}s):`,
    ...(mcpd ? [`  API              ${api}/api/v1`, `  MCP gateway      ${api}/mcp`, `  readiness        ${api}/readyz`, `  API token        ${path.join(dataDir, 'api-token')} (send Authorization: Bearer <token>)`] : []),
    `  Temporal         ${stack.temporalAddress}`,
    ...(stack.temporalUiUrl ? [`  Temporal Web UI  ${stack.temporalUiUrl}`] : []),
    `  OpenBao          ${stack.baoAddress}`,
    `  data dir         ${dataDir} (logs in ${path.join(dataDir, 'logs')})`,
    ...stack.summary.map((s) => `  - ${s}`),
    '',
    `Press Ctrl-C to stop everything npm start started (the Docker engine${docker.started ? ', which npm start started,' : ''} and the MCP server containers stay up).`,
    '',
  ];
  console.log(lines.join('\n'));
}

main().catch((err) => {
  console.error(`[${P}] ${err instanceof Error ? err.message : err}`);
  process.exit(1);
});
