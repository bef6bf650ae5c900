/**
 * The gateway as its own process for the benchmark (as in mcpd, the client and
 * the gateway do not share an event loop). Started with the upstream target as
 * JSON in argv; tells its parent { ready: port } over IPC; exits on disconnect.
 */
import express from 'express';
import Dockerode from 'dockerode';
import { Gateway } from '../src/gateway/gateway';
import { mountGateway } from '../src/gateway/http';
import type { UpstreamTarget } from '../src/domain/routing';

async function main(): Promise<void> {
  const target = JSON.parse(process.argv[2]) as UpstreamTarget;
  const port = Number(process.argv[3]);
  const gateway = new Gateway({ docker: new Dockerode() });
  await gateway.attach(target);
  const app = express();
  mountGateway(app, gateway);
  const server = app.listen(port, '127.0.0.1', () => process.send?.({ ready: port }));
  process.on('disconnect', () => {
    server.close();
    void gateway.close().finally(() => process.exit(0));
  });
}

main().catch((error) => {
  process.send?.({ error: (error as Error).message });
  process.exit(1);
});
