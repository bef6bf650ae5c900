import assert from 'node:assert/strict';
import { formatPackageRef, parsePackageRef } from '../../src/contracts/packageRef';
import { validateSpec } from '../../src/contracts/spec';
import {
  buildKey,
  chooseExecutable,
  exactPypiVersion,
  imageRepository,
  imageTag,
  installerReason,
  isExactNpmVersion,
  npmBins,
  npmLock,
  pickNpmViewVersion,
  pipLock,
  pipRequirement,
  progressLine,
} from '../../src/packages/naming';

describe('package references (packageName)', () => {
  it('reads npm names with and without scope and version, and the pypi: form', () => {
    assert.deepEqual(parsePackageRef('@modelcontextprotocol/server-memory'), {
      ok: true,
      ref: { registry: 'npm', name: '@modelcontextprotocol/server-memory', version: null },
    });
    assert.deepEqual(parsePackageRef('@modelcontextprotocol/server-memory@2026.8.31'), {
      ok: true,
      ref: { registry: 'npm', name: '@modelcontextprotocol/server-memory', version: '2026.8.31' },
    });
    assert.deepEqual(parsePackageRef('npm:some-server@^1.2'), { ok: true, ref: { registry: 'npm', name: 'some-server', version: '^1.2' } });
    assert.deepEqual(parsePackageRef('pypi:mcp-server-time'), { ok: true, ref: { registry: 'pypi', name: 'mcp-server-time', version: null } });
    assert.deepEqual(parsePackageRef('pypi:mcp-server-time@>=2025,<2027'), {
      ok: true,
      ref: { registry: 'pypi', name: 'mcp-server-time', version: '>=2025,<2027' },
    });
  });

  it('rejects what no registry would accept, saying why', () => {
    const bad = (value: string) => {
      const parsed = parsePackageRef(value);
      assert.equal(parsed.ok, false, value);
      return parsed.ok ? '' : parsed.error;
    };
    assert.match(bad('Mcp_Server_Time'), /is not an npm package name .*"pypi:<name>"/);
    assert.match(bad('pypi:mcp server'), /is not a PyPI package name/);
    assert.match(bad('some-server@'), /empty version/);
    assert.match(bad('some-server@--registry=http://evil'), /is not a version/);
    assert.match(bad('pypi:x@1;rm -rf /'), /is not a version/);
  });

  it('formats a reference with its exact version for events and labels', () => {
    assert.equal(formatPackageRef({ registry: 'npm', name: '@a/b' }, '1.2.3'), 'npm:@a/b@1.2.3');
    assert.equal(formatPackageRef({ registry: 'pypi', name: 'x' }), 'pypi:x');
    // What the workflow pins is parsed back to the same package and exact version.
    assert.deepEqual(parsePackageRef('npm:@a/b@1.2.3'), { ok: true, ref: { registry: 'npm', name: '@a/b', version: '1.2.3' } });
  });

  it('the spec accepts packageName with an entrypoint, and names the field of a bad one', () => {
    const ok = validateSpec({ name: 'time', packageName: 'pypi:mcp-server-time@2026.10.19', entrypoint: 'mcp-server-time' });
    assert.ok(ok.ok);
    const bad = validateSpec({ name: 'time', packageName: 'pypi:mcp server' });
    assert.ok(!bad.ok && bad.errors.some((e) => e.field === 'packageName' && /not a PyPI package name/.test(e.message)));
    const stray = validateSpec({ name: 'x', image: 'mcpd/gitea-like:dev', entrypoint: 'x' });
    assert.ok(!stray.ok && stray.errors.some((e) => e.field === 'entrypoint' && /only applies to "packageName"/.test(e.message)));
  });
});

describe('package image naming and locks', () => {
  it('names one repository per registry and package, tagged with the version and the build key', () => {
    assert.equal(imageRepository({ registry: 'npm', name: '@modelcontextprotocol/server-memory' }), 'mcpd/pkg-npm-modelcontextprotocol-server-memory');
    assert.equal(imageRepository({ registry: 'pypi', name: 'MCP_Server.Time' }), 'mcpd/pkg-pypi-mcp-server-time');
    assert.equal(imageTag('1.0.0+build.5', 'abcdef0123456789'), '1.0.0_build.5-abcdef012345');
    assert.equal(imageTag('1!2.0.post1', 'ff'.repeat(32)), '1_2.0.post1-ffffffffffff');
  });

  it('changes the build key with the version or the base image, and only then', () => {
    const base = { registry: 'npm' as const, name: 'x', version: '1.0.0', baseImageId: 'sha256:1' };
    assert.equal(buildKey(base), buildKey({ ...base }));
    assert.notEqual(buildKey(base), buildKey({ ...base, version: '1.0.1' }));
    assert.notEqual(buildKey(base), buildKey({ ...base, baseImageId: 'sha256:2' }));
    assert.notEqual(buildKey(base), buildKey({ ...base, registry: 'pypi' }));
  });

  it('an npm lock lists every installed package with its integrity; its hash ignores key order', () => {
    const lockfile = {
      packages: {
        '': { name: 'mcpd-package-image' },
        'node_modules/b': { version: '2.0.0', integrity: 'sha512-b' },
        'node_modules/a': { version: '1.0.0', integrity: 'sha512-a' },
        'node_modules/a/node_modules/b': { version: '1.0.0', integrity: 'sha512-b1' },
      },
    };
    const lock = npmLock(lockfile);
    assert.deepEqual(lock.lines, ['node_modules/a a@1.0.0 sha512-a', 'node_modules/a/node_modules/b b@1.0.0 sha512-b1', 'node_modules/b b@2.0.0 sha512-b']);
    const reordered = { packages: Object.fromEntries(Object.entries(lockfile.packages).reverse()) };
    assert.equal(npmLock(reordered).hash, lock.hash);
    assert.notEqual(npmLock({ packages: { ...lockfile.packages, 'node_modules/b': { version: '2.0.1', integrity: 'sha512-c' } } }).hash, lock.hash);
  });

  it('a pip lock is requirements with hashes, from pip install --report', () => {
    const lock = pipLock({
      install: [
        { metadata: { name: 'Pydantic_Core', version: '2.50.5' }, download_info: { archive_info: { hashes: { sha256: 'aa' } } } },
        { metadata: { name: 'mcp-server-time', version: '2026.10.19' }, download_info: { archive_info: { hash: 'sha256=bb' } } },
      ],
    });
    assert.deepEqual(lock.lines, ['mcp-server-time==2026.10.19 --hash=sha256:bb', 'pydantic-core==2.50.5 --hash=sha256:aa']);
    assert.match(lock.hash, /^[0-9a-f]{64}$/);
  });
});

