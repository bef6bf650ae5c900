/**
 * What `npm run cluster` and `npm run test:cluster` need before the cluster starts: the
 * compiled project, the pinned toolchain (temporal CLI, bao), the machine's Docker engine
 * with mcpd's images built, and those images' ids, which each cluster engine must hold.
 * PostgreSQL (apt) and the Temporal server binaries (a Go build of several minutes, cached
 * per machine) are ensured here too, before any test starts, so a fresh CI machine builds
 * them once outside every mocha timeout.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { createRequire } from 'node:module';
import { ROOT, buildProject, prepareInfrastructure, say } from '../lib/bootstrap.mjs';
import { IMAGES } from '../images.mjs';

const require = createRequire(import.meta.url);

/** Images that exist on the machine's engine, by name → id (the Python base is absent on hosts without Python). */
function imageIds() {
  const ids = {};
  for (const image of Object.values(IMAGES)) {
    const result = spawnSync('docker', ['image', 'inspect', '--format', '{{.Id}}', image], { encoding: 'utf8' });
    if (result.status === 0) ids[image] = result.stdout.trim();
  }
  return ids;
}

export async function prepareCluster(prefix, { strict = false } = {}) {
  buildProject(prefix, { strict });
  const { tools } = await prepareInfrastructure(prefix, path.join(ROOT, '.data'));
  const log = (msg) => say(prefix, msg);
  require(path.join(ROOT, 'dist/src/cluster/postgres.js')).ensurePostgresBinaries(log);
  const temporalBuild = require(path.join(ROOT, 'dist/src/cluster/temporalBuild.js'));
  temporalBuild.ensureTemporalBinaries(log);
  temporalBuild.ensureTemporalUiServer(log);
  return {
    tools,
    images: imageIds(),
    cluster: require(path.join(ROOT, 'dist/src/cluster/cluster.js')),
    log,
  };
}

export { ROOT };
