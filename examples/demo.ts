/**
 * `npm start`: the gateway on the default routes.yaml, which has the gateway run the demo upstream itself (the
 * process scaler starts dist/examples/echo-server.js on free loopback ports, one instance at first, up to four under
 * load). `npm run demo:load` in another terminal makes it scale. Arguments after `npm start --` go to `gantry start`
 * (e.g. `--pid-file gantry.pid`).
 *
 * Signals: the gateway runs in this process, and the start script `exec`s it, so npm's only child is this process and
 * npm passes SIGTERM and SIGINT (Ctrl-C) on to it: the gateway drains and stops the instances. npm passes no other
 * signal on, and SIGHUP or SIGUSR2 sent to npm's pid end npm; send those to the pid printed below.
 */
process.stdout.write(`gateway pid ${process.pid} (kill -HUP ${process.pid} reloads); try: curl -s localhost:8080/echo/hello   then: npm run demo:load\n`);
process.argv.splice(2, process.argv.length, 'start', '-c', process.env.GANTRY_CONFIG ?? 'routes.yaml', ...process.argv.slice(2));
await import('../gateway/cli.js');
