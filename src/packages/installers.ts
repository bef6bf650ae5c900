/**
 * The registries' own clients, run on the node's host (which reaches npm and PyPI;
 * containers do not): resolve a requested version to an exact one, and install a
 * package into a directory that becomes an image layer. Nothing here touches Docker.
 *
 * Neither installer runs code from the package on the host: npm installs with
 * `--ignore-scripts`, pip with `--only-binary=:all:` (building an sdist runs its
 * setup code with mcpd's rights and needs compilers; wheels are what the registry
 * serves, with their sha256 in the lock). Packages that need install scripts or an
 * sdist build are built into an image by hand and run with `image`.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { formatPackageRef, type PackageRef } from '../contracts/packageRef';
import {
  chooseExecutable,
  exactPypiVersion,
  installerReason,
  isExactNpmVersion,
  npmBins,
  npmLock,
  pickNpmViewVersion,
  pipInstalledVersion,
  pipLock,
  pipRequirement,
  type NpmLockfile,
  type PackageLock,
  type PipReport,
} from './naming';

const run = promisify(execFile);

/** A package that cannot be installed; `userError` when retrying cannot help (no such package or version, no executable). */
export class PackageInstallError extends Error {
  constructor(
    message: string,
    readonly userError: boolean,
  ) {
    super(message);
    this.name = 'PackageInstallError';
  }
}

export interface InstallerOptions {
  /** The npm client (default `npm` on PATH). */
  npm?: string;
  /** Longest a single installer run may take. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** What an install produced, in the layout the image gets. */
export interface InstalledPackage {
  version: string;
  lock: PackageLock;
  /** Every executable installed: name -> command inside the image. */
  executables: Record<string, string[]>;
  /** The package's own executables (npm bin / console scripts), a subset of `executables`. */
  own: string[];
  /** Directories and files of the build context (relative to it) and where they go in the image. */
  copies: { from: string; to: string }[];
}

const NETWORK_TROUBLE =
  /ENOTFOUND|EAI_AGAIN|ETIMEDOUT|ECONNRESET|ECONNREFUSED|socket hang up|network|timed out|Temporary failure|Max retries exceeded|Connection/i;

async function runInstaller(
  ref: PackageRef,
  version: string | null,
  command: string,
  args: string[],
  options: InstallerOptions & { cwd?: string; env?: NodeJS.ProcessEnv },
): Promise<string> {
  try {
    const { stdout } = await run(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      timeout: options.timeoutMs ?? 8 * 60_000,
      signal: options.signal,
      maxBuffer: 32 * 1024 * 1024,
    });
    return stdout;
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stdout?: string; stderr?: string; killed?: boolean };
    if (e.code === 'ENOENT') throw new PackageInstallError(`${command} is not installed on this node: cannot install ${formatPackageRef(ref, version)}`, true);
    if (options.signal?.aborted) throw new PackageInstallError(`installing ${formatPackageRef(ref, version)} was cancelled`, false);
    const client = ref.registry === 'npm' ? 'npm' : 'pip';
    const reason = e.killed
      ? `timed out after ${Math.round((options.timeoutMs ?? 8 * 60_000) / 1000)} s`
      : installerReason(ref.registry, `${e.stdout ?? ''}\n${e.stderr ?? ''}`.trim());
    throw new PackageInstallError(`${formatPackageRef(ref, version ?? 'latest')} cannot be installed: ${client}: ${reason}`, !NETWORK_TROUBLE.test(reason));
  }
}

/** The exact version a spec's version (or the newest) means today, asking the registry only when it is not exact already. */
export async function resolveVersion(ref: PackageRef, options: InstallerOptions & { python?: string }): Promise<string> {
  if (ref.registry === 'npm') {
    if (isExactNpmVersion(ref.version)) return ref.version.replace(/^v/, '');
    const stdout = await runInstaller(ref, ref.version, options.npm ?? 'npm', ['view', `${ref.name}@${ref.version ?? 'latest'}`, 'version', '--json'], options);
    const version = pickNpmViewVersion(stdout);
    if (!version) throw new PackageInstallError(`${formatPackageRef(ref, ref.version)} cannot be installed: npm: no version matches "${ref.version}"`, true);
    return version;
  }
  const exact = exactPypiVersion(ref.version);
  if (exact) return exact;
  if (!options.python) throw new PackageInstallError('no Python on this node to resolve a PyPI version', true);
  // A dry run of the package alone: pip's own resolution of the specifier, no dependencies, nothing installed.
  const stdout = await runInstaller(
    ref,
    ref.version,
    options.python,
    [
      '-m',
      'pip',
      'install',
      '--dry-run',
      '--no-deps',
      '--ignore-installed',
      '--only-binary=:all:',
      '--no-input',
      '--quiet',
      '--report',
      '-',
      pipRequirement(ref.name, ref.version),
    ],
    options,
  );
  const version = pipInstalledVersion(JSON.parse(stdout) as PipReport, ref.name);
  if (!version) throw new PackageInstallError(`${formatPackageRef(ref, ref.version)} cannot be installed: pip resolved no version`, true);
  return version;
}

