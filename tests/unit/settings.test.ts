import assert from 'node:assert/strict';
import path from 'node:path';
import { DEFAULT_START_CONCURRENCY, DEFAULT_WORKFLOW_CACHE, NODE_CAPACITY_MAX, START_CONCURRENCY_MAX, loadSettings } from '../../src/config/settings';
import { DEFAULT_NODE_CAPACITY } from '../../src/contracts/node';

describe('settings from the environment', () => {
  it('uses the defaults when nothing is set, and an empty variable counts as unset', () => {
    const settings = loadSettings({ MCPD_PORT: '', MCPD_NODE: 'n1' });
    assert.equal(settings.apiPort, 7400);
    assert.equal(settings.apiHost, '127.0.0.1');
    assert.equal(settings.temporalAddress, '127.0.0.1:7233');
    assert.equal(settings.baoAddress, 'http://127.0.0.1:8200');
    assert.equal(settings.dataDir, path.resolve('.data'));
    assert.deepEqual(settings.roles, { api: true, gateway: true, worker: true });
    assert.equal(settings.logLevel, 'info');
  });

  it('reads every variable it knows', () => {
    const settings = loadSettings({
      MCPD_PORT: '8080',
      MCPD_ROLES: 'api, gateway',
      VAULT_ADDR: 'https://bao.example:8200',
      VAULT_TOKEN: 'not-checked',
      MCPD_LOG_LEVEL: 'debug',
    });
    assert.equal(settings.apiPort, 8080);
    assert.deepEqual(settings.roles, { api: true, gateway: true, worker: false });
    assert.equal(settings.baoAddress, 'https://bao.example:8200');
    assert.equal(settings.baoToken, 'not-checked');
    assert.equal(settings.logLevel, 'debug');
  });

  it('a bad MCPD_PORT is one line naming the variable and the value', () => {
    assert.throws(() => loadSettings({ MCPD_PORT: 'abc' }), { name: 'SettingsError', message: 'MCPD_PORT: must be a port number 1-65535, got "abc"' });
    assert.throws(() => loadSettings({ MCPD_PORT: '70000' }), /^SettingsError: MCPD_PORT: must be a port number 1-65535, got "70000"$/);
  });

  it('MCPD_STDIO_MAX_LINE_BYTES takes a byte count, and a bad one names the variable and the range', () => {
    assert.equal(loadSettings({}).stdioMaxLineBytes, undefined, 'unset: the gateway default');
    assert.equal(loadSettings({ MCPD_STDIO_MAX_LINE_BYTES: '1048576' }).stdioMaxLineBytes, 1_048_576);
    assert.throws(
      () => loadSettings({ MCPD_STDIO_MAX_LINE_BYTES: '16Mi' }),
      /^SettingsError: MCPD_STDIO_MAX_LINE_BYTES: must be a number of bytes from 1024 to 1073741824, got "16Mi"$/,
    );
    assert.throws(() => loadSettings({ MCPD_STDIO_MAX_LINE_BYTES: '10' }), /MCPD_STDIO_MAX_LINE_BYTES: must be a number of bytes/);
  });

  it('a bad MCPD_ROLES names the variable and the roles it takes', () => {
    assert.throws(() => loadSettings({ MCPD_ROLES: 'api,web' }), {
      message: 'MCPD_ROLES: must be a comma-separated list of api, gateway, worker, got "api,web"',
    });
  });

  it('names every bad variable on one line and never repeats a token', () => {
    let message = '';
    try {
      loadSettings({ MCPD_PORT: '-1', BAO_ADDR: 'bao:8200', MCPD_LOG_LEVEL: 'loud', BAO_TOKEN: 's.secret-token-value' });
    } catch (err) {
      message = (err as Error).message;
    }
    assert.doesNotMatch(message, /\n/);
    for (const name of ['MCPD_PORT', 'BAO_ADDR', 'MCPD_LOG_LEVEL']) assert.match(message, new RegExp(`${name}: `));
    assert.doesNotMatch(message, /secret-token-value/);
  });

  it('MCPD_START_CONCURRENCY bounds container starts: a default when unset, an integer from 1 to the maximum otherwise', () => {
    assert.equal(loadSettings({}).startConcurrency, DEFAULT_START_CONCURRENCY);
    assert.equal(loadSettings({ MCPD_START_CONCURRENCY: '' }).startConcurrency, DEFAULT_START_CONCURRENCY);
    assert.equal(loadSettings({ MCPD_START_CONCURRENCY: '32' }).startConcurrency, 32);
    assert.equal(loadSettings({ MCPD_START_CONCURRENCY: String(START_CONCURRENCY_MAX) }).startConcurrency, START_CONCURRENCY_MAX);
    for (const bad of ['0', '-4', '2.5', 'many', String(START_CONCURRENCY_MAX + 1)]) {
      assert.throws(() => loadSettings({ MCPD_START_CONCURRENCY: bad }), {
        name: 'SettingsError',
        message: `MCPD_START_CONCURRENCY: must be an integer from 1 to ${START_CONCURRENCY_MAX}, got "${bad}"`,
      });
    }
  });

  it('MCPD_WORKFLOW_CACHE caps the cached workflows: a default when unset, at least 2 otherwise', () => {
    assert.equal(loadSettings({}).workflowCacheSize, DEFAULT_WORKFLOW_CACHE);
    assert.equal(loadSettings({ MCPD_WORKFLOW_CACHE: '' }).workflowCacheSize, DEFAULT_WORKFLOW_CACHE);
    assert.equal(loadSettings({ MCPD_WORKFLOW_CACHE: '200' }).workflowCacheSize, 200);
    for (const bad of ['0', '1', '-3', '2.5', 'lots']) {
      assert.throws(() => loadSettings({ MCPD_WORKFLOW_CACHE: bad }), {
        name: 'SettingsError',
        message: `MCPD_WORKFLOW_CACHE: must be an integer from 2 to 1000000, got "${bad}"`,
      });
    }
  });

  it('MCPD_NODE_LABELS and MCPD_NODE_CAPACITY describe the node; a bad entry is named', () => {
    const plain = loadSettings({});
    assert.deepEqual(plain.nodeLabels, {});
    assert.equal(plain.nodeCapacity, DEFAULT_NODE_CAPACITY);
    const set = loadSettings({ MCPD_NODE: 'b', MCPD_NODE_LABELS: 'disk=ssd, example.com/zone=west', MCPD_NODE_CAPACITY: '20' });
    assert.deepEqual(set.nodeLabels, { disk: 'ssd', 'example.com/zone': 'west' });
    assert.equal(set.nodeCapacity, 20);
    assert.throws(() => loadSettings({ MCPD_NODE_LABELS: 'disk=ssd,zone' }), {
      message: 'MCPD_NODE_LABELS: must be key=value pairs separated by commas: "zone" is not key=value',
    });
    assert.throws(() => loadSettings({ MCPD_NODE_LABELS: 'disk=ssd,disk=hdd' }), /MCPD_NODE_LABELS: .*"disk" is given twice/);
    assert.throws(() => loadSettings({ MCPD_NODE_LABELS: 'disk=s s' }), /MCPD_NODE_LABELS: .*"disk=s s": label values must be/);
    for (const bad of ['0', 'ten', String(NODE_CAPACITY_MAX + 1)]) {
      assert.throws(
        () => loadSettings({ MCPD_NODE_CAPACITY: bad }),
        new RegExp(`^SettingsError: MCPD_NODE_CAPACITY: must be an integer from 1 to ${NODE_CAPACITY_MAX} \\(instances\\), got "${bad}"$`),
      );
    }
    assert.throws(() => loadSettings({ MCPD_NODE: 'node b' }), /^SettingsError: MCPD_NODE: must be 1-128 letters/);
  });
});
