/**
 * Images from packages: an MCP server published on npm or PyPI, installed on the
 * node's host with the registry's own client, laid into an image FROM the local base
 * (mcpd/node-base:20, mcpd/python-base:3) and labelled with the package, its exact
 * version, the hash of its lock and the build key. An image whose build key (recipe,
 * package, exact version, base image) matches is reused; two starts of one package on
 * this node build it once; a failed build leaves no directory and no tag behind.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { ContainerRuntime } from './runtime';
import { PACKAGE_IMAGE_LABELS } from '../contracts/labels';
import { formatPackageRef, parsePackageRef, type PackageRef } from '../contracts/packageRef';
import { buildKey, imageRepository, imageTag, type BuildPhase } from '../packages/naming';
import { PackageInstallError, commandFor, installNpm, installPypi, resolveVersion, type InstalledPackage } from '../packages/installers';

export const NODE_BASE_IMAGE = 'mcpd/node-base:20';
export const PYTHON_BASE_IMAGE = 'mcpd/python-base:3';
/** Label of the Python base: the host interpreter it was made from (venvs link to that path). */
export const PYTHON_EXECUTABLE_LABEL = 'io.mcpd.python.executable';

export interface PackageImageBuilderOptions {
  nodeBaseImage?: string;
  pythonBaseImage?: string;
  /** The npm client on the host. */
  npm?: string;
  /** Where build contexts are made (and removed). */
  workDir?: string;
  /** Longest one installer run may take. */
  installTimeoutMs?: number;
}

export interface PackageImageRequest {
  packageName: string;
  entrypoint?: string;
}

export interface PackageImage {
  /** repository:tag to run. */
  image: string;
  /** The container's entrypoint: the chosen executable. */
  entrypoint: string[];
  /** Which executable that is. */
  executable: string;
  /** "npm:@scope/name" / "pypi:name". */
  package: string;
  /** The exact version in the image. */
  version: string;
  lockHash: string;
  /** built: by this call; joined: this call waited for the same build started by another; cached: the image existed. */
  how: 'built' | 'joined' | 'cached';
  /** Time this call spent (resolution, install and build; or the lookup). */
  elapsedMs: number;
}

interface ImageFacts {
  image: string;
  version: string;
  lockHash: string;
  executables: Record<string, string[]>;
  own: string[];
  built: boolean;
}

export class PackageImageBuilder {
  private readonly inflight = new Map<string, Promise<ImageFacts>>();
  private readonly nodeBase: string;
  private readonly pythonBase: string;

  constructor(
    private readonly runtime: ContainerRuntime,
    private readonly options: PackageImageBuilderOptions = {},
  ) {
    this.nodeBase = options.nodeBaseImage ?? NODE_BASE_IMAGE;
    this.pythonBase = options.pythonBaseImage ?? PYTHON_BASE_IMAGE;
  }

  /**
   * The image for a package: found, or built now. `progress` hears each phase (for heartbeats).
   * Throws PackageInstallError naming the package, the version and the installer's reason.
   */
  async prepare(
    request: PackageImageRequest,
    progress: (phase: BuildPhase, display: string) => void = () => undefined,
    signal?: AbortSignal,
  ): Promise<PackageImage> {
    const started = Date.now();
    const parsed = parsePackageRef(request.packageName);
    if (!parsed.ok) throw new PackageInstallError(`packageName: ${parsed.error}`, true);
    const ref = parsed.ref;
    const base = await this.baseFor(ref);
    const installer = { npm: this.options.npm, timeoutMs: this.options.installTimeoutMs, signal, python: base.python };

    progress('resolving the version', formatPackageRef(ref, ref.version));
    const version = await resolveVersion(ref, installer);
    const display = formatPackageRef(ref, version);
    const key = buildKey({ registry: ref.registry, name: ref.name, version, baseImageId: base.id });
    const image = `${imageRepository(ref)}:${imageTag(version, key)}`;

    let facts = await this.existing(image, key);
    let how: PackageImage['how'] = 'cached';
    if (!facts) {
      let build = this.inflight.get(key);
      how = build ? 'joined' : 'built';
      if (build) {
        progress('waiting for the same build', display);
      } else {
        build = this.build(ref, version, key, image, base, installer, (phase) => progress(phase, display)).finally(() => this.inflight.delete(key));
        this.inflight.set(key, build);
      }
      facts = await build;
      // Another mcpd on this engine may have built it first (then ours was dropped).
      if (!facts.built) how = 'cached';
    }
    const chosen = commandFor(ref, facts.version, facts.executables, facts.own, request.entrypoint);
    return {
      image: facts.image,
      entrypoint: chosen.command,
      executable: chosen.name,
      package: formatPackageRef(ref),
      version: facts.version,
      lockHash: facts.lockHash,
      how,
      elapsedMs: Date.now() - started,
    };
  }

