import t from 'tap';
import { normalizeTarget } from '../../gateway/routing/normalize-path.js';

t.test('leaves an already normal path and its query untouched', async (t) => {
  t.same(normalizeTarget('/api/users?x=1&y=%2F'), { path: '/api/users', search: '?x=1&y=%2F' });
  t.same(normalizeTarget('/'), { path: '/', search: '' });
  t.same(normalizeTarget('/a/'), { path: '/a/', search: '' });
});

t.test('removes dot-segments and merges slashes before matching', async (t) => {
  const cases: [string, string][] = [
    ['/api/../admin', '/admin'], ['/api/./x', '/api/x'], ['//admin', '/admin'], ['/a//b///c', '/a/b/c'],
    ['/a/b/..', '/a/'], ['/a/b/.', '/a/b/'], ['/../../etc/passwd', '/etc/passwd'], ['/a/.../b', '/a/.../b'],
    ['/a/..b/c', '/a/..b/c'],
  ];
  for (const [input, path] of cases) t.equal(normalizeTarget(input)?.path, path, input);
});

t.test('decodes unreserved escapes so /%61dmin cannot bypass a route for /admin', async (t) => {
  t.equal(normalizeTarget('/%61dmin')?.path, '/admin');
  t.equal(normalizeTarget('/caf%c3%a9')?.path, '/caf%C3%A9');
  t.equal(normalizeTarget('/a%20b')?.path, '/a%20b');
  t.equal(normalizeTarget('/%7euser')?.path, '/~user');
});

t.test('refuses encoded separators, NUL, encoded dot-segments, backslashes, fragments and bad escapes', async (t) => {
  for (const input of ['/api%2f..%2fadmin', '/api%2Fx', '/a%5cb', '/a%00b', '/api/%2e%2e/admin', '/api/%2E/x', '/a/.%2e/b',
    '/a\\b', '/a#frag', '/a%zz', '/a%4', '/a%', 'api', '*']) {
    t.equal(normalizeTarget(input), null, input);
  }
});
