/**
 * The gateway as its own process for the benchmark (as in mcpd, the client and
 * the gateway do not share an event loop). Started with the upstream target as
 * JSON in argv; tells its parent { ready: port } over IPC; exits on disconnect.
 */
import { createServer } from 'node:http';
import express from 'express';
import Dockerode from 'dockerode';
import { Gateway } from '../src/gateway/gateway';
import { matchGatewayPath, mountGateway } from '../src/gateway/http';
import type { UpstreamTarget } from '../src/contracts/routing';

async function main(): Promise<void> {
  const target = JSON.parse(process.argv[2]) as UpstreamTarget;
  const port = Number(process.argv[3]);
  const gateway = new Gateway({ docker: new Dockerode() });
  await gateway.attach(target);
  const app = express();
  const gatewayHttp = mountGateway(app, gateway);
  // As in src/main.ts, /mcp paths go to the gateway before express; BENCH_FRONT=express
  // measures the old arrangement (express routing every MCP request).
  const front = process.env.BENCH_FRONT === 'express'
    ? createServer(app)
    : createServer((req, res) => {
        const route = matchGatewayPath(req.url);
        if (route) void gatewayHttp.handle(req, res, route.server);
        else app(req, res);
      });
  const server = front.listen(port, '127.0.0.1', () => process.send?.({ ready: port }));
  process.on('disconnect', () => {
    server.close();
    void gateway.close().finally(() => process.exit(0));
  });
}

main().catch((error) => {
  process.send?.({ error: (error as Error).message });
  process.exit(1);
});
