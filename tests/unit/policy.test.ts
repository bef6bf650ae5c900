import assert from 'node:assert/strict';
import type { Principal } from '../../src/contracts/api';
import { checkPolicyText, PolicyEngine } from '../../src/policy/engine';
import { describeResource, lineColumn, principalEntities, principalKey, resourceEntities } from '../../src/policy/entities';
import { policyFirstLine } from '../../src/client/specDocuments';
import { policyDocumentSchema } from '../../src/contracts/policy';

const alice: Principal = { name: 'alice', role: 'client', servers: null, source: 'scoped-token', groups: ['dev', 'ops'] };
const bob: Principal = { name: 'bob', role: 'client', servers: null, source: 'scoped-token', groups: [] };
const tool = (server: string, name: string) => ({ kind: 'tool' as const, server, name });

describe('policies: Cedar entities, checks and decisions', () => {
  it('builds the principal with its groups and role as parents, and the resource in its server', () => {
    const p = principalEntities(alice);
    assert.deepEqual(p.uid, { type: 'Mcpd::User', id: 'alice' });
    assert.deepEqual(p.entities[0], {
      uid: p.uid,
      attrs: { name: 'alice', role: 'client', source: 'scoped-token' },
      parents: [
        { type: 'Mcpd::Group', id: 'dev' },
        { type: 'Mcpd::Group', id: 'ops' },
        { type: 'Mcpd::Role', id: 'client' },
      ],
    });
    const r = resourceEntities(tool('gitea', 'get_me'));
    assert.deepEqual(r.entities[0], {
      uid: { type: 'Mcpd::Tool', id: 'gitea/get_me' },
      attrs: { server: 'gitea', name: 'get_me' },
      parents: [{ type: 'Mcpd::Server', id: 'gitea' }],
    });
    assert.equal(describeResource({ kind: 'resource', server: 's', uri: 'file:///x' }), 'Mcpd::Resource::"s/file:///x"');
    assert.notEqual(principalKey(alice), principalKey({ ...alice, groups: ['dev'] }), 'groups are part of what is cached');
    assert.deepEqual(lineColumn('ab\ncd\nef', 7), { line: 3, column: 2 });
  });

  it('refuses policies that do not parse or do not fit the schema, naming the line and column', () => {
    assert.deepEqual(checkPolicyText('permit(principal, action, resource);'), []);
    const [parse] = checkPolicyText('permit(principal, action, resource);\npermit(principal, actoin, resource);');
    assert.equal(parse.line, 2);
    assert.equal(parse.column, 19);
    assert.match(parse.message, /invalid variable in the policy scope: actoin/);
    const [typo] = checkPolicyText('permit(principal, action == Mcpd::Action::"tools/call", resource)\nwhen { resource.nme == "x" };');
    assert.equal(typo.line, 2);
    assert.match(typo.message, /attribute `nme` on entity type `Mcpd::Tool` not found.*did you mean `name`/);
    const [action] = checkPolicyText('permit(principal, action == Mcpd::Action::"tools/delete", resource);');
    assert.match(action.message, /tools\/delete/);
    assert.ok(!policyDocumentSchema.safeParse({ name: 'x', policy: '' }).success);
  });

  it('allows everything with no policy; with policies, Cedar decides (permit needed, forbid wins) and says which policy', () => {
    const engine = new PolicyEngine();
    assert.equal(engine.loaded, false);
    engine.load({ revision: 0, policies: [] });
    assert.deepEqual(engine.decide(bob, 'tools/call', tool('gitea', 'get_me')), { allowed: true, decidedBy: 'no policy' });
    const at = '2026-11-27T06:00:00Z';
    engine.load({
      revision: 1,
      policies: [
        { name: 'dev-tools', policy: 'permit(principal in Mcpd::Group::"dev", action, resource in Mcpd::Server::"gitea");', createdAt: at, updatedAt: at },
        {
          name: 'no-hang',
          policy:
            'forbid(principal, action == Mcpd::Action::"tools/call", resource == Mcpd::Tool::"gitea/hang");\npermit(principal in Mcpd::Role::"client", action == Mcpd::Action::"tools/list", resource) when { resource.name == "echo" };',
          createdAt: at,
          updatedAt: at,
        },
      ],
    });
    assert.deepEqual(engine.decide(alice, 'tools/call', tool('gitea', 'get_me')), { allowed: true, decidedBy: 'policy dev-tools' });
    assert.deepEqual(engine.decide(alice, 'tools/call', tool('gitea', 'hang')), { allowed: false, decidedBy: 'policy no-hang#1' });
    assert.deepEqual(engine.decide(bob, 'tools/call', tool('gitea', 'get_me')), { allowed: false, decidedBy: 'policy (no permit matched)' });
    assert.deepEqual(engine.decide(bob, 'tools/list', tool('other', 'echo')), { allowed: true, decidedBy: 'policy no-hang#2' });
    assert.equal(engine.decide(alice, 'tools/call', tool('other', 'echo')).allowed, false);
    // Cached per principal: another principal's groups do not leak into it.
    assert.equal(engine.decide({ ...bob, groups: ['dev'] }, 'tools/call', tool('gitea', 'get_me')).allowed, true);
    engine.load({ revision: 2, policies: [] });
    assert.equal(engine.decide(alice, 'tools/call', tool('gitea', 'hang')).allowed, true, 'deleting every policy restores allow');
  });

  it('finds the file line where a block-scalar policy starts', () => {
    const text = 'name: a\nimage: x\n---\nkind: Policy\nname: p\npolicy: |\n  permit(principal, action, resource);\n  forbid(principal, action, resource);\n';
    assert.equal(policyFirstLine(text, 1), 7);
    assert.equal(policyFirstLine('kind: Policy\nname: p\npolicy: "permit(principal, action, resource);"\n', 0), 3);
    assert.equal(policyFirstLine('- kind: Policy\n  name: p\n  policy: x\n', 0), undefined);
  });
});
