import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import net from 'node:net';

/** A port free for both TCP and UDP on `host` right now (for servers a test starts as a child process). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const server = net.createServer().listen(0, host);
    await once(server, 'listening');
    const port = (server.address() as net.AddressInfo).port;
    const udp = createSocket(net.isIP(host) === 6 ? 'udp6' : 'udp4');
    const ok = await new Promise<boolean>((resolve) => {
      udp.once('error', () => resolve(false));
      udp.bind(port, host, () => resolve(true));
    });
    udp.close();
    await new Promise((r) => server.close(r));
    if (ok) return port;
  }
  throw new Error('no free port');
}
