import { watch as watchFs, type FSWatcher } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { isMap, isSeq, LineCounter, parseDocument } from 'yaml';
import {
  endpointFromEntry, UpdateQueue, type DiscoveryPlugin, type DiscoveryUpdate, type Endpoint, type EndpointEntry,
} from '../../gateway/plugin-api/index.js';

interface FileOptions {
  path: string;
  /** The entry of the file to read; by default the service's name. */
  key?: string;
  pollIntervalMs: number;
  debounceMs: number;
}

/**
 * Parses the endpoints file: a mapping of names to endpoint lists, in YAML or JSON (JSON is YAML). Throws an Error
 * whose message says where the file is wrong, so the log tells an operator what to fix.
 */
export function parseEndpointsFile(text: string, file: string, key: string): Endpoint[] {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number | undefined) => {
    const p = lines.linePos(offset ?? 0);
    return `${file}:${p.line}:${p.col}`;
  };
  if (doc.errors.length) throw new Error(`${at(doc.errors[0]?.pos[0])}: ${doc.errors[0]?.message}`);
  if (!isMap(doc.contents)) throw new Error(`${file}: must be a mapping of service names to endpoint lists${text.trim() ? '' : ' (the file is empty)'}`);
  const list = doc.contents.get(key, true);
  if (list === undefined) throw new Error(`${file}: no entry "${key}"`);
  if (!isSeq(list)) throw new Error(`${at(doc.contents.range?.[0])}: ${key}: must be a list of endpoints`);
  return list.items.map((node, i) => {
    const entry = (node as { toJSON(): unknown }).toJSON() as unknown;
    const where = `${at((node as { range?: [number] }).range?.[0])}: ${key}[${i}]`;
    const ok = typeof entry === 'string' || (entry !== null && typeof entry === 'object' && typeof (entry as { url?: unknown }).url === 'string');
    if (!ok) throw new Error(`${where}: an endpoint is a URL or { url, weight, metadata }`);
    const e = entry as Exclude<EndpointEntry, string> | string;
    if (typeof e === 'object') {
      const extra = Object.keys(e).filter((k) => !['url', 'weight', 'metadata'].includes(k));
      if (extra.length) throw new Error(`${where}: unknown field "${extra[0]}"`);
      if (e.weight !== undefined && !(Number.isInteger(e.weight) && e.weight >= 1 && e.weight <= 1000)) {
        throw new Error(`${where}: weight must be an integer from 1 to 1000`);
      }
      if (e.metadata !== undefined && (e.metadata === null || typeof e.metadata !== 'object' || Object.values(e.metadata).some((v) => typeof v !== 'string'))) {
        throw new Error(`${where}: metadata must map names to strings`);
      }
    }
    try {
      return endpointFromEntry(e);
    } catch (err) {
      throw new Error(`${where}: ${(err as Error).message}`);
    }
  });
}

/**
 * Endpoints from a file that something else writes (a config-management run, a sidecar, a person). The directory is
 * watched rather than the file, so a writer that renames a temporary file over it (the atomic way) is seen; a poll
 * of the file's identity backs fs.watch up where it is unreliable (network and some container file systems).
 * A file that cannot be read or parsed keeps the last endpoints: the watch sends an `error` update and goes on.
 */
export const fileDiscovery: DiscoveryPlugin<FileOptions> = {
  kind: 'discovery',
  type: 'file',
  optionsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['path'],
    properties: {
      path: { type: 'string', minLength: 1, description: "YAML or JSON file; relative paths start at the routes file's directory." },
      key: { type: 'string', minLength: 1, description: "The file's entry for this service (default: the service name)." },
      pollIntervalMs: { type: 'integer', minimum: 100, maximum: 3_600_000, default: 2000 },
      debounceMs: { type: 'integer', minimum: 0, maximum: 10_000, default: 50 },
    },
  },
  create(options, ctx) {
    const file = ctx.resolvePath(options.path);
    return {
      async *watch(service: string, signal: AbortSignal): AsyncIterable<DiscoveryUpdate> {
        const key = options.key ?? service;
        const queue = new UpdateQueue<DiscoveryUpdate>();
        let lastText: string | null = null;
        let lastIdentity = '';
        let loading: Promise<void> | null = null;
        let again = false;

        async function loadOnce(): Promise<void> {
          let text: string;
          try {
            const s = await stat(file);
            lastIdentity = `${s.ino}:${s.size}:${s.mtimeMs}`;
            text = await readFile(file, 'utf8');
          } catch (err) {
            lastIdentity = '';
            lastText = null;
            queue.push({ kind: 'error', reason: `${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` });
            return;
          }
          if (text === lastText) return;
          lastText = text;
          try {
            const endpoints = parseEndpointsFile(text, file, key);
            ctx.log.debug({ file, endpoints: endpoints.length }, 'endpoints file read');
            queue.push({ kind: 'reset', endpoints });
          } catch (err) {
            queue.push({ kind: 'error', reason: (err as Error).message });
          }
        }
        // Loads never overlap; changes seen during one make exactly one more.
        function load(): Promise<void> {
          if (loading) { again = true; return loading; }
          loading = (async () => {
            do { again = false; await loadOnce(); } while (again && !signal.aborted);
          })().finally(() => { loading = null; });
          return loading;
        }

        let debounce: NodeJS.Timeout | undefined;
        const soon = () => { clearTimeout(debounce); debounce = setTimeout(() => void load(), options.debounceMs); };
        let watcher: FSWatcher | undefined;
        try {
          watcher = watchFs(dirname(file), { persistent: false }, (_event, name) => {
            if (name === null || name.toString() === basename(file)) soon();
          });
          watcher.on('error', () => { watcher?.close(); watcher = undefined; });   // the poll carries on alone
        } catch (err) {
          ctx.log.warn({ file, err: (err as Error).message }, 'cannot watch the directory; polling only');
        }
        const poll = setInterval(() => {
          stat(file).then(
            (s) => { if (`${s.ino}:${s.size}:${s.mtimeMs}` !== lastIdentity) void load(); },
            () => { if (lastIdentity !== '' || lastText !== null) void load(); },
          );
        }, options.pollIntervalMs);
        const stop = () => { clearInterval(poll); clearTimeout(debounce); watcher?.close(); queue.end(); };
        if (signal.aborted) stop(); else signal.addEventListener('abort', stop, { once: true });
        try {
          await load();
          yield* queue;
        } finally {
          signal.removeEventListener('abort', stop);
          clearInterval(poll);
          clearTimeout(debounce);
          watcher?.close();
        }
      },
      async close() {},
    };
  },
};
