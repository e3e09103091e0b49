/**
 * `npm start`: the gateway on the default routes.yaml, which has the gateway run the demo upstream itself (the
 * process scaler starts dist/examples/echo-server.js on free loopback ports, one instance at first, up to four under
 * load). `npm run demo:load` in another terminal makes it scale. `kill -HUP <pid>` reloads, `kill -TERM <pid>` drains
 * and stops the instances, as with `gantry start`.
 */
process.stdout.write(`gateway pid ${process.pid}; try: curl -s localhost:8080/echo/hello   then: npm run demo:load\n`);
process.argv.splice(2, process.argv.length, 'start', '-c', process.env.GANTRY_CONFIG ?? 'routes.yaml');
await import('../gateway/cli.js');
