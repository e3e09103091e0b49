import { BlockList } from 'node:net';
import { parseCidr } from './client-address.js';
import type { Policy, PolicyBuildContext, PolicyExchange, PolicyKind, PolicyLoadContext, Refusal, Verdict } from './policy.js';

const FORBIDDEN: Refusal = { code: 'GW_ERR_FORBIDDEN', reason: 'ip' };

const cidrList = {
  type: 'array',
  minItems: 1,
  items: { type: 'string', minLength: 1 },
  description: 'IPv4 and IPv6 addresses or CIDR blocks, matched against the client address after server.trustedProxies.',
} as const;

function load(options: unknown, ctx: PolicyLoadContext): readonly string[] {
  const list = options as string[];
  list.forEach((entry, i) => { if (parseCidr(entry) === null) ctx.report([i], `"${entry}" is not an IP address or CIDR block`); });
  return list;
}

function create(name: string, kind: string, entries: readonly string[], ctx: PolicyBuildContext, allowListed: boolean): Policy {
  const list = new BlockList();
  for (const entry of entries) {
    const c = parseCidr(entry);
    if (c === null) continue;   // refused at load
    if (c.prefix === undefined) list.addAddress(c.address, c.family); else list.addSubnet(c.address, c.prefix, c.family);
  }
  const clientAddress = ctx.clientAddress;
  const step = {
    policy: name,
    kind,
    apply(ex: PolicyExchange): Verdict {
      const address = clientAddress(ex.req);
      const listed = list.check(address, address.includes(':') ? 'ipv6' : 'ipv4');
      return listed === allowListed ? undefined : FORBIDDEN;
    },
  };
  return { forRoute: () => step };
}

/** `ipAllow: [CIDR, ...]`: only clients inside one of the blocks pass; the others get 403. */
export const ipAllow: PolicyKind<readonly string[]> = {
  kind: 'ipAllow',
  optionsSchema: cidrList,
  load,
  create: (name, entries, ctx) => create(name, 'ipAllow', entries, ctx, true),
};

/** `ipDeny: [CIDR, ...]`: clients inside one of the blocks get 403; the others pass. */
export const ipDeny: PolicyKind<readonly string[]> = {
  kind: 'ipDeny',
  optionsSchema: cidrList,
  load,
  create: (name, entries, ctx) => create(name, 'ipDeny', entries, ctx, false),
};
