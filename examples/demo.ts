import { startEchoServer } from './echo-server.js';

/**
 * `npm start`: two demo upstreams on 127.0.0.1:3001 and :3002 in this process, then the gateway on the default
 * routes.yaml. `kill -HUP <pid>` reloads and `kill -TERM <pid>` drains, as with `gantry start`.
 */
const servers = await Promise.all([startEchoServer(3001, 'echo-a'), startEchoServer(3002, 'echo-b')]);
process.stdout.write('demo upstreams on http://127.0.0.1:3001 and http://127.0.0.1:3002\n');
process.stdout.write(`gateway pid ${process.pid}; try: curl -s localhost:8080/echo/hello\n`);
process.once('exit', () => { for (const s of servers) s.close(); });
process.argv.splice(2, process.argv.length, 'start', '-c', process.env.GANTRY_CONFIG ?? 'routes.yaml');
await import('../gateway/cli.js');
