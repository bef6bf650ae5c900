/**
 * The pure parts of virtual servers: the spec's validation, filtering by globs,
 * renaming (prefix, none, overrides), clash detection, the gateway path, and the
 * scoped-token rule of /mcp/virtual/<name>.
 */
import assert from 'node:assert/strict';
import { serversRefusal } from '../../src/api/auth';
import { page } from '../../src/gateway/aggregate';
import { describeFieldErrors } from '../../src/contracts/spec';
import { isVirtualServerDocument, validateVirtualServerSpec, type VirtualServerSpec } from '../../src/contracts/virtualServer';
import { matchGatewayPath } from '../../src/gateway/http';
import { clashMessage, exposePrompts, exposeTools, passes, servesResource, ToolIndex } from '../../src/gateway/virtualCatalog';

function spec(input: unknown): VirtualServerSpec {
  const result = validateVirtualServerSpec(input);
  assert.ok(result.ok, result.ok ? '' : describeFieldErrors(result.errors));
  return result.spec;
}

function errorsOf(input: unknown): Record<string, string> {
  const result = validateVirtualServerSpec(input);
  assert.equal(result.ok, false, 'the spec should be rejected');
  return result.ok ? {} : Object.fromEntries(result.errors.map((e) => [e.field, e.message]));
}

const tool = (name: string, description = `does ${name}`) => ({ name, description, inputSchema: { type: 'object' } });

describe('VirtualServer spec', () => {
  it('accepts a minimal spec with prefix naming and tool search off by default', () => {
    const s = spec({ kind: 'VirtualServer', name: 'dev', servers: [{ name: 'gitea' }] });
    assert.equal(s.naming, 'prefix');
    assert.equal(s.toolSearch, false);
  });

  it('names every bad field: name, empty servers, unknown naming, unknown field', () => {
    const errors = errorsOf({ name: 'Bad_Name', servers: [], naming: 'camel', extra: 1 });
    assert.match(errors.name, /lowercase/);
    assert.match(errors.servers, /at least one server/);
    assert.match(errors.naming, /prefix|none/);
    assert.match(errors.extra, /unknown field/);
  });

  it('rejects a server listed twice and an empty glob', () => {
    const errors = errorsOf({ name: 'dev', servers: [{ name: 'a', tools: { allow: [''] } }, { name: 'a' }] });
    assert.match(errors['servers.1.name'], /lists server "a" twice/);
    assert.match(errors['servers.0.tools.allow.0'], /must not be empty/);
  });

  it('rejects two overrides to one name, naming both tools', () => {
    const errors = errorsOf({
      name: 'dev',
      servers: [
        { name: 'a', tools: { overrides: { search: { name: 'find' } } } },
        { name: 'b', tools: { overrides: { lookup: { name: 'find' } } } },
      ],
    });
    assert.match(errors['servers.1.tools.overrides.lookup.name'], /"find" is the name of both a\/search and b\/lookup/);
  });

  it('rejects an overridden name that is not a valid tool name', () => {
    const errors = errorsOf({ name: 'dev', servers: [{ name: 'a', tools: { overrides: { x: { name: 'has space' } } } }] });
    assert.match(errors['servers.0.tools.overrides.x.name'], /1-64 letters/);
  });

  it('tells a VirtualServer document from a server document by its kind', () => {
    assert.equal(isVirtualServerDocument({ kind: 'VirtualServer', name: 'x' }), true);
    assert.equal(isVirtualServerDocument({ name: 'x', image: 'y' }), false);
  });
});

