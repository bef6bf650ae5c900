/**
 * freePort: a loopback port that no client socket can take before the caller listens on
 * it, because the OS never hands it out to outgoing connections.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { freePort } from '../../src/embedded/process';

describe('freePort', () => {
  it('is outside the ephemeral port range, and free to listen on', async () => {
    const [low, high] = fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    for (let i = 0; i < 20; i++) {
      const port = await freePort();
      assert.ok(port < low || port > high, `port ${port} is outside ${low}-${high}`);
      const server = net.createServer();
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, '127.0.0.1', resolve);
      });
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
