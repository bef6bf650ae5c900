/**
 * One loopback address in front of every Temporal frontend, as a load balancer is in
 * front of them in production: each new TCP connection goes to the next frontend that
 * accepts it. The SDK's clients and workers take one address; when the node behind a
 * connection goes away, they reconnect through here and land on a node that answers.
 */
import net from 'node:net';

export interface FrontendProxy {
  address: string;
  close(): Promise<void>;
}

export async function startFrontendProxy(port: number, frontends: { host: string; port: number }[]): Promise<FrontendProxy> {
  let next = 0;
  const sockets = new Set<net.Socket>();
  const connectToAny = (attempt: number, client: net.Socket) => {
    if (attempt >= frontends.length) return void client.destroy();
    const target = frontends[next++ % frontends.length];
    const upstream = net.connect({ host: target.host, port: target.port });
    sockets.add(upstream);
    upstream.once('close', () => sockets.delete(upstream));
    let connected = false;
    upstream.on('error', () => {
      // Refused: that node is down, try the next one. After the connect, the client goes with it.
      if (!connected) connectToAny(attempt + 1, client);
      else client.destroy();
    });
    upstream.once('connect', () => {
      connected = true;
      client.once('error', () => upstream.destroy());
      client.once('close', () => upstream.destroy());
      upstream.once('close', () => client.destroy());
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
    });
  };
  const server = net.createServer({ pauseOnConnect: true }, (client) => {
    sockets.add(client);
    client.once('close', () => sockets.delete(client));
    connectToAny(0, client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return {
    address: `127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
