/**
 * The node's package image builder on a cold cache, with the real npm registry and
 * Docker engine: two starts of one package build it once, the activity heartbeats
 * its progress, the next start reuses the image, and a failed install leaves no
 * build directory and no image behind.
 *
 * A cold cache without touching the engine's shared images: the builder is given a
 * base image of this test's own (FROM mcpd/node-base:20 plus a label), so the build
 * key is new; everything built from it is removed at the end.
 */
import { DockerRuntime } from '../../src/docker/runtime';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { createPackageActivities, type PackageBuildProgress, type PreparePackageImageInput, type PreparePackageImageResult } from '../../activities/packages';
import { PACKAGE_IMAGE_LABELS } from '../../src/contracts/labels';

const docker = new Docker();
const PACKAGE = '@modelcontextprotocol/server-memory';
const REPOSITORY = 'mcpd/pkg-npm-modelcontextprotocol-server-memory';

describe('package image builder (npm, cold cache)', function () {
  this.timeout(300_000);

  const suffix = randomBytes(4).toString('hex');
  const baseImage = `mcpd/t-pkg-base:${suffix}`;
  let workDir: string;
  let activities: ReturnType<typeof createPackageActivities>;
  let builtImage: string | null = null;

  const scratchTags = async () => (await docker.listImages({ filters: { reference: [`${REPOSITORY}:build-*`] } })).flatMap((i) => i.RepoTags ?? []);

  before(() => {
    const built = spawnSync('docker', ['build', '--quiet', '--tag', baseImage, '-'], {
      input: `FROM mcpd/node-base:20\nLABEL io.mcpd.test=${suffix}\n`,
      encoding: 'utf8',
      env: { ...process.env, DOCKER_BUILDKIT: '0' },
    });
    assert.equal(built.status, 0, built.stderr);
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), 't-pkg-builder-'));
    activities = createPackageActivities({ runtime: new DockerRuntime(), builder: { nodeBaseImage: baseImage, workDir } });
  });

  after(async () => {
    if (builtImage)
      await docker
        .getImage(builtImage)
        .remove()
        .catch(() => undefined);
    await docker
      .getImage(baseImage)
      .remove()
      .catch(() => undefined);
    if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
  });

  /** Runs preparePackageImage as Temporal runs an activity, collecting its heartbeat details. */
  const prepare = async (packageName: string, beats: PackageBuildProgress[] = []): Promise<PreparePackageImageResult> => {
    // The expected failure below is asserted, not logged.
    const env = new MockActivityEnvironment(undefined, { logger: new DefaultLogger('ERROR') });
    env.on('heartbeat', (details: PackageBuildProgress) => beats.push(details));
    return env.run((input: PreparePackageImageInput) => activities.preparePackageImage(input), { packageName });
  };

  it('two starts of one package build it once, heartbeating "building image for … N s", into one labelled image', async () => {
    const beatsA: PackageBuildProgress[] = [];
    const beatsB: PackageBuildProgress[] = [];
    const [a, b] = await Promise.all([prepare(PACKAGE, beatsA), prepare(PACKAGE, beatsB)]);
    builtImage = a.image;
    assert.equal(a.image, b.image);
    assert.deepEqual([a.how, b.how].sort(), ['built', 'joined'], 'one built it, the other waited for that build');
    assert.ok(a.image.startsWith(`${REPOSITORY}:${a.version}-`), a.image);
    assert.match(a.version, /^\d+\.\d+\.\d+$/);
    assert.deepEqual(a.entrypoint, ['node', '/app/node_modules/@modelcontextprotocol/server-memory/dist/index.js']);

    const all = [...beatsA, ...beatsB];
    const phases = new Set(all.map((d) => d.phase));
    for (const phase of ['resolving the version', 'installing', 'docker build', 'waiting for the same build'])
      assert.ok(phases.has(phase as never), `heartbeat phase "${phase}" in ${[...phases].join(', ')}`);
    assert.ok(
      all.some((d) =>
        new RegExp(`^building image for npm:@modelcontextprotocol/server-memory@${a.version.replace(/\./g, '\\.')} \\d+ s: installing$`).test(d.message),
      ),
      all.map((d) => d.message).join('\n'),
    );

    const labels = (await docker.getImage(a.image).inspect()).Config.Labels;
    assert.equal(labels[PACKAGE_IMAGE_LABELS.package], 'npm:@modelcontextprotocol/server-memory');
    assert.equal(labels[PACKAGE_IMAGE_LABELS.version], a.version);
    assert.equal(labels[PACKAGE_IMAGE_LABELS.lockHash], a.lockHash);
    assert.deepEqual(await scratchTags(), [], 'no build-* scratch tag left');
    assert.deepEqual(fs.readdirSync(workDir), [], 'the build directory is gone');
    const sameKey = await docker.listImages({ filters: { label: [`${PACKAGE_IMAGE_LABELS.buildKey}=${labels[PACKAGE_IMAGE_LABELS.buildKey]}`] } });
    assert.equal(sameKey.length, 1, 'one image for the build key');
  });

  it('the next start reuses the image while package, version and base are unchanged', async () => {
    assert.ok(builtImage, 'the previous test built it');
    const version = builtImage.slice(builtImage.lastIndexOf(':') + 1).replace(/-[0-9a-f]{12}$/, '');
    const started = Date.now();
    // An exact version needs no registry round trip: a lookup of the local image only.
    const again = await prepare(`${PACKAGE}@${version}`);
    assert.equal(again.how, 'cached');
    assert.equal(again.image, builtImage);
    assert.ok(Date.now() - started < 5_000, `a cached start takes ${Date.now() - started} ms`);
  });

  it("a version that does not exist fails with npm's reason and leaves no directory and no image", async () => {
    const before = (await docker.listImages({ filters: { reference: [`${REPOSITORY}:*`] } })).length;
    await assert.rejects(prepare(`${PACKAGE}@0.0.0-nope`), (err: Error & { nonRetryable?: boolean; type?: string }) => {
      assert.equal(err.type, 'PackageImageFailed');
      assert.equal(err.nonRetryable, true, "a missing version is the spec's problem: the instance backoff retries, not the activity");
      assert.equal(
        err.message,
        'npm:@modelcontextprotocol/server-memory@0.0.0-nope cannot be installed: npm: No matching version found for @modelcontextprotocol/server-memory@0.0.0-nope.',
      );
      return true;
    });
    assert.deepEqual(fs.readdirSync(workDir), [], 'the build directory is gone');
    assert.equal((await docker.listImages({ filters: { reference: [`${REPOSITORY}:*`] } })).length, before, 'no image added');
    assert.deepEqual(await scratchTags(), []);
  });
});