describe('virtual catalog', () => {
  it('passes items by allow and deny globs, deny winning', () => {
    const filter = { allow: ['list_*', 'get_*'], deny: ['*_admin'] };
    assert.equal(passes(filter, 'list_repos'), true);
    assert.equal(passes(filter, 'get_admin'), false);
    assert.equal(passes(filter, 'delete_repo'), false);
    assert.equal(passes({ deny: ['delete_*'] }, 'create_issue'), true);
    assert.equal(passes(undefined, 'anything'), true);
    assert.equal(passes({ allow: ['{create,update}_issue'] }, 'update_issue'), true);
  });

  it('prefixes names with the server, filters, and applies overrides (name as given, description, merged annotations)', () => {
    const s = spec({
      name: 'dev',
      servers: [
        {
          name: 'gitea',
          tools: {
            deny: ['delete_*'],
            overrides: { list_repos: { name: 'repos', description: 'All repositories', annotations: { readOnlyHint: true } } },
          },
        },
        { name: 'files' },
      ],
    });
    const exposed = exposeTools(s, [
      { server: 'gitea', items: [{ ...tool('list_repos'), annotations: { title: 'List' } }, tool('delete_repo'), tool('get_me')] },
      { server: 'files', items: [tool('read')] },
      { server: 'other', items: [tool('ignored')] },
    ]);
    assert.deepEqual(
      exposed.items.map((t) => t.name),
      ['repos', 'gitea__get_me', 'files__read'],
    );
    const repos = exposed.items[0];
    assert.equal(repos.description, 'All repositories');
    assert.deepEqual(repos.annotations, { title: 'List', readOnlyHint: true });
    assert.deepEqual(exposed.routes.get('repos'), { server: 'gitea', name: 'list_repos' });
    assert.deepEqual(exposed.routes.get('files__read'), { server: 'files', name: 'read' });
    assert.equal(exposed.clashes.length, 0);
  });

  it('with naming none keeps names, and withholds both tools of a clash, naming both', () => {
    const s = spec({ name: 'dev', naming: 'none', servers: [{ name: 'a' }, { name: 'b' }] });
    const exposed = exposeTools(s, [
      { server: 'a', items: [tool('search'), tool('only_a')] },
      { server: 'b', items: [tool('search'), tool('only_b')] },
    ]);
    assert.deepEqual(
      exposed.items.map((t) => t.name),
      ['only_a', 'only_b'],
    );
    assert.equal(exposed.routes.has('search'), false);
    assert.deepEqual(exposed.clashes, [{ name: 'search', owners: ['a/search', 'b/search'] }]);
    assert.match(clashMessage('dev', 'tool', exposed.clashes[0]), /tool name "search" is served by a\/search and b\/search/);
  });

  it('an override resolves a clash of naming none', () => {
    const s = spec({ name: 'dev', naming: 'none', servers: [{ name: 'a', tools: { overrides: { search: { name: 'a_search' } } } }, { name: 'b' }] });
    const exposed = exposeTools(s, [
      { server: 'a', items: [tool('search')] },
      { server: 'b', items: [tool('search')] },
    ]);
    assert.deepEqual(exposed.routes.get('a_search'), { server: 'a', name: 'search' });
    assert.deepEqual(exposed.routes.get('search'), { server: 'b', name: 'search' });
    assert.equal(exposed.clashes.length, 0);
  });

  it('an override that collides with another server’s prefixed name is a clash too', () => {
    const s = spec({ name: 'dev', servers: [{ name: 'a', tools: { overrides: { x: { name: 'b__y' } } } }, { name: 'b' }] });
    const exposed = exposeTools(s, [
      { server: 'a', items: [tool('x')] },
      { server: 'b', items: [tool('y')] },
    ]);
    assert.deepEqual(exposed.clashes, [{ name: 'b__y', owners: ['a/x', 'b/y'] }]);
    assert.equal(exposed.items.length, 0);
  });

  it('filters prompts by their globs and names them like tools', () => {
    const s = spec({ name: 'dev', servers: [{ name: 'a', prompts: { allow: ['greet*'] } }] });
    const exposed = exposePrompts(s, [{ server: 'a', items: [{ name: 'greeting' }, { name: 'secret_prompt' }] }]);
    assert.deepEqual(
      exposed.items.map((p) => p.name),
      ['a__greeting'],
    );
  });

  it('serves a resource only of its servers and only when its URI passes the globs', () => {
    const s = spec({ name: 'dev', servers: [{ name: 'a', resources: { allow: ['file:///docs/**'], deny: ['**/*.key'] } }] });
    assert.equal(servesResource(s, 'a', 'file:///docs/guide/intro.md'), true);
    assert.equal(servesResource(s, 'a', 'file:///docs/server.key'), false);
    assert.equal(servesResource(s, 'a', 'file:///etc/passwd'), false);
    assert.equal(servesResource(s, 'b', 'file:///docs/guide/intro.md'), false);
  });
});