describe('package versions and executables', () => {
  it('tells exact versions from ranges and tags', () => {
    assert.equal(isExactNpmVersion('2026.8.31'), true);
    assert.equal(isExactNpmVersion('1.0.0-rc.1'), true);
    assert.equal(isExactNpmVersion('^1.0.0'), false);
    assert.equal(isExactNpmVersion('latest'), false);
    assert.equal(isExactNpmVersion(null), false);
    assert.equal(exactPypiVersion('2026.10.19'), '2026.10.19');
    assert.equal(exactPypiVersion('==1.0'), '1.0');
    assert.equal(exactPypiVersion('>=1.0'), null);
    assert.equal(exactPypiVersion('1.*'), null);
    assert.equal(pipRequirement('x', '1.0'), 'x==1.0');
    assert.equal(pipRequirement('x', '>=1,<2'), 'x>=1,<2');
    assert.equal(pipRequirement('x', null), 'x');
  });

  it('takes the highest match from npm view', () => {
    assert.equal(pickNpmViewVersion('"1.2.3"\n'), '1.2.3');
    assert.equal(pickNpmViewVersion('["1.0.0","1.1.0","1.2.0"]'), '1.2.0');
    assert.equal(pickNpmViewVersion(''), null);
  });

  it('reads npm bins in both forms and picks the executable as npx and uvx would', () => {
    assert.deepEqual(npmBins({ name: '@s/tool', bin: 'dist/cli.js' }), { tool: 'dist/cli.js' });
    assert.deepEqual(npmBins({ name: 'x', bin: { a: 'a.js', b: 'b.js' } }), { a: 'a.js', b: 'b.js' });
    assert.deepEqual(npmBins({ name: 'x' }), {});
    assert.deepEqual(chooseExecutable('@modelcontextprotocol/server-memory', ['mcp-server-memory'], ['mcp-server-memory', 'tsc'], undefined), {
      ok: true,
      name: 'mcp-server-memory',
    });
    assert.deepEqual(chooseExecutable('pkg', ['other', 'pkg'], ['other', 'pkg'], undefined), { ok: true, name: 'pkg' });
    assert.deepEqual(chooseExecutable('pkg', ['a', 'b'], ['a', 'b', 'c'], 'c'), { ok: true, name: 'c' });
    const several = chooseExecutable('pkg', ['a', 'b'], ['a', 'b'], undefined);
    assert.ok(!several.ok && /several executables \("a", "b"\); choose one with "entrypoint"/.test(several.error));
    const missing = chooseExecutable('pkg', ['a'], ['a'], 'nope');
    assert.ok(!missing.ok && /has no executable "nope" \(it installs "a"\)/.test(missing.error));
    const none = chooseExecutable('pkg', [], [], undefined);
    assert.ok(!none.ok && /installs no executable of its own/.test(none.error));
  });
});

describe('installer reasons', () => {
  it('takes npm --json error summaries and plain npm error lines', () => {
    const json = JSON.stringify({ error: { code: 'E404', summary: 'Not Found - GET https://registry.npmjs.org/@x%2fy', detail: 'long\ntext' } });
    assert.equal(installerReason('npm', json), 'Not Found - GET https://registry.npmjs.org/@x%2fy');
    const plain = [
      'npm error code ETARGET',
      'npm error notarget No matching version found for left-pad@99.0.0.',
      'npm error A complete log of this run can be found in: /root/.npm/_logs/x.log',
    ].join('\n');
    assert.equal(installerReason('npm', plain), 'No matching version found for left-pad@99.0.0.');
  });

  it("takes pip's last ERROR line", () => {
    const output =
      'ERROR: Could not find a version that satisfies the requirement mcp-server-tmie (from versions: none)\nERROR: No matching distribution found for mcp-server-tmie\n';
    assert.equal(installerReason('pypi', output), 'No matching distribution found for mcp-server-tmie');
  });

  it('progress lines carry the package, the seconds and the phase', () => {
    assert.equal(progressLine('pypi:mcp-server-time@2026.10.19', 'installing', 12_400), 'building image for pypi:mcp-server-time@2026.10.19 12 s: installing');
  });
});
