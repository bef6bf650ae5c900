/**
 * The import rules of docs/architecture.md, checked on the source: every import of
 * src/, activities/ and workflows/ (static, `export ... from`, dynamic `import()`,
 * `require()` and `import('...')` types) is parsed with the TypeScript compiler and
 * must point down or sideways in the layer map. A failure names the file, the line,
 * the import and the rule it breaks, so the fix is to move the code, not the rule.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
const SCANNED_DIRS = ['src', 'activities', 'workflows'];

type Layer = 'contracts' | 'pure' | 'workflowPure' | 'adapter' | 'activity' | 'workflow' | 'api' | 'cli' | 'worker' | 'root' | 'main';

/** Pure modules outside workflows/: no I/O of their own, unit-tested without the stack. */
const PURE_MODULES = new Set([
  'src/config/settings',
  'src/config/origins',
  'src/gateway/names',
  'src/gateway/discoveryCache',
  'src/gateway/requestTable',
  'src/gateway/lineDecoder',
  'src/gateway/replicas',
  'src/gateway/remotePlan',
  'src/packages/naming',
  'src/embedded/restartPolicy',
  'src/logger',
  'src/retry',
  'src/concurrency',
  'src/metrics/classify',
  'src/audit/record',
  'src/policy/entities',
]);

/**
 * Pure modules under workflows/ that activities apply too (the probe loop on the node
 * applies the probe's health rules): pure, but they keep the workflow sandbox's rules.
 */
const WORKFLOW_PURE_MODULES = new Set(['workflows/health', 'workflows/backoff', 'workflows/instanceMachine', 'workflows/serverMachine', 'workflows/placement']);

