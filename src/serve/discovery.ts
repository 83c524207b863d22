// Instance discovery through DNS. A pool's instances may be listed as static addresses
// (HOST:PORT) or as a DNS name, `dns:///NAME:PORT` (gRPC's naming syntax), which stands for
// every A record of NAME: a Kubernetes headless Service resolves to one A record per ready pod.
// The frontend resolves the names before it starts and again every intervalMs; each pool's
// instance set then follows the records (Pool.setAddresses adds new instances and drains
// removed ones, whose in-flight work is retried on the others).
//
// Names are resolved with the system's resolver (getaddrinfo: /etc/hosts and the search
// domains of /etc/resolv.conf, as in a pod) or, when `servers` is given, by asking those DNS
// servers directly for A records (node's dns.promises.Resolver; tests point it at a DNS server
// of their own). A name that does not exist or has no A record (NXDOMAIN / NODATA: a headless
// Service with no ready pod) means no instance; any other failure (a timeout, SERVFAIL, no
// server) keeps the pool as it is until the next round succeeds.
import { Resolver, lookup } from 'node:dns/promises';
import { isIPv4 } from 'node:net';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Clock, Timer } from './clock.js';
import type { Pool } from './pool.js';

/** The port a `dns:///NAME` entry without one gets: the V2 gRPC port of `coded serve instance` and Triton. */
export const DEFAULT_GRPC_PORT = 8001;

export interface DnsTarget {
  name: string;
  port: number;
}

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,62}))*\.?$/;

/** Whether an instance entry is a DNS name to resolve (`dns:...`) rather than an address. */
export function isDnsEntry(entry: string): boolean {
  return entry.startsWith('dns:');
}

/**
 * Parse `dns:///NAME[:PORT]` (or `dns:NAME[:PORT]`); throws an error that names the entry and
 * the expected form. A DNS authority (`dns://SERVER/NAME`) is refused: the servers to ask are
 * the config's discovery.servers, for every name alike.
 */
export function parseDnsEntry(entry: string): DnsTarget {
  const form = 'expected dns:///NAME:PORT, e.g. dns:///coded-base.default.svc.cluster.local:8001';
  if (!isDnsEntry(entry)) throw new Error(`instance entry '${entry}' is not a DNS name (${form})`);
  let rest = entry.slice('dns:'.length);
  if (rest.startsWith('//')) {
    const slash = rest.indexOf('/', 2);
    if (slash < 0) throw new Error(`instance entry '${entry}': ${form}`);
    if (slash > 2)
      throw new Error(
        `instance entry '${entry}': a DNS server in the name is not supported; set "discovery": {"servers": [...]} in the frontend config instead`,
      );
    rest = rest.slice(slash + 1);
  }
  const m = /^([^:]+)(?::(\d+))?$/.exec(rest);
  if (m === null || !HOSTNAME.test(m[1]))
    throw new Error(`instance entry '${entry}': '${rest}' is not a host name with an optional port (${form})`);
  const port = m[2] === undefined ? DEFAULT_GRPC_PORT : Number(m[2]);
  if (!(port >= 1 && port <= 65535)) throw new Error(`instance entry '${entry}': port ${m[2]} is out of range 1..65535`);
  return { name: m[1], port };
}

/** DNS server addresses as dns.Resolver takes them: IPv4, [IPv6] or either with :PORT. */
function checkServer(s: string): string {
  const m = /^(\d+\.\d+\.\d+\.\d+)(?::(\d+))?$/.exec(s) ?? /^\[([0-9a-fA-F:]+)\](?::(\d+))?$/.exec(s);
  if (m === null || (s.includes('.') && !isIPv4(m[1])) || (m[2] !== undefined && !(Number(m[2]) >= 1 && Number(m[2]) <= 65535))) {
    throw new Error(`discovery server '${s}' is not an IP address with an optional port (e.g. 10.96.0.10 or 127.0.0.1:5353)`);
  }
  return s;
}

