import assert from 'node:assert/strict';
import { describeFieldErrors, validateSpec } from '../../src/contracts/spec';

function errorsOf(input: unknown): Record<string, string> {
  const result = validateSpec(input);
  assert.equal(result.ok, false, 'the spec should be rejected');
  if (result.ok) return {};
  return Object.fromEntries(result.errors.map((e) => [e.field, e.message]));
}

describe('validateSpec', () => {
  it('accepts a good spec and applies the defaults', () => {
    const result = validateSpec({
      name: 'gitea',
      image: 'mcpd/gitea-like:dev',
      env: [
        { name: 'GITEA_HOST', value: 'http://127.0.0.1:3000' },
        { name: 'GITEA_TOKEN', secretRef: { name: 'gitea', key: 'token' } },
      ],
      healthCheck: { tool: 'get_me' },
    });
    assert.ok(result.ok, JSON.stringify(!result.ok && result.errors));
    const spec = result.spec;
    assert.equal(spec.transport, 'stdio');
    assert.equal(spec.replicas, 1);
    assert.deepEqual(spec.args, []);
    assert.deepEqual(spec.retry, { fastDelaySeconds: 30, fastAttempts: 5, slowDelaySeconds: 300, stableSeconds: 600 });
    assert.deepEqual(spec.healthCheck, { tool: 'get_me', arguments: {}, intervalSeconds: 60, timeoutSeconds: 10, failureThreshold: 3 });
    assert.deepEqual(spec.resources, {});
    assert.deepEqual(spec.env[1], { name: 'GITEA_TOKEN', secretRef: { name: 'gitea', key: 'token' } });
  });

  it('keeps custom retry values and fills the missing ones', () => {
    const result = validateSpec({ name: 'x', command: ['node', 'server.js'], retry: { fastDelaySeconds: 5 } });
    assert.ok(result.ok);
    assert.deepEqual(result.spec.retry, { fastDelaySeconds: 5, fastAttempts: 5, slowDelaySeconds: 300, stableSeconds: 600 });
  });

  it('names a bad server name', () => {
    assert.match(errorsOf({ name: 'Gitea_Server', image: 'x' }).name, /lowercase/);
  });

  it('requires exactly one of image, packageName or command', () => {
    assert.match(errorsOf({ name: 'a' }).image, /exactly one of "image", "packageName" or "command"/);
    assert.match(errorsOf({ name: 'a', image: 'x', command: ['y'] }).image, /exactly one/);
  });

  it('requires a port for http and sse', () => {
    assert.match(errorsOf({ name: 'a', image: 'x', transport: 'http' }).port, /required for transport "http"/);
    assert.ok('transport' in errorsOf({ name: 'a', image: 'x', transport: 'websocket' }));
    assert.ok('port' in errorsOf({ name: 'a', image: 'x', transport: 'sse', port: 70000 }));
  });

  it('names the env entry that has both or neither of value and secretRef', () => {
    assert.match(errorsOf({ name: 'a', image: 'x', env: [{ name: 'A', value: '1' }, { name: 'B' }] })['env.1'], /exactly one of "value" or "secretRef"/);
    assert.match(errorsOf({ name: 'a', image: 'x', env: [{ name: 'A', value: '1', secretRef: { name: 's', key: 'k' } }] })['env.0'], /exactly one/);
  });

  it('names a bad env variable name, a bad secret name, an empty key and a duplicate', () => {
    assert.ok('env.0.name' in errorsOf({ name: 'a', image: 'x', env: [{ name: '1BAD', value: 'v' }] }));
    assert.ok('env.0.secretRef.name' in errorsOf({ name: 'a', image: 'x', env: [{ name: 'T', secretRef: { name: 'Bad/Name', key: 'k' } }] }));
    assert.ok('env.0.secretRef.key' in errorsOf({ name: 'a', image: 'x', env: [{ name: 'T', secretRef: { name: 'ok', key: '' } }] }));
    assert.match(
      errorsOf({
        name: 'a',
        image: 'x',
        env: [
          { name: 'T', value: '1' },
          { name: 'T', value: '2' },
        ],
      })['env.1.name'],
      /duplicates "T"/,
    );
  });

  it('names bad retry, health check and resource fields', () => {
    assert.ok('retry.fastAttempts' in errorsOf({ name: 'a', image: 'x', retry: { fastAttempts: -1 } }));
    assert.ok('retry.slowDelaySeconds' in errorsOf({ name: 'a', image: 'x', retry: { slowDelaySeconds: 'soon' } }));
    assert.ok('healthCheck.tool' in errorsOf({ name: 'a', image: 'x', healthCheck: { tool: '' } }));
    assert.ok('healthCheck.failureThreshold' in errorsOf({ name: 'a', image: 'x', healthCheck: { tool: 't', failureThreshold: 0 } }));
    assert.ok('resources.memory' in errorsOf({ name: 'a', image: 'x', resources: { memory: 'lots' } }));
    assert.ok('replicas' in errorsOf({ name: 'a', image: 'x', replicas: -1 }));
  });

  it('takes a security block: capability names normalized, read-only root filesystem, user; absent means the hardened defaults', () => {
    const plain = validateSpec({ name: 'a', image: 'x' });
    assert.ok(plain.ok);
    assert.equal(plain.spec.security, undefined, 'no security block is added, so specs stored before it existed compare equal');
    const result = validateSpec({
      name: 'a',
      image: 'x',
      security: { capabilities: ['net_bind_service', 'CAP_CHOWN'], readOnlyRootFilesystem: true, user: '1000:1000' },
    });
    assert.ok(result.ok, JSON.stringify(!result.ok && result.errors));
    assert.deepEqual(result.spec.security, { capabilities: ['NET_BIND_SERVICE', 'CHOWN'], readOnlyRootFilesystem: true, user: '1000:1000' });
    for (const user of ['node', '1000', 'app:app', '65534:65534']) assert.ok(validateSpec({ name: 'a', image: 'x', security: { user } }).ok, user);
  });

  it('names a bad security field: ALL, an unknown capability, a duplicate, a bad user, an unknown key', () => {
    assert.deepEqual(errorsOf({ name: 'a', image: 'x', security: { capabilities: ['all'] } }), {
      'security.capabilities.0': 'ALL is not allowed: name each capability the server needs (e.g. NET_BIND_SERVICE)',
    });
    assert.deepEqual(errorsOf({ name: 'a', image: 'x', security: { capabilities: ['CHOWN', 'SYS_FOO'] } }), {
      'security.capabilities.1': 'is not a Linux capability (e.g. NET_BIND_SERVICE, CHOWN; see capabilities(7))',
    });
    assert.deepEqual(errorsOf({ name: 'a', image: 'x', security: { capabilities: ['CHOWN', 'cap_chown'] } }), {
      'security.capabilities': 'lists a capability twice',
    });
    assert.match(errorsOf({ name: 'a', image: 'x', security: { user: 'root --privileged' } })['security.user'], /must be a user name or uid/);
    assert.deepEqual(errorsOf({ name: 'a', image: 'x', security: { privileged: true } }), { 'security.privileged': 'unknown field "privileged"' });
  });

  it('rejects unknown fields by name', () => {
    const result = validateSpec({ name: 'a', image: 'x', restartPolicy: 'always' });
    assert.equal(result.ok, false);
    if (!result.ok) assert.match(describeFieldErrors(result.errors), /restartPolicy/);
  });
});