  private async baseFor(ref: PackageRef): Promise<{ image: string; id: string; python?: string }> {
    const image = ref.registry === 'npm' ? this.nodeBase : this.pythonBase;
    const info = await this.runtime.inspectImage(image);
    if (!info) {
      throw new PackageInstallError(
        `cannot build ${formatPackageRef(ref, ref.version)}: the base image ${image} is missing on this node (node scripts/images.mjs makes it)`,
        true,
      );
    }
    if (ref.registry === 'npm') return { image, id: info.id };
    const python = info.labels[PYTHON_EXECUTABLE_LABEL];
    const usable = python
      ? await fs.access(python).then(
          () => true,
          () => false,
        )
      : false;
    if (!python || !usable) {
      throw new PackageInstallError(
        `cannot build ${formatPackageRef(ref, ref.version)}: ${image} was made from ${python ?? 'an unknown Python'}, which this host does not have (node scripts/images.mjs --force remakes it)`,
        true,
      );
    }
    return { image, id: info.id, python };
  }

  /** The image with this tag, if it was built for this key. */
  private async existing(image: string, key: string): Promise<ImageFacts | null> {
    const labels = (await this.runtime.inspectImage(image))?.labels;
    if (!labels) return null;
    if (labels[PACKAGE_IMAGE_LABELS.buildKey] !== key) return null;
    let executables: Record<string, string[]>;
    try {
      executables = JSON.parse(labels[PACKAGE_IMAGE_LABELS.executables] ?? '{}') as Record<string, string[]>;
    } catch {
      return null; // not one of ours after all: rebuild it
    }
    return {
      image,
      version: labels[PACKAGE_IMAGE_LABELS.version],
      lockHash: labels[PACKAGE_IMAGE_LABELS.lockHash],
      executables,
      own: (labels[PACKAGE_IMAGE_LABELS.ownExecutables] ?? '').split(',').filter(Boolean),
      built: false,
    };
  }

  private async build(
    ref: PackageRef,
    version: string,
    key: string,
    image: string,
    base: { image: string; python?: string },
    installer: { npm?: string; timeoutMs?: number; signal?: AbortSignal; python?: string },
    progress: (phase: BuildPhase) => void,
  ): Promise<ImageFacts> {
    // Another mcpd on this Docker engine may have finished the same build meanwhile.
    const found = await this.existing(image, key);
    if (found) return found;

    const context = await fs.mkdtemp(path.join(this.options.workDir ?? os.tmpdir(), 'mcpd-pkg-'));
    const [repository, tag] = [image.slice(0, image.lastIndexOf(':')), image.slice(image.lastIndexOf(':') + 1)];
    // Built under a tag of its own, then tagged: a failed or losing build never leaves the real tag pointing at it.
    const scratchTag = `build-${randomBytes(6).toString('hex')}`;
    try {
      progress('installing');
      const installed: InstalledPackage =
        ref.registry === 'npm'
          ? await installNpm(ref, version, context, installer)
          : await installPypi(ref, version, context, { ...installer, python: base.python! });
      // The default is fixed at build time (ENTRYPOINT), so `docker run <image>` runs the server too.
      const defaultChoice = installed.own.length ? commandFor(ref, installed.version, installed.executables, installed.own, undefined) : null;
      const dockerfile = [
        `FROM ${base.image}`,
        ...installed.copies.map((c) => `COPY ${c.from} ${c.to}`),
        'WORKDIR /app',
        ...(defaultChoice ? [`ENTRYPOINT ${JSON.stringify(defaultChoice.command)}`] : []),
      ];
      await fs.writeFile(path.join(context, 'Dockerfile'), `${dockerfile.join('\n')}\n`);

      progress('docker build');
      const labels = {
        [PACKAGE_IMAGE_LABELS.package]: formatPackageRef(ref),
        [PACKAGE_IMAGE_LABELS.version]: installed.version,
        [PACKAGE_IMAGE_LABELS.lockHash]: installed.lock.hash,
        [PACKAGE_IMAGE_LABELS.buildKey]: key,
        [PACKAGE_IMAGE_LABELS.executables]: JSON.stringify(installed.executables),
        [PACKAGE_IMAGE_LABELS.ownExecutables]: installed.own.join(','),
      };
      await this.dockerBuild(context, ['Dockerfile', ...installed.copies.map((c) => c.from)], `${repository}:${scratchTag}`, labels, ref, installed.version);

      if (await this.existing(image, key)) {
        // Lost a race with another process: keep theirs, drop ours whole.
        await this.removeTag(`${repository}:${scratchTag}`);
      } else {
        await this.runtime.tagImage(`${repository}:${scratchTag}`, repository, tag);
        await this.removeTag(`${repository}:${scratchTag}`);
      }
      return { image, version: installed.version, lockHash: installed.lock.hash, executables: installed.executables, own: installed.own, built: true };
    } catch (err) {
      await this.removeTag(`${repository}:${scratchTag}`);
      throw err;
    } finally {
      await fs.rm(context, { recursive: true, force: true });
    }
  }

  private async dockerBuild(context: string, src: string[], tag: string, labels: Record<string, string>, ref: PackageRef, version: string): Promise<void> {
    try {
      await this.runtime.buildImage(context, src, tag, labels);
    } catch (err) {
      throw new PackageInstallError(`${formatPackageRef(ref, version)} cannot be built into an image: docker: ${(err as Error).message}`, false);
    }
  }

  private async removeTag(image: string): Promise<void> {
    await this.runtime.removeImage(image);
  }
}
