/**
 * Debian's `prometheus` package for the tests of /metrics: `promtool` (check metrics,
 * check and test rules) and the `prometheus` server a test runs against a real mcpd.
 * Installed with apt-get when missing and we are root on Debian, like docker.io. The
 * package enables a system service; it is never started: apt-get runs under a
 * policy-rc.d that refuses service starts, and nothing is left listening on 9090.
 */
import fs from 'node:fs';
import path from 'node:path';
import { isPortOpen } from './process';
import { aptInstall, isRootOnDebian, onPath, withLock } from './toolchain';

export interface PrometheusTools {
  promtool: string;
  prometheus: string;
  /** True when this call installed the package. */
  installed: boolean;
}

/** Where invoke-rc.d asks whether a package's maintainer scripts may start services (exit 101: no). */
const POLICY_RC_D = '/usr/sbin/policy-rc.d';

/** Prometheus's default listen port, which the package's service would take. */
const SERVICE_PORT = 9090;

/**
 * The paths of promtool and prometheus, installing Debian's package when either is
 * missing. Throws one line naming what is missing when it cannot install.
 */
export async function ensurePrometheusTools(options: { root: string; log?: (msg: string) => void }): Promise<PrometheusTools> {
  const found = () => {
    const promtool = onPath('promtool');
    const prometheus = onPath('prometheus');
    return promtool && prometheus ? { promtool, prometheus } : null;
  };
  const present = found();
  if (present) return { ...present, installed: false };
  if (!isRootOnDebian()) {
    throw new Error("missing: promtool and prometheus (Debian's `prometheus` package); install it, or run as root on Debian to let the tests install it");
  }
  return withLock(path.join(options.root, '.tools', 'apt-prometheus.lock'), async () => {
    const again = found();
    if (again) return { ...again, installed: false };
    const serviceWasListening = await isPortOpen('127.0.0.1', SERVICE_PORT);
    options.log?.('installing prometheus (promtool) with apt-get; its system service stays stopped');
    withServiceStartsDenied(() => aptInstall(['prometheus']));
    const installed = found();
    if (!installed) throw new Error('apt-get installed prometheus but promtool or prometheus is not on PATH');
    if (!serviceWasListening && (await isPortOpen('127.0.0.1', SERVICE_PORT))) {
      throw new Error(`something listens on 127.0.0.1:${SERVICE_PORT} since prometheus was installed: its system service started; stop it`);
    }
    return { ...installed, installed: true };
  });
}

/** Runs `fn` with a policy-rc.d that denies every service start, unless the machine has one of its own (left as it is). */
function withServiceStartsDenied(fn: () => void): void {
  if (fs.existsSync(POLICY_RC_D)) return fn();
  fs.writeFileSync(POLICY_RC_D, '#!/bin/sh\n# written by mcpd npm test while it installs packages: no service starts\nexit 101\n', { mode: 0o755 });
  try {
    fn();
  } finally {
    fs.rmSync(POLICY_RC_D, { force: true });
  }
}
