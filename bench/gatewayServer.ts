/**
 * mcpd with only the gateway role, as its own process for the benchmark (as in
 * production, the client and the gateway do not share an event loop). It is
 * assembled by createMcpd, so calls take the production path: node:http, the
 * bearer-token check, GatewayHttp, the gateway. Started with the upstream target
 * as JSON in argv; tells its parent { ready: port, token } over IPC; exits on
 * disconnect. Needs the stack `npm run bench` starts (Temporal, OpenBao).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadSettings } from '../src/config/settings';
import type { UpstreamTarget } from '../src/contracts/routing';
import { createLogger } from '../src/logger';
import { createMcpd } from '../src/mcpd';

async function main(): Promise<void> {
  const target = JSON.parse(process.argv[2]) as UpstreamTarget;
  const port = Number(process.argv[3]);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcpd-bench-gateway-'));
  const settings = loadSettings({ ...process.env, MCPD_ROLES: 'gateway', MCPD_DATA_DIR: dataDir, MCPD_HOST: '127.0.0.1', MCPD_PORT: String(port) });
  const mcpd = await createMcpd(settings, { logger: createLogger(process.env.MCPD_LOG_LEVEL ?? 'warn') });
  await mcpd.gateway!.attach(target);
  process.send?.({ ready: port, token: mcpd.token });
  process.on('disconnect', () => {
    void mcpd.close().finally(() => {
      fs.rmSync(dataDir, { recursive: true, force: true });
      process.exit(0);
    });
  });
}

main().catch((error) => {
  process.send?.({ error: (error as Error).message });
  process.exit(1);
});
