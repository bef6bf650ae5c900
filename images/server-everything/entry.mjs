// Entry of the mcpd/server-everything image. The upstream server listens on every
// interface; here containers share the host network and must stay on loopback, so a
// listen() without a host binds to HOST (default 127.0.0.1). Then run upstream's CLI.
import net from 'node:net';

const defaultHost = process.env.HOST || '127.0.0.1';
const originalListen = net.Server.prototype.listen;
net.Server.prototype.listen = function listen(...args) {
  if ((typeof args[0] === 'number' || typeof args[0] === 'string') && /^\d+$/.test(String(args[0]))) {
    if (typeof args[1] !== 'string') args.splice(1, 0, defaultHost);
  }
  return originalListen.apply(this, args);
};

await import('@modelcontextprotocol/server-everything/dist/index.js');