describe('virtual server endpoint and tokens', () => {
  it('matches /mcp/virtual/<name> next to /mcp and /mcp/servers/<name>', () => {
    assert.deepEqual(matchGatewayPath('/mcp/virtual/dev'), { virtual: 'dev' });
    assert.deepEqual(matchGatewayPath('/mcp/virtual/dev/?x=1'), { virtual: 'dev' });
    assert.deepEqual(matchGatewayPath('/mcp/servers/gitea'), { server: 'gitea' });
    assert.deepEqual(matchGatewayPath('/mcp'), {});
    assert.equal(matchGatewayPath('/mcp/virtual/'), undefined);
    assert.equal(matchGatewayPath('/mcp/virtual/a/b'), undefined);
  });

  it('lets a token limited to some servers use a virtual server drawing from those only', () => {
    assert.equal(serversRefusal(['a', 'b'], { kind: 'gateway', virtual: { name: 'dev', servers: ['a'] } }), null);
    assert.match(serversRefusal(['a'], { kind: 'gateway', virtual: { name: 'dev', servers: ['a', 'c'] } })!, /virtual server "dev" also draws from c/);
    assert.equal(serversRefusal(null, { kind: 'gateway', virtual: { name: 'dev', servers: ['c'] } }), null);
  });
});

describe('tool search index', () => {
  /** 500 tools of 50 made-up servers, 10 verbs over 50 nouns, as a large fleet lists them. */
  const fleet = () => {
    const verbs = ['list', 'get', 'create', 'update', 'delete', 'search', 'archive', 'restore', 'export', 'import'];
    const tools = [];
    for (let n = 0; n < 50; n++) {
      for (const verb of verbs) tools.push(tool(`srv${n}__${verb}_thing${n}`, `${verb} a thing number ${n}`));
    }
    tools[123] = tool('gitea__create_issue', 'Create an issue in a Gitea repository');
    tools[321] = tool('jira__createIssue', 'Open a new ticket in Jira');
    tools[400] = tool('files__read_file', 'Read the contents of a file from disk');
    return tools;
  };

  it('ranks the tools that match a query first, out of 500, by name parts and description', () => {
    const index = new ToolIndex();
    index.update(fleet());
    const issues = index.find('create issue', 5).map((t) => t.name);
    assert.deepEqual(issues.slice(0, 2).sort(), ['gitea__create_issue', 'jira__createIssue']);
    assert.equal(index.find('read file contents', 3)[0].name, 'files__read_file');
    assert.equal(index.find('ticket', 10)[0].name, 'jira__createIssue');
  });

  it('returns at most limit tools, and none for a query that matches nothing', () => {
    const index = new ToolIndex();
    index.update(fleet());
    assert.equal(index.find('thing', 10).length, 10);
    assert.deepEqual(index.find('zzzzqqqq', 10), []);
  });

  it('follows a changed tool list', () => {
    const index = new ToolIndex();
    index.update([tool('a__alpha')]);
    assert.equal(index.find('alpha', 5).length, 1);
    index.update([tool('b__beta')]);
    assert.deepEqual(
      index.find('alpha', 5).map((t) => t.name),
      [],
    );
    assert.equal(index.find('beta', 5)[0].name, 'b__beta');
  });
});

describe('list pagination of the aggregate endpoints', () => {
  const tools = Array.from({ length: 25 }, (_, i) => tool(`t${i}`));

  it('answers a short list whole, and a long one in pages that add up to it', () => {
    assert.deepEqual(page({ tools }, 'tools', undefined, 100), { tools });
    const seen: unknown[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const result = page({ tools }, 'tools', cursor, 10);
      seen.push(...(result.tools as unknown[]));
      cursor = result.nextCursor as string | undefined;
      pages++;
    } while (cursor !== undefined);
    assert.equal(pages, 3);
    assert.deepEqual(seen, tools);
  });

  it('refuses a cursor it did not make', () => {
    assert.throws(() => page({ tools }, 'tools', 'not-a-cursor', 10), /Invalid cursor/);
  });
});