/** Config check: every dns: entry parses (the error names the pool and the entry). */
export function checkInstanceEntries(
  c: { pools: { base: { instances: string[] }; parity?: { instances: string[] }[]; workers?: Record<string, { instances: string[] }[]> } },
  source: string,
): void {
  const pools: [string, string[]][] = [
    ['base', c.pools.base.instances],
    ...(c.pools.parity ?? []).map((p, j): [string, string[]] => [`parity[${j}]`, p.instances]),
  ];
  for (const [name, list] of Object.entries(c.pools.workers ?? {}))
    list.forEach((p, j) => pools.push([`workers.${name}[${j}]`, p.instances]));
  for (const [name, entries] of pools) {
    for (const e of entries) {
      if (!isDnsEntry(e)) continue;
      try {
        parseDnsEntry(e);
      } catch (err) {
        throw new Error(`${source}: pools.${name}: ${(err as Error).message}`);
      }
    }
  }
}

export interface DiscoveryOptions {
  /** re-resolve every pool's names this often (ms) */
  intervalMs: number;
  /** DNS servers to ask for A records (default: the system resolver, with its search domains) */
  servers?: string[];
  /** per-query timeout when asking `servers` (ms, default 2000) */
  timeoutMs?: number;
  clock: Clock;
  log: Logger;
  events?: DiscoveryEvents;
}

export interface DiscoveryEvents {
  /** a refresh round finished (ok: every lookup answered) */
  round?(ok: boolean): void;
  /** a pool's instance set changed */
  changed?(pool: string, added: number, removed: number): void;
}

/** A DNS lookup whose failure means "unknown right now", not "no instances". */
class TransientLookupError extends Error {}

const NO_RECORDS = new Set(['ENOTFOUND', 'ENODATA', 'NXDOMAIN', 'NODATA']);

interface Watched {
  pool: Pool;
  entries: readonly string[];
}

export class Discovery {
  private readonly watched: Watched[] = [];
  private readonly resolve4: (name: string) => Promise<string[]>;
  private timer: Timer | null = null;
  private closed = false;
  private running: Promise<void> | null = null;
  /** refresh rounds begun, and completed by result */
  readonly rounds = { started: 0, ok: 0, failed: 0 };
  /** instance changes applied, over all pools */
  readonly changes = { added: 0, removed: 0 };

  constructor(private readonly o: DiscoveryOptions) {
    if (o.servers !== undefined && o.servers.length > 0) {
      const r = new Resolver({ timeout: o.timeoutMs ?? 2000, tries: 2 });
      r.setServers(o.servers.map(checkServer));
      this.resolve4 = (name) => r.resolve4(name);
    } else {
      this.resolve4 = async (name) => (await lookup(name, { all: true, family: 4 })).map((a) => a.address);
    }
  }

  /**
   * The addresses `entries` stand for now: static ones as they are, each DNS name as
   * IP:PORT per A record (sorted, without repeats). Throws when a lookup failed for a reason
   * other than "no such name / no records".
   */
  async resolve(entries: readonly string[]): Promise<string[]> {
    const out = new Set<string>();
    const lists = await Promise.all(
      entries.map(async (e) => {
        if (!isDnsEntry(e)) return [e];
        const t = parseDnsEntry(e);
        if (isIPv4(t.name)) return [`${t.name}:${t.port}`];
        let ips: string[];
        try {
          ips = await this.resolve4(t.name);
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code ?? '';
          if (NO_RECORDS.has(code)) ips = [];
          else throw new TransientLookupError(`resolving ${t.name}: ${code || (err as Error).message}`);
        }
        return ips.sort().map((ip) => `${ip}:${t.port}`);
      }),
    );
    for (const l of lists) for (const a of l) out.add(a);
    return [...out];
  }

