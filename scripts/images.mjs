#!/usr/bin/env node
/**
 * Builds the images mcpd runs here, locally and without any registry:
 *   mcpd/node-base:20          the host's node binary + the shared libraries it links,
 *                              CA certificates and /tmp, made with `docker import`
 *   mcpd/python-base:3         the host's Python (python3, or MCPD_PYTHON) at its own path, its
 *                              standard library (no tests, tkinter, idle, site-packages) and the
 *                              shared libraries it and its extension modules link; the base of
 *                              images mcpd builds from PyPI packages (src/docker/packageImages.ts)
 *   mcpd/gitea-like:dev        images/gitea-like/server.ts bundled with esbuild
 *   mcpd/server-everything:dev @modelcontextprotocol/server-everything bundled with esbuild
 *   mcpd/conformance-everything:dev
 *                              images/conformance-everything/server.ts bundled with esbuild: the
 *                              fixture of the MCP conformance suite's server scenarios
 *   mcpd/tiny:dev              images/tiny, a static Go binary (stdio MCP server with an `echo`
 *                              tool) made with `docker import`; the fixture of the scale benchmark
 *
 * Idempotent: every image carries the hash of what it was made from in the label
 * io.mcpd.source-hash; an image whose hash is unchanged is not rebuilt.
 *
 * Usage: node scripts/images.mjs [--force]
 */
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const HASH_LABEL = 'io.mcpd.source-hash';
export const IMAGES = {
  nodeBase: 'mcpd/node-base:20',
  pythonBase: 'mcpd/python-base:3',
  giteaLike: 'mcpd/gitea-like:dev',
  serverEverything: 'mcpd/server-everything:dev',
  conformanceEverything: 'mcpd/conformance-everything:dev',
  tiny: 'mcpd/tiny:dev',
};

function run(cmd, args, { input, cwd } = {}) {
  const result = spawnSync(cmd, args, {
    cwd,
    input,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    // The classic builder uses local images as they are; BuildKit on an old engine may
    // try to resolve FROM against a registry, and there is none here.
    env: { ...process.env, DOCKER_BUILDKIT: '0' },
  });
  if (result.error) throw new Error(`${cmd} ${args.join(' ')}: ${result.error.message}`);
  if (result.status !== 0) {
    throw new Error(`${cmd} ${args.slice(0, 3).join(' ')} failed (exit ${result.status}): ${(result.stderr || result.stdout).trim()}`);
  }
  return result.stdout;
}

function imageHash(image) {
  const result = spawnSync('docker', ['image', 'inspect', '--format', `{{ index .Config.Labels "${HASH_LABEL}" }}`, image], {
    encoding: 'utf8',
  });
  return result.status === 0 ? result.stdout.trim() : null;
}

function imageId(image) {
  return run('docker', ['image', 'inspect', '--format', '{{.Id}}', image]).trim();
}

function sha256(...parts) {
  const hash = crypto.createHash('sha256');
  for (const part of parts) hash.update(part);
  return hash.digest('hex');
}

