import { readFile } from 'node:fs/promises';
import t from 'tap';
import { GatewayMetrics } from '../../gateway/admin/metrics.js';
import { exposedText } from '../../gateway/admin/request-series.js';
import { promTypes } from '../helpers/prom-text.js';

t.test('every exported metric is documented in docs/metrics.md with its type', async (t) => {
  const doc = await readFile(new URL('../../../docs/metrics.md', import.meta.url), 'utf8');
  const metrics = new GatewayMetrics({ current: () => undefined, version: 'test' });
  const types = promTypes(await exposedText(metrics.expose()));
  t.ok(types.size > 40, `${types.size} metric families`);
  for (const name of metrics.names()) {
    t.match(doc, new RegExp(`\\| \`${name}\` \\| ${types.get(name)} \\|`), `${name} (${types.get(name)})`);
  }
});

t.test('docs/metrics.md documents no metric that does not exist', async (t) => {
  const doc = await readFile(new URL('../../../docs/metrics.md', import.meta.url), 'utf8');
  const names = new GatewayMetrics({ current: () => undefined, version: 'test' }).names();
  // prom-client exports these from /proc: on other systems they are documented but absent.
  if (process.platform !== 'linux') names.push('process_virtual_memory_bytes', 'process_heap_bytes', 'process_open_fds', 'process_max_fds');
  const documented = [...doc.matchAll(/^\| `([a-z_:]+)` \| (?:counter|gauge|histogram) \|/gm)].map((m) => m[1]);
  t.same(documented.filter((n) => !names.includes(n as string)), []);
});