  /** Keep `pool`'s instances equal to what `entries` resolve to (from the next refresh on). */
  watch(pool: Pool, entries: readonly string[]): void {
    this.watched.push({ pool, entries });
  }

  /** Whether any watched pool lists a DNS name (else there is nothing to re-resolve). */
  get dynamic(): boolean {
    return this.watched.some((w) => w.entries.some(isDnsEntry));
  }

  /**
   * Resolve every watched pool's entries now and apply the changes. A pool whose lookup failed
   * transiently keeps its instances. Concurrent calls share one round.
   */
  refresh(): Promise<void> {
    if (this.running !== null) return this.running;
    this.rounds.started++;
    this.running = this.refreshOnce().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async refreshOnce(): Promise<void> {
    let failed = false;
    await Promise.all(
      this.watched.map(async (w) => {
        let addresses: string[];
        try {
          addresses = await this.resolve(w.entries);
        } catch (e) {
          failed = true;
          this.o.log.warn({ pool: w.pool.o.name, error: (e as Error).message }, 'instance discovery failed; keeping the current instances');
          return;
        }
        if (this.closed) return;
        if (addresses.length === 0 && w.pool.addresses.length > 0)
          this.o.log.warn({ pool: w.pool.o.name, entries: w.entries }, 'instance discovery found no instances');
        const { added, removed } = w.pool.setAddresses(addresses);
        this.changes.added += added.length;
        this.changes.removed += removed.length;
        if (added.length + removed.length > 0) this.o.events?.changed?.(w.pool.o.name, added.length, removed.length);
      }),
    );
    if (failed) this.rounds.failed++;
    else this.rounds.ok++;
    this.o.events?.round?.(!failed);
  }

  /** Re-resolve every intervalMs until close() (only when a pool lists a DNS name). */
  start(): void {
    if (!this.dynamic || this.closed) return;
    const again = () => {
      if (this.closed) return;
      this.timer = this.o.clock.after(this.o.intervalMs, () => void this.refresh().finally(again));
    };
    again();
  }

  close(): void {
    this.closed = true;
    this.timer?.cancel();
    this.timer = null;
  }
}

/**
 * Metrics of the pools' instance sets: coded_pool_instances (instances taking work, per pool),
 * coded_pool_draining_instances (removed, still finishing requests), and the discovery's
 * coded_discovery_rounds_total{result} and coded_discovery_changes_total{pool,change}.
 * Returns the events to give the Discovery.
 */
export function poolInstanceMetrics(reg: Registry, pools: () => Iterable<[string, Pool]>): DiscoveryEvents {
  new Gauge({
    name: 'coded_pool_instances',
    help: 'instances per pool (static addresses and those found through DNS; healthy or not)',
    labelNames: ['pool'],
    registers: [reg],
    collect() {
      for (const [k, p] of pools()) this.set({ pool: k }, p.instances.length);
    },
  });
  new Gauge({
    name: 'coded_pool_draining_instances',
    help: 'instances removed from a pool (no longer in DNS) that still finish requests',
    labelNames: ['pool'],
    registers: [reg],
    collect() {
      for (const [k, p] of pools()) this.set({ pool: k }, p.drainingCount);
    },
  });
  const rounds = new Counter({
    name: 'coded_discovery_rounds_total',
    help: 'DNS re-resolution rounds by result (failed: a lookup failed and its pool kept its instances)',
    labelNames: ['result'],
    registers: [reg],
  });
  const changes = new Counter({
    name: 'coded_discovery_changes_total',
    help: 'instances added to or removed from a pool by DNS discovery',
    labelNames: ['pool', 'change'],
    registers: [reg],
  });
  return {
    round: (ok) => rounds.inc({ result: ok ? 'ok' : 'failed' }),
    changed: (pool, added, removed) => {
      if (added > 0) changes.inc({ pool, change: 'added' }, added);
      if (removed > 0) changes.inc({ pool, change: 'removed' }, removed);
    },
  };
}