/** The shared libraries `ldd` lists for a binary, as absolute paths. */
function sharedLibraries(binary) {
  const files = [];
  for (const line of run('ldd', [binary]).split('\n')) {
    const match = /(?:=>\s*)?(\/\S+)\s+\(0x/.exec(line);
    if (match) files.push(match[1]);
  }
  return files;
}

/** The node binary and every shared library `ldd` lists, as absolute paths. */
function nodeRuntimeFiles(nodePath) {
  return [nodePath, ...sharedLibraries(nodePath)];
}

/** Copies absolute host paths into rootfs at the same paths (symlinks followed: the real file lands under the link's name). */
function copyIntoRootfs(rootfs, files) {
  for (const file of files) {
    const target = path.join(rootfs, file);
    if (fs.existsSync(target)) continue;
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.copyFileSync(file, target);
    fs.chmodSync(target, fs.statSync(file).mode & 0o777);
  }
}

/** Size and mtime of every file stand for its content: hashing 100 MB of runtime on each start is slow. */
function filesFingerprint(files) {
  return files
    .map((f) => {
      const st = fs.statSync(f);
      return `${f}:${st.size}:${st.mtimeMs}`;
    })
    .join('\n');
}

/**
 * Builds `image` with `docker import` from a root filesystem that `populate(rootfs)` fills in a
 * staging folder (removed afterwards), labelled with its content hash; `changes` are Dockerfile
 * instructions (ENV, WORKDIR, CMD…).
 */
function importRootfs(image, hash, changes, populate) {
  const staging = fs.mkdtempSync(path.join(os.tmpdir(), 'mcpd-image-'));
  try {
    const rootfs = path.join(staging, 'rootfs');
    fs.mkdirSync(rootfs);
    populate(rootfs);
    const tarball = path.join(staging, 'rootfs.tar');
    run('tar', ['-C', rootfs, '--numeric-owner', '--owner=0', '--group=0', '-cf', tarball, '.']);
    run('docker', ['import', ...[`LABEL ${HASH_LABEL}=${hash}`, ...changes].flatMap((change) => ['--change', change]), tarball, image]);
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
}

function writeMinimalEtc(rootfs) {
  fs.mkdirSync(path.join(rootfs, 'etc'), { recursive: true });
  fs.writeFileSync(path.join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n');
  fs.writeFileSync(path.join(rootfs, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
  for (const dir of ['tmp', 'root', 'app']) fs.mkdirSync(path.join(rootfs, dir), { recursive: true });
  fs.chmodSync(path.join(rootfs, 'tmp'), 0o1777);
}

// Parts of the standard library an MCP server does not run with: tests, GUI, IDE, installers, and the host's own packages.
const STDLIB_SKIP =
  /^(site-packages|dist-packages|test|tests|idlelib|tkinter|turtledemo|ensurepip|lib2to3|config-[^/]*|__phello__)(\/|$)|(^|\/)(_tkinter|_test|xxlimited|_xxtestfuzz)[^/]*\.so$/;

// What manylinux wheels may link without bundling (PEP 600's policy): wheels on PyPI expect them on the system.
const MANYLINUX_LIBRARIES = [
  'libgcc_s.so.1',
  'libstdc++.so.6',
  'libm.so.6',
  'libdl.so.2',
  'librt.so.1',
  'libc.so.6',
  'libnsl.so.1',
  'libutil.so.1',
  'libpthread.so.0',
  'libresolv.so.2',
  'libz.so.1',
  'libexpat.so.1',
];

/** Host paths of those libraries, from the dynamic linker's cache. */
function manylinuxLibraries() {
  const cache = spawnSync('ldconfig', ['-p'], { encoding: 'utf8' });
  const found = [];
  for (const name of MANYLINUX_LIBRARIES) {
    const match = new RegExp(`^\\s*${name.replace(/[.+]/g, '\\$&')} \\(libc6,x86-64[^)]*\\) => (\\S+)$`, 'm').exec(cache.stdout ?? '');
    if (match) found.push(match[1]);
  }
  return found;
}

/** What the Python base is made of: the interpreter, its stdlib files and the libraries they link. */
function pythonRuntime(python) {
  const probe = spawnSync(
    python,
    [
      '-c',
      'import json, os, sys, sysconfig; print(json.dumps({"executable": os.path.realpath(sys.executable), "version": sys.version.split()[0], "stdlib": sysconfig.get_paths()["stdlib"], "dynload": sysconfig.get_config_var("DESTSHARED")}))',
    ],
    { encoding: 'utf8' },
  );
  if (probe.status !== 0) return null;
  const info = JSON.parse(probe.stdout);
  const stdlibFiles = [];
  // Walked by hand so skipped trees (a host's site-packages can be huge) are never listed.
  const walk = (dir, rel) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const relative = rel ? `${rel}/${entry.name}` : entry.name;
      if (STDLIB_SKIP.test(relative)) continue;
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full, relative);
      else if (entry.isFile()) stdlibFiles.push(full);
    }
  };
  walk(info.stdlib, '');
  if (info.dynload && path.relative(info.stdlib, info.dynload).startsWith('..')) walk(info.dynload, '');
  // The fingerprint covers these; the libraries of every extension module are only listed (one ldd each) when building.
  const files = [...new Set([info.executable, ...sharedLibraries(info.executable), ...manylinuxLibraries(), ...stdlibFiles])];
  const withLinkedLibraries = () => {
    const all = new Set(files);
    for (const file of files.filter((f) => f.includes('.so'))) for (const lib of sharedLibraries(file)) all.add(lib);
    return [...all];
  };
  return { ...info, files, withLinkedLibraries };
}

function buildPythonBase({ force, log }) {
  const python = process.env.MCPD_PYTHON ?? 'python3';
  const runtime = pythonRuntime(python);
  if (!runtime) {
    log(`no ${python} on this host: ${IMAGES.pythonBase} not built, PyPI packages cannot run here`);
    return false;
  }
  const hash = sha256('python-base/v1\n', runtime.executable, runtime.version, '\n', filesFingerprint(runtime.files));
  if (!force && imageHash(IMAGES.pythonBase) === hash) return false;

  const files = runtime.withLinkedLibraries();
  log(`building ${IMAGES.pythonBase} from ${runtime.executable} (${runtime.version}, ${files.length} files)`);
  const changes = [
    `LABEL io.mcpd.python.executable=${runtime.executable}`,
    `LABEL io.mcpd.python.version=${runtime.version}`,
    `ENV PATH=/usr/local/bin:${path.dirname(runtime.executable)}:/usr/bin:/bin`,
    // A stdio server's stderr should reach `mcpctl logs` as it is written.
    'ENV PYTHONUNBUFFERED=1',
    'WORKDIR /app',
    'CMD ["python3"]',
  ];
  importRootfs(IMAGES.pythonBase, hash, changes, (rootfs) => {
    copyIntoRootfs(rootfs, files);
    // Venvs link to the interpreter's own path (kept above); python3 on PATH is a convenience.
    fs.mkdirSync(path.join(rootfs, 'usr/local/bin'), { recursive: true });
    if (!fs.existsSync(path.join(rootfs, 'usr/local/bin/python3'))) fs.symlinkSync(runtime.executable, path.join(rootfs, 'usr/local/bin/python3'));
    writeMinimalEtc(rootfs);
  });
  return true;
}

function buildNodeBase({ force, log }) {
  const nodePath = fs.realpathSync(process.execPath);
  const files = nodeRuntimeFiles(nodePath);
  const certs = fs.existsSync('/etc/ssl/certs') ? '/etc/ssl/certs' : null;
  const hash = sha256('node-base/v1\n', process.version, '\n', filesFingerprint([...files, ...(certs ? [certs] : [])]));
  if (!force && imageHash(IMAGES.nodeBase) === hash) return false;

  log(`building ${IMAGES.nodeBase} from ${nodePath} (${process.version})`);
  importRootfs(IMAGES.nodeBase, hash, ['ENV PATH=/usr/local/bin:/usr/bin:/bin', 'WORKDIR /app', 'CMD ["node"]'], (rootfs) => {
    copyIntoRootfs(rootfs, files);
    // node is found on PATH inside the image whatever the host path was.
    if (nodePath !== '/usr/bin/node') {
      fs.mkdirSync(path.join(rootfs, 'usr/bin'), { recursive: true });
      fs.copyFileSync(nodePath, path.join(rootfs, 'usr/bin/node'));
      fs.chmodSync(path.join(rootfs, 'usr/bin/node'), 0o755);
    }
    if (certs) fs.cpSync(certs, path.join(rootfs, 'etc/ssl/certs'), { recursive: true, dereference: true });
    writeMinimalEtc(rootfs);
  });
  return true;
}

/**
 * mcpd/tiny:dev: images/tiny built by the host's Go into one static binary, and an image
 * of that file alone (plus /tmp), made with `docker import`. Skipped with a line when
 * there is no `go` on PATH: only the scale benchmark and one gateway test need it.
 */
function buildTiny({ force, log }) {
  const source = path.join(ROOT, 'images/tiny');
  const goVersion = spawnSync('go', ['env', 'GOVERSION'], { encoding: 'utf8' });
  if (goVersion.error || goVersion.status !== 0) {
    log(`no go on this host: ${IMAGES.tiny} not built (the scale benchmark needs it)`);
    return false;
  }
  const sources = fs
    .readdirSync(source)
    .filter((f) => f.endsWith('.go') || f === 'go.mod')
    .sort();
  const hash = sha256('tiny/v1\n', goVersion.stdout.trim(), '\n', ...sources.flatMap((f) => [f, fs.readFileSync(path.join(source, f))]));
  if (!force && imageHash(IMAGES.tiny) === hash) return false;

  log(`building ${IMAGES.tiny} with ${goVersion.stdout.trim()}`);
  importRootfs(IMAGES.tiny, hash, ['ENTRYPOINT ["/mcp-tiny"]'], (rootfs) => {
    fs.mkdirSync(path.join(rootfs, 'tmp'), { recursive: true });
    fs.chmodSync(path.join(rootfs, 'tmp'), 0o1777);
    const result = spawnSync('go', ['build', '-trimpath', '-ldflags=-s -w', '-o', path.join(rootfs, 'mcp-tiny'), '.'], {
      cwd: source,
      encoding: 'utf8',
      // Static (no libc in the image), with the Go on this host: nothing is downloaded.
      env: {
        ...process.env,
        CGO_ENABLED: '0',
        GOTOOLCHAIN: 'local',
        ...(process.env.HOME || process.env.GOCACHE ? {} : { GOCACHE: path.join(os.tmpdir(), 'mcpd-go-cache') }),
      },
    });
    if (result.error || result.status !== 0) throw new Error(`go build images/tiny failed: ${(result.stderr || result.error?.message || '').trim()}`);
  });
  return true;
}

async function bundle(esbuild, options) {
  const result = await esbuild.build({
    bundle: true,
    platform: 'node',
    target: 'node20',
    write: false,
    legalComments: 'none',
    logLevel: 'error',
    ...options,
  });
  return result.outputFiles[0].contents;
}

/**
 * Builds `image` FROM node-base with the given files COPYed into /app. The hash covers
 * the files, the Dockerfile and the base image, so a new base rebuilds its children.
 */
function buildAppImage(image, { files, dirs = [], entrypoint, force, log }) {
  const baseId = imageId(IMAGES.nodeBase);
  const dockerfileLines = [`FROM ${IMAGES.nodeBase}`];
  for (const name of Object.keys(files).sort()) dockerfileLines.push(`COPY ${name} /app/${name}`);
  for (const { name, target } of dirs) dockerfileLines.push(`COPY ${name} ${target}`);
  dockerfileLines.push(`ENTRYPOINT ${JSON.stringify(entrypoint)}`);
  const hashParts = ['app/v1\n', baseId, dockerfileLines.join('\n')];
  for (const name of Object.keys(files).sort()) hashParts.push(name, files[name]);
  for (const { name, source } of dirs) {
    for (const file of fs.readdirSync(source, { recursive: true }).map(String).sort()) {
      const full = path.join(source, file);
      if (fs.statSync(full).isFile()) hashParts.push(`${name}/${file}`, fs.readFileSync(full));
    }
  }
  const hash = sha256(...hashParts);
  if (!force && imageHash(image) === hash) return false;

  log(`building ${image}`);
  dockerfileLines.push(`LABEL ${HASH_LABEL}=${hash}`);
  const context = fs.mkdtempSync(path.join(os.tmpdir(), 'mcpd-image-'));
  try {
    for (const [name, content] of Object.entries(files)) fs.writeFileSync(path.join(context, name), content);
    for (const { name, source } of dirs) fs.cpSync(source, path.join(context, name), { recursive: true });
    fs.writeFileSync(path.join(context, 'Dockerfile'), dockerfileLines.join('\n') + '\n');
    run('docker', ['build', '--quiet', '--tag', image, context]);
  } finally {
    fs.rmSync(context, { recursive: true, force: true });
  }
  return true;
}

/**
 * Ensures all the images exist and are current. Returns the names of the images it
 * (re)built. Needs a working `docker` CLI and node_modules (esbuild, the MCP SDK).
 */
export async function buildImages({ force = false, log = (msg) => console.log(`[images] ${msg}`) } = {}) {
  const started = Date.now();
  const { default: esbuild } = await import(path.join(ROOT, 'node_modules/esbuild/lib/main.js')).catch(() => {
    throw new Error('esbuild is missing: run `npm install` first');
  });
  const built = [];
  if (buildNodeBase({ force, log })) built.push(IMAGES.nodeBase);
  if (buildPythonBase({ force, log })) built.push(IMAGES.pythonBase);
  if (buildTiny({ force, log })) built.push(IMAGES.tiny);

  const giteaLike = await bundle(esbuild, {
    entryPoints: [path.join(ROOT, 'images/gitea-like/server.ts')],
    format: 'cjs',
    absWorkingDir: ROOT,
  });
  if (
    buildAppImage(IMAGES.giteaLike, {
      files: { 'server.js': giteaLike },
      entrypoint: ['node', '/app/server.js'],
      force,
      log,
    })
  ) {
    built.push(IMAGES.giteaLike);
  }

  const conformance = await bundle(esbuild, {
    entryPoints: [path.join(ROOT, 'images/conformance-everything/server.ts')],
    format: 'cjs',
    absWorkingDir: ROOT,
  });
  if (
    buildAppImage(IMAGES.conformanceEverything, {
      files: { 'server.js': conformance },
      entrypoint: ['node', '/app/server.js'],
      force,
      log,
    })
  ) {
    built.push(IMAGES.conformanceEverything);
  }

  const everythingDist = path.join(ROOT, 'node_modules/@modelcontextprotocol/server-everything/dist');
  const everything = await bundle(esbuild, {
    entryPoints: [path.join(ROOT, 'images/server-everything/entry.mjs')],
    format: 'esm',
    absWorkingDir: ROOT,
    // Bundled CommonJS dependencies (express...) call require() for node built-ins.
    banner: { js: "import { createRequire as __mcpdCreateRequire } from 'node:module'; const require = __mcpdCreateRequire(import.meta.url);" },
  });
  if (
    buildAppImage(IMAGES.serverEverything, {
      files: { 'index.js': everything, 'package.json': '{"type":"module"}\n' },
      // Upstream reads its docs from <dir of its module>/../docs at runtime: /app/index.js -> /docs.
      dirs: [{ name: 'docs', source: path.join(everythingDist, 'docs'), target: '/docs' }],
      entrypoint: ['node', '/app/index.js'],
      force,
      log,
    })
  ) {
    built.push(IMAGES.serverEverything);
  }
  await esbuild.stop?.(); // its service process would otherwise live as long as we do
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  log(built.length ? `built ${built.join(', ')} in ${seconds}s` : `images up to date (${seconds}s)`);
  return built;
}

if (process.argv[1] && fs.realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  buildImages({ force: process.argv.includes('--force') }).catch((err) => {
    console.error(`[images] ${err.message}`);
    process.exit(1);
  });
}
