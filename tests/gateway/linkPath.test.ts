import assert from 'node:assert/strict';
import { LINK_PREFIX, linkInstanceUrl, matchLinkPath } from '../../src/gateway/http';

describe('gateway link paths', () => {
  it('names the listing, an instance and its logs, with the instance id decoded', () => {
    const instance = 'mcp-instance:files:0';
    const url = linkInstanceUrl('http://127.0.0.1:7410/', instance);
    assert.equal(url, `http://127.0.0.1:7410${LINK_PREFIX}/mcp-instance%3Afiles%3A0`);
    const path = url.slice('http://127.0.0.1:7410'.length);
    assert.deepEqual(matchLinkPath(`${LINK_PREFIX}?after=3&wait=25000`), { listing: true });
    assert.deepEqual(matchLinkPath(path), { instanceId: instance });
    assert.deepEqual(matchLinkPath(`${path}/logs?tail=all&follow=true`), { logsOf: instance });
  });

  it('leaves every other path to the API and the MCP endpoints', () => {
    for (const other of [
      undefined,
      '/mcp',
      '/api/v1/instances/x/logs',
      `${LINK_PREFIX}/`,
      `${LINK_PREFIX}/x/events`,
      `${LINK_PREFIX}/x/logs/more`,
      `${LINK_PREFIX}/%E0%A4%A/logs`,
      `${LINK_PREFIX}extra`,
    ]) {
      assert.equal(matchLinkPath(other), undefined, String(other));
    }
  });
});