/** `npm install` of name@version into <context>/app, with a lockfile; the image runs bins with the base's node. */
export async function installNpm(ref: PackageRef, version: string, context: string, options: InstallerOptions): Promise<InstalledPackage> {
  const app = path.join(context, 'app');
  await fs.mkdir(app, { recursive: true });
  await fs.writeFile(path.join(app, 'package.json'), `${JSON.stringify({ name: 'mcpd-package-image', version: '0.0.0', private: true }, null, 2)}\n`);
  await runInstaller(
    ref,
    version,
    options.npm ?? 'npm',
    [
      'install',
      '--prefix',
      app,
      '--save-exact',
      '--ignore-scripts',
      '--no-audit',
      '--no-fund',
      '--no-update-notifier',
      '--loglevel=error',
      `${ref.name}@${version}`,
    ],
    { ...options, cwd: context },
  );
  const lock = npmLock(JSON.parse(await fs.readFile(path.join(app, 'package-lock.json'), 'utf8')) as NpmLockfile);
  const packageDir = path.join(app, 'node_modules', ref.name);
  const packageJson = JSON.parse(await fs.readFile(path.join(packageDir, 'package.json'), 'utf8')) as {
    name?: string;
    version?: string;
    bin?: string | Record<string, string>;
  };
  const inImage = (file: string) => `/app/${path.relative(app, file).split(path.sep).join('/')}`;

  const executables: Record<string, string[]> = {};
  // Every bin npm linked (the package's and its dependencies'), resolved to the script file.
  const binDir = path.join(app, 'node_modules', '.bin');
  for (const name of await fs.readdir(binDir).catch(() => [] as string[])) {
    const target = await fs.realpath(path.join(binDir, name)).catch(() => null);
    if (target) executables[name] = ['node', inImage(target)];
  }
  const own = Object.entries(npmBins(packageJson)).map(([name, file]) => {
    executables[name] = ['node', inImage(path.resolve(packageDir, file))];
    return name;
  });
  return { version: packageJson.version ?? version, lock, executables, own, copies: [{ from: 'app', to: '/app' }] };
}

/**
 * A venv made by the base image's Python (the same interpreter, at the same path, is in
 * the image), filled by pip from wheels only; the lock is pip's install report.
 */
export async function installPypi(
  ref: PackageRef,
  version: string,
  context: string,
  options: InstallerOptions & { python: string },
): Promise<InstalledPackage> {
  const venv = path.join(context, 'venv');
  await runInstaller(ref, version, options.python, ['-m', 'venv', '--without-pip', venv], options);
  const report = path.join(context, 'pip-report.json');
  await runInstaller(
    ref,
    version,
    options.python,
    // --python: the host's pip installs into the venv, so the image carries no pip.
    [
      '-m',
      'pip',
      '--python',
      path.join(venv, 'bin', 'python'),
      'install',
      '--only-binary=:all:',
      '--no-input',
      '--quiet',
      '--report',
      report,
      `${ref.name}==${version}`,
    ],
    { ...options, cwd: context },
  );
  const pipReport = JSON.parse(await fs.readFile(path.join(report), 'utf8')) as PipReport;
  const lock = pipLock(pipReport);
  await fs.writeFile(path.join(context, 'requirements.lock'), `${lock.lines.join('\n')}\n`);
  await fs.rm(report, { force: true });

  // Console scripts are the python scripts pip wrote next to the venv's interpreter.
  const executables: Record<string, string[]> = {};
  const bin = path.join(venv, 'bin');
  for (const name of await fs.readdir(bin)) {
    if (/^(python[0-9.]*|activate.*|Activate\.ps1)$/.test(name)) continue;
    const head = (await fs.readFile(path.join(bin, name), 'utf8').catch(() => '')).slice(0, 200);
    if (head.startsWith('#!') && head.split('\n')[0].includes('python')) executables[name] = ['/app/venv/bin/python', `/app/venv/bin/${name}`];
  }
  const own = (await pypiConsoleScripts(venv, ref.name)).filter((name) => name in executables);
  return {
    version: pipInstalledVersion(pipReport, ref.name) ?? version,
    lock,
    executables,
    own,
    copies: [
      { from: 'venv', to: '/app/venv' },
      { from: 'requirements.lock', to: '/app/requirements.lock' },
    ],
  };
}

/** The [console_scripts] of the requested distribution, from its dist-info entry_points.txt. */
async function pypiConsoleScripts(venv: string, name: string): Promise<string[]> {
  const normalize = (n: string) => n.toLowerCase().replace(/[-_.]+/g, '_');
  const lib = path.join(venv, 'lib');
  for (const pyDir of await fs.readdir(lib)) {
    const sitePackages = path.join(lib, pyDir, 'site-packages');
    for (const entry of await fs.readdir(sitePackages).catch(() => [] as string[])) {
      const m = /^(.+)-[^-]+\.dist-info$/.exec(entry);
      if (!m || normalize(m[1]) !== normalize(name)) continue;
      const text = await fs.readFile(path.join(sitePackages, entry, 'entry_points.txt'), 'utf8').catch(() => '');
      const section = /\[console_scripts\]([^[]*)/.exec(text)?.[1] ?? '';
      return section
        .split('\n')
        .map((line) => line.split('=')[0].trim())
        .filter(Boolean);
    }
  }
  return [];
}

/** Picks the command to run, or explains why there is none. */
export function commandFor(
  ref: PackageRef,
  version: string,
  executables: Record<string, string[]>,
  own: string[],
  entrypoint: string | undefined,
): { name: string; command: string[] } {
  const choice = chooseExecutable(ref.name, own, Object.keys(executables).sort(), entrypoint);
  if (!choice.ok) throw new PackageInstallError(`${formatPackageRef(ref, version)} ${choice.error}`, true);
  return { name: choice.name, command: executables[choice.name] };
}
