const { Worker, bundleWorkflowCode } = require('@temporalio/worker');
const { createTimeSkippingEnv } = require('./dist/tests/workflows/fixtures/env');
const { validateSpec } = require('./dist/src/config/spec');
const { statusQuery, containerExitedSignal } = require('./dist/workflows/messages');
(async () => {
  const env = await createTimeSkippingEnv();
  await env.connection.operatorService.addSearchAttributes({ namespace: 'default', searchAttributes: { McpServer: 2, McpInstanceStatus: 2, McpHealth: 2 } });
  const bundle = await bundleWorkflowCode({ workflowsPath: require.resolve('./dist/tests/workflows/instance-bundle') });
  let n = 0;
  const acts = {
    startContainer: async () => ({ containerId: 'c' + (++n), reused: false }),
    stopContainer: async () => null, attachUpstream: async () => ({}), setReady: async () => {}, inspectContainer: async () => null,
    probe: async () => ({ ok: true, reason: null }),
  };
  const w1 = await Worker.create({ connection: env.nativeConnection, taskQueue: 'mcpd', workflowBundle: bundle, activities: { resolveEnv: async () => [] } });
  const w2 = await Worker.create({ connection: env.nativeConnection, taskQueue: 'mcpd-node-n', activities: acts });
  const r = Promise.all([w1.run(), w2.run()]);
  const spec = validateSpec({ name: 't-h2-dbg', image: 'x' }).spec;
  const h = await env.client.workflow.start('instanceWorkflow', { taskQueue: 'mcpd', workflowId: 'mcp-instance:t-h2-dbg:0', args: [{ server: 't-h2-dbg', ordinal: 0, spec, node: 'n' }] });
  for (let i = 0; i < 50; i++) { const v = await h.query(statusQuery); if (v.health === 'healthy') break; await new Promise(r => setTimeout(r, 100)); }
  console.log('view', (await h.query(statusQuery)).status);
  await h.signal(containerExitedSignal, { containerId: 'old', exitCode: 1, reason: 'x' });
  await env.sleep(1000);
  console.log('after sleep', (await h.query(statusQuery)).status);
  await h.signal(containerExitedSignal, { containerId: 'c1', exitCode: 1, reason: 'x' });
  for (let i = 0; i < 60; i++) { const v = await h.query(statusQuery); if (v.status === 'ERROR') { console.log('ERROR reached', i); break; } await new Promise(r => setTimeout(r, 50)); }
  const hist = await h.fetchHistory();
  for (const e of hist.events) console.log(e.eventId.toString(), Object.keys(e).find(k => k.endsWith('Attributes')), JSON.stringify(e.workflowTaskFailedEventAttributes?.failure?.message ?? ''));
  const ch = await env.client.workflow.getHandle('mcp-instance:t-h2-dbg:0/probe').fetchHistory();
  console.log('--- child');
  for (const e of ch.events) console.log(e.eventId.toString(), Object.keys(e).find(k => k.endsWith('Attributes')));
  w1.shutdown(); w2.shutdown(); await r; await env.teardown();
})().catch(e => { console.error(e); process.exit(1); });
