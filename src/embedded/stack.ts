/**
 * The embedded infrastructure behind `npm start` and `npm test`: a Temporal dev server
 * and OpenBao, each started only when the environment does not already name one
 * (TEMPORAL_ADDRESS; BAO_ADDR with BAO_TOKEN). stop() ends what this started, in
 * reverse order, and nothing else.
 */
import path from 'node:path';
import { startDevOpenBao, startPersistentOpenBao, type OpenBaoServer } from './openbao';
import { isPortOpen } from './process';
import { startTemporalDevServer, temporalDbFile, type TemporalDevServer } from './temporal';
import type { Toolchain } from './toolchain';

export interface StackProfile {
  /** Logs go to <dataDir>/logs; persistent state to <dataDir>/temporal and <dataDir>/openbao. */
  dataDir: string;
  temporal: { port: number; uiPort: number | null; persistent: boolean };
  openbao: { port: number; persistent: boolean };
  /** Honour TEMPORAL_ADDRESS / BAO_ADDR+BAO_TOKEN from this environment (npm start); tests pass {}. */
  env: NodeJS.ProcessEnv;
}

export interface Stack {
  temporalAddress: string;
  temporalUiUrl: string | null;
  baoAddress: string;
  /** Never printed; handed to mcpd and tests through the environment. */
  baoToken: string;
  /** Human-readable lines: what was started, what was reused. */
  summary: string[];
  stop(): Promise<void>;
}

interface Stoppable {
  name: string;
  stop(): Promise<void>;
}

export async function startStack(profile: StackProfile, tools: Toolchain, log: (msg: string) => void = () => undefined): Promise<Stack> {
  const started: Stoppable[] = [];
  const summary: string[] = [];
  const stop = async () => {
    for (const part of started.reverse()) {
      log(`stopping ${part.name}`);
      await part.stop();
    }
    started.length = 0;
  };
  try {
    let temporalAddress: string;
    let temporalUiUrl: string | null = null;
    const existingTemporal = profile.env.TEMPORAL_ADDRESS;
    if (existingTemporal) {
      temporalAddress = existingTemporal;
      summary.push(`Temporal: using TEMPORAL_ADDRESS=${existingTemporal} (not starting a dev server)`);
    } else {
      log(`starting the Temporal dev server on 127.0.0.1:${profile.temporal.port}`);
      const temporal: TemporalDevServer = await startTemporalDevServer({
        temporalBin: tools.temporal,
        port: profile.temporal.port,
        uiPort: profile.temporal.uiPort,
        dbFile: profile.temporal.persistent ? temporalDbFile(profile.dataDir) : null,
        logFile: path.join(profile.dataDir, 'logs', 'temporal.log'),
      });
      started.push({ name: 'the Temporal dev server', stop: temporal.stop });
      temporalAddress = temporal.address;
      temporalUiUrl = temporal.uiUrl;
      summary.push(
        `Temporal dev server (pid ${temporal.process.pid}): ${temporal.address}` +
          (profile.temporal.persistent ? `, SQLite ${temporalDbFile(profile.dataDir)}` : ', in memory'),
      );
    }

    let baoAddress: string;
    let baoToken: string;
    const existingBao = profile.env.BAO_ADDR ?? profile.env.VAULT_ADDR;
    if (existingBao) {
      const token = profile.env.BAO_TOKEN ?? profile.env.VAULT_TOKEN;
      if (!token) throw new Error(`BAO_ADDR=${existingBao} is set but BAO_TOKEN is not; set both to use an existing OpenBao`);
      const url = new URL(existingBao);
      if (!(await isPortOpen(url.hostname, Number(url.port || (url.protocol === 'https:' ? 443 : 80))))) {
        throw new Error(`OpenBao at BAO_ADDR=${existingBao} does not answer`);
      }
      baoAddress = existingBao;
      baoToken = token;
      summary.push(`OpenBao: using BAO_ADDR=${existingBao} (not starting one)`);
    } else {
      log(`starting OpenBao on 127.0.0.1:${profile.openbao.port}`);
      const logFile = path.join(profile.dataDir, 'logs', 'openbao.log');
      const bao: OpenBaoServer = profile.openbao.persistent
        ? await startPersistentOpenBao({ baoBin: tools.bao, port: profile.openbao.port, dir: path.join(profile.dataDir, 'openbao'), logFile })
        : await startDevOpenBao({ baoBin: tools.bao, port: profile.openbao.port, logFile });
      started.push({ name: 'OpenBao', stop: bao.stop });
      baoAddress = bao.address;
      baoToken = bao.token;
      summary.push(
        `OpenBao (pid ${bao.process.pid}): ${bao.address}` +
          (profile.openbao.persistent ? `, data ${path.join(profile.dataDir, 'openbao')} (root token in root-token there)` : ', dev mode in memory'),
      );
    }
    return { temporalAddress, temporalUiUrl, baoAddress, baoToken, summary, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
