import { readFile } from 'node:fs/promises';
import t from 'tap';
import { ERRORS } from '../../gateway/errors.js';

t.test('every error code is documented in docs/errors.md with its status and its gRPC status', async (t) => {
  const doc = await readFile(new URL('../../../docs/errors.md', import.meta.url), 'utf8');
  for (const [code, { status, grpc }] of Object.entries(ERRORS)) {
    t.match(doc, new RegExp(`\\| \`${code}\` \\| ${status} \\| ${grpc} \\|`), code);
  }
});