/** The layer of a module, by its repository path without extension; undefined when the map does not know it. */
function layerOf(module: string): Layer | undefined {
  if (module.startsWith('src/contracts/')) return 'contracts';
  if (PURE_MODULES.has(module)) return 'pure';
  if (WORKFLOW_PURE_MODULES.has(module)) return 'workflowPure';
  if (/^src\/(docker|secrets|gateway|client|packages|embedded|nodes|cluster|metrics|tracing|audit|policy)\//.test(module)) return 'adapter';
  if (module.startsWith('activities/')) return 'activity';
  if (module.startsWith('workflows/')) return 'workflow';
  if (module.startsWith('src/api/')) return 'api';
  if (module.startsWith('src/cli/')) return 'cli';
  if (module === 'src/worker') return 'worker';
  if (module === 'src/mcpd') return 'root';
  if (module === 'src/main') return 'main';
  return undefined;
}

/** Which layers a layer may import (its own included); see docs/architecture.md. */
const MAY_IMPORT: Record<Layer, readonly Layer[]> = {
  contracts: ['contracts'],
  pure: ['contracts', 'pure'],
  workflowPure: ['contracts', 'workflowPure'],
  adapter: ['contracts', 'pure', 'adapter'],
  // activities/ only as types (checked below): workflow code never runs an activity's code.
  workflow: ['contracts', 'workflowPure', 'workflow', 'activity'],
  activity: ['contracts', 'pure', 'workflowPure', 'adapter', 'activity'],
  api: ['contracts', 'pure', 'adapter', 'api'],
  // the CLI reaches mcpd over HTTP only: of the adapters, just src/client (checked below).
  cli: ['contracts', 'pure', 'adapter', 'cli'],
  worker: ['contracts', 'pure', 'adapter', 'activity', 'worker'],
  root: ['contracts', 'pure', 'adapter', 'activity', 'workflow', 'api', 'worker', 'root'],
  main: ['contracts', 'pure', 'root'],
};

/** Packages a layer may import when it must stay loadable in Temporal's deterministic workflow sandbox. */
const SANDBOX_PACKAGES: Partial<Record<Layer, readonly string[]>> = {
  contracts: ['zod', '@temporalio/common', '@temporalio/workflow'],
  workflowPure: ['@temporalio/workflow', '@temporalio/common'],
  workflow: ['@temporalio/workflow', '@temporalio/common'],
};

/** Packages that exactly one module wraps. */
const ONE_IMPORTER: Record<string, string> = {
  dockerode: 'src/docker/runtime',
  'node-vault': 'src/secrets/openbao',
  'prom-client': 'src/metrics/registry',
  '@cedar-policy/cedar-wasm': 'src/policy/engine',
};

interface SourceFile {
  /** Repository path with extension, e.g. src/api/app.ts. */
  file: string;
  text: string;
}

interface ImportSite {
  specifier: string;
  line: number;
  typeOnly: boolean;
  /** require() or import(): evaluated when the code that calls it runs, not when its module loads. */
  lazy: boolean;
}

function importsOf(source: SourceFile): ImportSite[] {
  const sf = ts.createSourceFile(source.file, source.text, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
  const sites: ImportSite[] = [];
  const add = (literal: ts.Expression, typeOnly: boolean, lazy = false) => {
    if (!ts.isStringLiteralLike(literal)) return;
    sites.push({ specifier: literal.text, line: sf.getLineAndCharacterOfPosition(literal.getStart(sf)).line + 1, typeOnly, lazy });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) {
      const clause = node.importClause;
      const bindings = clause?.namedBindings;
      const onlyTypeElements =
        !clause?.name && bindings !== undefined && ts.isNamedImports(bindings) && bindings.elements.length > 0 && bindings.elements.every((e) => e.isTypeOnly);
      add(node.moduleSpecifier, clause !== undefined && (clause.isTypeOnly || onlyTypeElements));
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier) {
      add(node.moduleSpecifier, node.isTypeOnly);
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      add(node.moduleReference.expression, node.isTypeOnly);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      add(node.argument.literal, true);
    } else if (ts.isCallExpression(node) && node.arguments.length === 1) {
      const isDynamicImport = node.expression.kind === ts.SyntaxKind.ImportKeyword;
      const isRequire = ts.isIdentifier(node.expression) && node.expression.text === 'require';
      if (isDynamicImport || isRequire) add(node.arguments[0], false, true);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return sites;
}

/** The package name of a bare specifier: 'zod', '@temporalio/workflow', '@modelcontextprotocol/sdk'. */
function packageOf(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

/** Every import that breaks the layer rules, one readable line each. */
function layerViolations(sources: SourceFile[]): string[] {
  const problems: string[] = [];
  for (const source of sources) {
    const from = source.file.replace(/\.ts$/, '');
    const fromLayer = layerOf(from);
    if (!fromLayer) {
      problems.push(`${source.file}: not in the layer map; place it in docs/architecture.md and in tests/unit/layers.test.ts`);
      continue;
    }
    for (const site of importsOf(source)) {
      const where = `${source.file}:${site.line} imports '${site.specifier}'`;
      if (site.specifier.startsWith('.')) {
        const target = path.posix.normalize(path.posix.join(path.posix.dirname(from), site.specifier)).replace(/\.(js|ts)$/, '');
        const toLayer = layerOf(target);
        if (!toLayer) problems.push(`${where}: ${target} is outside src/, activities/ and workflows/ or not in the layer map`);
        else if (target === 'src/main' || (target === 'src/mcpd' && fromLayer !== 'main'))
          problems.push(`${where}: only src/main.ts, the tests and the benchmarks may import ${target}.ts`);
        else if (!MAY_IMPORT[fromLayer].includes(toLayer))
          problems.push(`${where}: ${fromLayer} may import only ${MAY_IMPORT[fromLayer].join(', ')}, not ${toLayer}`);
        else if (fromLayer === 'workflow' && toLayer === 'activity' && !site.typeOnly)
          problems.push(`${where}: workflows may import activities' types only (import type), never their code`);
        else if (fromLayer === 'cli' && toLayer === 'adapter' && !target.startsWith('src/client/'))
          problems.push(`${where}: the CLI reaches mcpd over HTTP; of the adapters it may import only src/client/`);
      } else {
        const pkg = packageOf(site.specifier);
        const allowed = SANDBOX_PACKAGES[fromLayer];
        if (allowed && !allowed.includes(pkg)) problems.push(`${where}: ${fromLayer} runs in the workflow sandbox and may import only ${allowed.join(', ')}`);
        const owner = ONE_IMPORTER[pkg];
        if (owner && owner !== from) problems.push(`${where}: only ${owner}.ts imports ${pkg}; use its interface`);
      }
    }
  }
  return problems;
}

/**
 * The packages the workflow bundle evaluates for every workflow: those imported, not as
 * types and not lazily, by the modules workflows/index.ts reaches through such imports.
 */
function packagesEvaluatedPerWorkflow(sources: SourceFile[]): Map<string, string> {
  const byModule = new Map(sources.map((s) => [s.file.replace(/\.ts$/, ''), s]));
  const packages = new Map<string, string>();
  const seen = new Set<string>();
  const visit = (module: string) => {
    const source = byModule.get(module);
    if (!source || seen.has(module)) return;
    seen.add(module);
    for (const site of importsOf(source)) {
      if (site.typeOnly || site.lazy) continue;
      if (site.specifier.startsWith('.')) visit(path.posix.normalize(path.posix.join(path.posix.dirname(module), site.specifier)).replace(/\.(js|ts)$/, ''));
      else if (!packages.has(packageOf(site.specifier))) packages.set(packageOf(site.specifier), `${source.file}:${site.line}`);
    }
  };
  visit('workflows/index');
  return packages;
}

function sourcesUnder(dir: string): SourceFile[] {
  return fs
    .readdirSync(path.join(REPO_ROOT, dir), { recursive: true, encoding: 'utf8' })
    .filter((name) => name.endsWith('.ts') && !name.endsWith('.d.ts'))
    .map((name) => path.posix.join(dir, name.split(path.sep).join('/')))
    .sort()
    .map((file) => ({ file, text: fs.readFileSync(path.join(REPO_ROOT, file), 'utf8') }));
}

describe('layers: imports point down the map of docs/architecture.md', () => {
  it('src/, activities/ and workflows/ break no import rule', () => {
    const sources = SCANNED_DIRS.flatMap(sourcesUnder);
    assert.ok(sources.length > 50, `found only ${sources.length} source files under ${SCANNED_DIRS.join(', ')} of ${REPO_ROOT}`);
    assert.deepEqual(layerViolations(sources), []);
  });

  it('the workflow bundle loads no zod for each workflow it creates (only the workflows that validate specs load it, when they do)', () => {
    const packages = packagesEvaluatedPerWorkflow(SCANNED_DIRS.flatMap(sourcesUnder));
    assert.ok(packages.has('@temporalio/workflow'), 'the walk from workflows/index.ts found the workflow modules');
    assert.equal(packages.get('zod'), undefined, `zod is imported at the top of a module every workflow evaluates: ${packages.get('zod')}`);
  });

  it('names the file, line and rule of an upward import', () => {
    const problems = layerViolations([
      { file: 'src/contracts/spec.ts', text: "import { z } from 'zod';\nimport type { Logger } from '../logger';" },
      {
        file: 'workflows/instance.ts',
        text: "import { createNodeActivities } from '../activities/node';\nimport type { NodeActivities } from '../activities/node';\nimport { z } from 'zod';",
      },
      { file: 'src/gateway/gateway.ts', text: "import Docker from 'dockerode';" },
      { file: 'src/api/app.ts', text: "const cli = require('../cli/mcpctl');\nexport { createMcpd } from '../mcpd.js';" },
      { file: 'src/cli/mcpctl.ts', text: "async function f() { return import('../docker/runtime.js'); }" },
      { file: 'src/stray.ts', text: '' },
    ]);
    assert.deepEqual(problems, [
      "src/contracts/spec.ts:2 imports '../logger': contracts may import only contracts, not pure",
      "workflows/instance.ts:1 imports '../activities/node': workflows may import activities' types only (import type), never their code",
      "workflows/instance.ts:3 imports 'zod': workflow runs in the workflow sandbox and may import only @temporalio/workflow, @temporalio/common",
      "src/gateway/gateway.ts:1 imports 'dockerode': only src/docker/runtime.ts imports dockerode; use its interface",
      "src/api/app.ts:1 imports '../cli/mcpctl': api may import only contracts, pure, adapter, api, not cli",
      "src/api/app.ts:2 imports '../mcpd.js': only src/main.ts, the tests and the benchmarks may import src/mcpd.ts",
      "src/cli/mcpctl.ts:1 imports '../docker/runtime.js': the CLI reaches mcpd over HTTP; of the adapters it may import only src/client/",
      'src/stray.ts: not in the layer map; place it in docs/architecture.md and in tests/unit/layers.test.ts',
    ]);
  });
});
