import t from 'tap';
import { jsonEqual } from '../../gateway/config/json-equal.js';
import { stableStringify } from '../../gateway/config/stable-stringify.js';
import { collectLocations, YamlLocations } from '../../gateway/config/yaml-locations.js';
import { YamlSource, type YamlPath } from '../../gateway/config/yaml-source.js';

const YAML = `listen: 127.0.0.1:0
services:
  users:
    discovery:
      type: static
      endpoints: ["http://10.0.0.5:8000", { url: "http://10.0.0.6:8000", weight: 2 }]
    empty:
    "8080": { a: 1 }
    scaling:
      scaler: { type: process, command: [node, app.js] }
      schedules:
        - { cron: "0 9 * * 1-5", min: 3 }
routes:
  - match: { path: /users }
    service: users
`;

t.test('positions collected under services: are those YamlSource finds, missing paths included', async (t) => {
  const source = new YamlSource(YAML);
  const table = new YamlLocations(collectLocations(source, ['services']));
  const paths: [YamlPath, string?][] = [
    [[]], [['services']], [['services', 'users']], [['services', 'users', 'discovery', 'type']],
    [['services', 'users', 'discovery', 'endpoints', 1, 'weight']], [['services', 'users', 'discovery', 'endpoints', 1], 'weight'],
    [['services', 'users', 'discovery'], 'colour'], [['services', 'users', 'discovery', 'endpoints', 7]],
    [['services', 'users', 'discovery', 'endpoints', '1']], [['services', 'users', 'empty']], [['services', 'users', 'empty', 'x']],
    [['services', 'users', 8080, 'a']], [['services', 'users', 'scaling', 'scaler', 'command', 0]],
    [['services', 'users', 'scaling', 'schedules', 0, 'cron']], [['services', 'users', 'scaling'], 'schedules'],
    [['services', 'nobody', 'discovery']], [['services'], 'users'],
  ];
  for (const [path, key] of paths) t.same(table.locate(path, key), source.locate(path, key), `${path.join('.')}${key ? ` key ${key}` : ''}`);
});

t.test('a document that is not a mapping locates everything at its start, like YamlSource', async (t) => {
  for (const text of ['', '- a\n- b\n', 'just text\n']) {
    const source = new YamlSource(text);
    t.same(new YamlLocations(collectLocations(source, ['services'])).locate(['services', 'x']), source.locate(['services', 'x']));
  }
});

t.test('jsonEqual agrees with comparing stableStringify forms', async (t) => {
  const cases: [unknown, unknown][] = [
    [{ a: 1, b: [1, { c: 'x' }] }, { b: [1, { c: 'x' }], a: 1 }],
    [{ a: 1, u: undefined }, { a: 1 }],
    [{ a: 1 }, { a: 1, b: null }],
    [{ a: [1, 2] }, { a: [2, 1] }],
    [{ a: { b: {} } }, { a: { b: [] } }],
    [[1, 'x', true, null], [1, 'x', true, null]],
    ['1', 1],
    [{ hosts: ['a.test'], methods: [] }, { hosts: ['a.test'], methods: ['GET'] }],
  ];
  for (const [a, b] of cases) t.equal(jsonEqual(a, b), stableStringify(a) === stableStringify(b), `${stableStringify(a)} vs ${stableStringify(b)}`);
});
