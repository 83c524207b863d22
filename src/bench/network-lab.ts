// A lab of Linux network namespaces on this machine, for serving experiments with real
// background network interference (as in the ParM paper, where the instances' links are
// shared with bulk data transfers).
//
// Layout: a bridge in the root namespace holding 10.213.N.1/24 (so the frontend and the load
// generator, which run in the root namespace, reach every host), and one namespace per host
// at 10.213.N.(i+2), joined to the bridge by a veth pair. Both ends of every veth pair are
// rate-limited on egress (htb at rateMbit, a plain pfifo leaf with Linux's default 1000-packet
// queue, GSO off so the queue holds wire-sized packets; or, with the gso option, GSO on and a
// byte fifo of the same size, for link rates the machine cannot shape packet by packet): a bulk transfer through a host's link
// fills that queue, and the small request/response packets of the instance on that host wait
// behind it. The namespaces have no default route: traffic from a host can only reach the
// lab subnet (the other hosts and the bridge address) and its own loopback.
//
// Needs root and iproute2 (ip, tc). Every name starts with PREFIX + pid (base 36) + '-' + a
// per-process sequence number, so concurrent labs never collide and leftovers of a crashed
// run can be found (`NetworkLab.cleanupStale`, also run by `start`).
import { spawn, execFile, spawnSync, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface NetworkLabOptions {
  /** number of hosts (namespaces), 1..250 */
  hosts: number;
  /** egress rate of each end of each host's link, in Mbit/s (the downlink, bridge -> host, always) */
  rateMbit: number;
  /**
   * egress rate of the host's own end (its uplink, host -> bridge), in Mbit/s; default rateMbit.
   * Faster than rateMbit, a bulk transfer's bottleneck is the receiver's downlink, whose queue
   * (outside the sender, so TCP Small Queues cannot keep it short) fills and delays every request
   * to that host, as at a congested switch port; at equal rates the bottleneck is the sender's own
   * queue, which TCP keeps short.
   */
  uplinkMbit?: number;
  /** name prefix (default 'cil'); names are PREFIX + pid36 + '-' + seq36 + '-' + role */
  prefix?: string;
  /** third octet N of the lab subnet 10.213.N.0/24 (default: the first free one from a pid-based start) */
  subnet?: number;
  /** packets in each link's queue (pfifo limit; default 1000, Linux's default txqueuelen) */
  queuePackets?: number;
  /**
   * TCP congestion control of connections from the namespaces (set on their route; e.g.
   * 'cubic', Linux's usual default, or 'bbr'); default: whatever new namespaces inherit on
   * this machine. It matters: a cubic bulk sender fills the link's queue, bbr keeps it short.
   */
  congestionControl?: string;
  /**
   * let the kernel pass GSO super-packets (up to 64 KB) through the links instead of wire-sized
   * ones (default false). Each link's queue is then a byte fifo of queuePackets x 1514 bytes, so
   * it holds as much data as the packet fifo would. Per-packet work falls ~40x: use it where
   * the machine cannot move wire-sized packets at the link rates asked for (Gbit links and up).
   * The byte fifo holds at least two 64 KB super-packets, and htb's bucket at least one.
   */
  gso?: boolean;
}

export interface BulkTransferOptions {
  /** transfers running at once (each between a random pair of hosts) */
  pairs: number;
  /** size of each transfer, uniform in [minBytes, maxBytes] */
  minBytes: number;
  maxBytes: number;
  seed: number;
  /** hosts to draw the pairs from (default: all) */
  among?: number[];
  /** TCP port of the discarding receivers (default 5201; each host has its own port space) */
  port?: number;
}

export interface BulkStats {
  /** completed transfers (the receiver confirmed every byte) */
  transfers: number;
  /** bytes of the completed transfers, as counted by the receivers */
  bytes: number;
  /** transfers running now */
  running: number;
  /** transfers that ended without the receiver's confirmation (not counted in `bytes`) */
  failures: number;
}

const SUBNET_BASE = [10, 213] as const;
/** htb's bucket, in milliseconds of a link's rate */
const BURST_MS = 1;
const NEEDS = 'network interference needs root and iproute2 (ip, tc)';
const labs = new Set<NetworkLab>();
let exitHookInstalled = false;
let sequence = 0;

function runCmd(cmd: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = execFile(cmd, args, { encoding: 'utf8', maxBuffer: 16 << 20 }, (e, stdout, stderr) => {
      if (e) reject(new Error(`${cmd} ${args.join(' ')}: ${(stderr || e.message).trim()}`));
      else resolve(stdout);
    });
    if (input !== undefined) c.stdin!.end(input);
  });
}

function runSync(cmd: string, args: string[]): { ok: boolean; out: string; err: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return { ok: r.status === 0, out: r.stdout ?? '', err: (r.stderr ?? '') || (r.error?.message ?? '') };
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function ipv4ToInt(a: string): number {
  return a.split('.').reduce((acc, x) => acc * 256 + Number(x), 0);
}

/** whether CIDR a overlaps CIDR b */
function overlaps(a: string, b: string): boolean {
  const [pa, la = '32'] = a.split('/');
  const [pb, lb = '32'] = b.split('/');
  const len = Math.min(Number(la), Number(lb));
  if (len === 0) return true;
  const shift = 32 - len;
  return Math.floor(ipv4ToInt(pa) / 2 ** shift) === Math.floor(ipv4ToInt(pb) / 2 ** shift);
}

/** IPv4 prefixes in use in the root namespace (addresses and routes of every table), default routes left out */
function prefixesInUse(): string[] {
  const out: string[] = [];
  const ipish = /^\d+\.\d+\.\d+\.\d+(\/\d+)?$/;
  for (const line of runSync('ip', ['-4', '-o', 'addr', 'show']).out.split('\n')) {
    const m = / inet (\d+\.\d+\.\d+\.\d+\/\d+)/.exec(line);
    if (m) out.push(m[1]);
  }
  for (const line of runSync('ip', ['-4', 'route', 'show', 'table', 'all']).out.split('\n')) {
    const dest = line
      .trim()
      .split(/\s+/)
      .find((t) => ipish.test(t));
    if (dest !== undefined && dest !== '0.0.0.0/0') out.push(dest);
  }
  return out;
}

/** Why a lab cannot be started here (null when it can): not root, iproute2 missing, no netns support. */
export function networkLabUnavailable(): string | null {
  if (process.platform !== 'linux') return `${NEEDS}: this is ${process.platform}, not Linux`;
  if (process.getuid?.() !== 0) return `${NEEDS}: not running as root (uid ${process.getuid?.()})`;
  for (const [cmd, args] of [
    ['ip', ['-V']],
    ['tc', ['-V']],
  ] as const) {
    const r = spawnSync(cmd, [...args], { encoding: 'utf8' });
    if (r.error || r.status !== 0) return `${NEEDS}: \`${cmd} ${args.join(' ')}\` failed: ${r.error?.message ?? r.stderr}`;
  }
  const probe = `cilprobe${process.pid.toString(36)}`;
  const add = runSync('ip', ['netns', 'add', probe]);
  runSync('ip', ['netns', 'del', probe]);
  if (!add.ok) return `${NEEDS}: cannot create a network namespace: ${add.err.trim()}`;
  return null;
}

interface HostNames {
  ns: string;
  /** veth end inside the namespace */
  inside: string;
  /** veth end in the root namespace (a bridge port) */
  outside: string;
}

/**
 * Bridge + one namespace per host + rate-limited veth pairs. `start` creates it all, `stop`
 * kills every process in its namespaces (lab processes and anything started through `wrap`)
 * and deletes namespaces, veths, bridge and qdiscs.
 */
export class NetworkLab {
  readonly name: string;
  readonly bridge: string;
  readonly subnet: string;
  /** the root namespace's address on the lab subnet (the bridge's) */
  readonly rootAddress: string;
  readonly hosts: number;
  readonly rateMbit: number;
  readonly uplinkMbit: number;
  readonly queuePackets: number;
  readonly gso: boolean;
  private readonly names: HostNames[];
  private readonly children = new Set<ChildProcess>();
  private readonly bulks = new Set<BulkTransfers>();
  private stopping: Promise<void> | null = null;

  readonly congestionControl: string | undefined;

  private constructor(
    o: Required<Omit<NetworkLabOptions, 'subnet' | 'congestionControl'>> & { subnet: number; congestionControl?: string },
  ) {
    this.congestionControl = o.congestionControl;
    this.gso = o.gso;
    this.name = `${o.prefix}${process.pid.toString(36)}-${(sequence++).toString(36)}`;
    this.bridge = `${this.name}-b`;
    this.hosts = o.hosts;
    this.rateMbit = o.rateMbit;
    this.uplinkMbit = o.uplinkMbit;
    this.queuePackets = o.queuePackets;
    const net = `${SUBNET_BASE[0]}.${SUBNET_BASE[1]}.${o.subnet}`;
    this.subnet = `${net}.0/24`;
    this.rootAddress = `${net}.1`;
    this.names = Array.from({ length: o.hosts }, (_, i) => ({
      ns: `${this.name}-n${i}`,
      inside: `${this.name}-h${i}`,
      outside: `${this.name}-r${i}`,
    }));
    for (const n of [this.bridge, ...this.names.flatMap((h) => [h.inside, h.outside])]) {
      if (n.length > 15) throw new Error(`network lab: interface name ${n} is longer than 15 characters (use a shorter prefix)`);
    }
  }

  static async start(o: NetworkLabOptions): Promise<NetworkLab> {
    const prefix = o.prefix ?? 'cil';
    if (!/^[a-z][a-z0-9]*$/.test(prefix))
      throw new Error(`network lab: prefix must be lowercase letters and digits, got ${JSON.stringify(prefix)}`);
    if (!Number.isInteger(o.hosts) || o.hosts < 1 || o.hosts > 250)
      throw new Error(`network lab: hosts must be an integer in 1..250, got ${o.hosts}`);
    if (!(o.rateMbit > 0)) throw new Error(`network lab: rateMbit must be positive, got ${o.rateMbit}`);
    const uplinkMbit = o.uplinkMbit ?? o.rateMbit;
    if (!(uplinkMbit > 0)) throw new Error(`network lab: uplinkMbit must be positive, got ${o.uplinkMbit}`);
    const queuePackets = o.queuePackets ?? 1000;
    if (!Number.isInteger(queuePackets) || queuePackets < 1)
      throw new Error(`network lab: queuePackets must be a positive integer, got ${queuePackets}`);
    if (o.congestionControl !== undefined && !/^[a-z0-9_]+$/.test(o.congestionControl))
      throw new Error(`network lab: bad congestionControl ${JSON.stringify(o.congestionControl)}`);
    const why = networkLabUnavailable();
    if (why !== null) throw new Error(why);
    NetworkLab.cleanupStale(prefix);
    const subnet = o.subnet ?? NetworkLab.freeSubnet();
    if (!Number.isInteger(subnet) || subnet < 0 || subnet > 255)
      throw new Error(`network lab: subnet must be an integer in 0..255, got ${subnet}`);
    const mine = `${SUBNET_BASE[0]}.${SUBNET_BASE[1]}.${subnet}.0/24`;
    const clash = prefixesInUse().find((p) => overlaps(p, mine));
    if (clash !== undefined) throw new Error(`network lab: subnet ${mine} overlaps ${clash}, which is in use on this machine`);
    const lab = new NetworkLab({
      hosts: o.hosts,
      rateMbit: o.rateMbit,
      uplinkMbit,
      prefix,
      subnet,
      queuePackets,
      congestionControl: o.congestionControl,
      gso: o.gso ?? false,
    });
    labs.add(lab);
    installExitHook();
    try {
      await lab.create();
    } catch (e) {
      await lab.stop();
      throw new Error(`network lab: set-up failed: ${(e as Error).message}`);
    }
    return lab;
  }

  /** the first 10.213.N.0/24 not overlapping anything on this machine, starting from a pid-based N */
  private static freeSubnet(): number {
    const used = prefixesInUse();
    const start = 1 + (process.pid % 250);
    for (let k = 0; k < 254; k++) {
      const n = 1 + ((start - 1 + k) % 254);
      const cidr = `${SUBNET_BASE[0]}.${SUBNET_BASE[1]}.${n}.0/24`;
      if (!used.some((p) => overlaps(p, cidr))) return n;
    }
    throw new Error(`network lab: no free /24 in ${SUBNET_BASE.join('.')}.0.0/16`);
  }

  private async create(): Promise<void> {
    // htb's bucket: BURST_MS of the link's rate (at least one 64 KB GSO packet with gso, else
    // one wire packet). tc's default is rate / psched-hz + mtu, about one packet where the
    // kernel's clock is high-resolution: htb must then dequeue every packet on its own timer,
    // and a 1000 Mbit link carries a few hundred Mbit/s.
    const burst = (mbit: number) => `${Math.max(this.gso ? 65536 : 1514, Math.round((mbit * 1e6 * BURST_MS) / 8 / 1000))}b`;
    const shape = (dev: string, mbit: number, rate = `${mbit}mbit`) => [
      ['qdisc', 'add', 'dev', dev, 'root', 'handle', '1:', 'htb', 'default', '1'],
      [
        'class',
        'add',
        'dev',
        dev,
        'parent',
        '1:',
        'classid',
        '1:1',
        'htb',
        'rate',
        rate,
        'ceil',
        rate,
        'quantum',
        '1514',
        'burst',
        burst(mbit),
        'cburst',
        burst(mbit),
      ],
      this.gso
        ? // at least two 64 KB super-packets, or a small queue would drop every one of them
          [
            'qdisc',
            'add',
            'dev',
            dev,
            'parent',
            '1:1',
            'handle',
            '10:',
            'bfifo',
            'limit',
            String(Math.max(this.queuePackets * 1514, 2 * 65536)),
          ]
        : ['qdisc', 'add', 'dev', dev, 'parent', '1:1', 'handle', '10:', 'pfifo', 'limit', String(this.queuePackets)],
    ];
    // no link-local IPv6 (addrgenmode none); unless gso, no GSO super-packets (gso_max_segs 1),
    // so the queues hold wire-sized packets, as on a real link
    const quiet = ['addrgenmode', 'none', ...(this.gso ? [] : ['gso_max_segs', '1', 'gso_max_size', '1500'])];
    await runCmd('ip', ['link', 'add', this.bridge, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0']);
    await runCmd('ip', ['link', 'set', 'dev', this.bridge, ...quiet]);
    await runCmd('ip', ['addr', 'add', `${this.rootAddress}/24`, 'dev', this.bridge]);
    await runCmd('ip', ['link', 'set', 'dev', this.bridge, 'up']);
    for (let i = 0; i < this.hosts; i++) {
      const h = this.names[i];
      await runCmd('ip', ['netns', 'add', h.ns]);
      await runCmd('ip', ['link', 'add', h.outside, 'type', 'veth', 'peer', 'name', h.inside, 'netns', h.ns]);
      await runCmd('ip', ['link', 'set', 'dev', h.outside, ...quiet, 'master', this.bridge]);
      for (const a of shape(h.outside, this.rateMbit)) await runCmd('tc', a);
      await runCmd('ip', ['link', 'set', 'dev', h.outside, 'up']);
      await runCmd('ip', ['-n', h.ns, 'link', 'set', 'dev', 'lo', 'up']);
      await runCmd('ip', ['-n', h.ns, 'link', 'set', 'dev', h.inside, ...quiet]);
      await runCmd('ip', ['-n', h.ns, 'addr', 'add', `${this.address(i)}/24`, 'dev', h.inside]);
      for (const a of shape(h.inside, this.uplinkMbit)) await runCmd('tc', ['-n', h.ns, ...a]);
      await runCmd('ip', ['-n', h.ns, 'link', 'set', 'dev', h.inside, 'up']);
      if (this.congestionControl !== undefined) {
        // per route (the namespace's only one): a namespace's default may only be set to an
        // algorithm in the root's tcp_allowed_congestion_control, a route's to any available one
        await runCmd('ip', [
          '-n',
          h.ns,
          'route',
          'replace',
          this.subnet,
          'dev',
          h.inside,
          'proto',
          'kernel',
          'scope',
          'link',
          'src',
          this.address(i),
          'congctl',
          this.congestionControl,
        ]);
      }
    }
  }

  private check(i: number): HostNames {
    if (!Number.isInteger(i) || i < 0 || i >= this.hosts) throw new RangeError(`network lab: host ${i} is not in 0..${this.hosts - 1}`);
    return this.names[i];
  }

  /** IPv4 address of host i (inside its namespace) */
  address(i: number): string {
    this.check(i);
    return `${this.rootAddress.replace(/\.1$/, '')}.${i + 2}`;
  }

  /** command prefix that runs a process inside host i's namespace */
  wrap(i: number): string[] {
    return ['ip', 'netns', 'exec', this.check(i).ns];
  }

  /** names of host i's namespace and veth ends (inside: in the namespace; outside: the bridge port) */
  link(i: number): HostNames {
    return { ...this.check(i) };
  }

  /** Spawn `node -e script ...args` inside host i's namespace, owned by the lab (stop() ends it). */
  spawnNode(i: number, script: string, args: string[]): ChildProcess {
    if (this.stopping) throw new Error('network lab: stopped');
    const p = spawn(this.wrap(i)[0], [...this.wrap(i).slice(1), process.execPath, '-e', script, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.children.add(p);
    p.once('exit', () => this.children.delete(p));
    p.once('error', () => this.children.delete(p));
    return p;
  }

  /**
   * Continuous background transfers: `pairs` at once, each between a random pair of hosts
   * (seeded); when one finishes, a new one starts between a new random pair. Resolves once
   * the discarding receivers listen and the first transfers are under way.
   */
  async startBulkTransfers(o: BulkTransferOptions): Promise<BulkTransfers> {
    const b = new BulkTransfers(this, o);
    this.bulks.add(b);
    try {
      await b.start();
    } catch (e) {
      await b.stop();
      this.bulks.delete(b);
      throw e;
    }
    return b;
  }

  /** Kills every process in the lab's namespaces, deletes namespaces, veths, bridge, qdiscs. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await Promise.all([...this.bulks].map((b) => b.stop()));
      const waits = [...this.children].map(
        (p) =>
          new Promise<void>((resolve) => {
            if (p.exitCode !== null || p.signalCode !== null) return resolve();
            p.once('exit', () => resolve());
            p.kill('SIGKILL');
          }),
      );
      await Promise.all(waits);
      this.teardownSync();
      labs.delete(this);
    })();
    return this.stopping;
  }

  /** synchronous teardown (also used by the process 'exit' hook) */
  teardownSync(): void {
    for (const p of this.children) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    for (const h of this.names) {
      // deleting one veth end deletes both at once (a namespace's devices go asynchronously)
      runSync('ip', ['link', 'del', h.outside]);
      removeNamespace(h.ns);
    }
    runSync('ip', ['link', 'del', this.bridge]);
  }

  /**
   * Removes leftovers of crashed earlier runs: namespaces (after killing their processes) and
   * interfaces whose name is PREFIX + pid36 + '-...' for a pid that no longer runs (or this
   * process's pid, for labs no longer live here). Returns what it removed.
   */
  static cleanupStale(prefix = 'cil'): { namespaces: string[]; links: string[] } {
    const re = new RegExp(`^${escapeRe(prefix)}([0-9a-z]{1,7})-([0-9a-z]{1,4})-(b|[nhr][0-9]{1,3})$`);
    const liveHere = new Set([...labs].map((l) => l.name));
    const stale = (name: string): boolean => {
      const m = re.exec(name);
      if (!m) return false;
      const pid = parseInt(m[1], 36);
      if (pid === process.pid) return !liveHere.has(`${prefix}${m[1]}-${m[2]}`);
      return !pidAlive(pid);
    };
    const removed = { namespaces: [] as string[], links: [] as string[] };
    for (const line of runSync('ip', ['netns', 'list']).out.split('\n')) {
      const ns = line.trim().split(/\s+/)[0];
      if (ns && stale(ns)) {
        removeNamespace(ns);
        removed.namespaces.push(ns);
      }
    }
    for (const line of runSync('ip', ['-o', 'link', 'show']).out.split('\n')) {
      const m = /^\d+:\s+([^:@\s]+)/.exec(line);
      if (m && stale(m[1])) {
        runSync('ip', ['link', 'del', m[1]]);
        removed.links.push(m[1]);
      }
    }
    return removed;
  }
}

function removeNamespace(ns: string): void {
  const pids = runSync('ip', ['netns', 'pids', ns]).out.split(/\s+/).filter(Boolean).map(Number);
  for (const pid of pids) {
    try {
      if (pid !== process.pid) process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
  runSync('ip', ['netns', 'del', ns]);
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const lab of labs) {
      try {
        lab.teardownSync();
      } catch {
        // best effort
      }
    }
  });
}

// --- bulk transfers -------------------------------------------------------------------------

// A receiver that discards what it gets and, when the sender half-closes, answers with the
// number of bytes it received.
const RECEIVER = `
const net = require('net');
const [host, port] = [process.argv[1], Number(process.argv[2])];
const s = net.createServer({ allowHalfOpen: true }, (c) => {
  let n = 0;
  // a short read (less than Node's 64 KB read buffer: the socket was drained) pauses 1 ms, so
  // that slow links cost batches rather than one wake-up per packet; full reads go on at once,
  // so the receiver never limits a fast link (an unconditional 2 ms pause held every transfer
  // to ~220 Mbit/s, whatever the link's rate)
  c.on('data', (d) => { n += d.length; if (d.length < 65536) { c.pause(); setTimeout(() => c.resume(), 1); } });
  c.on('end', () => c.end(String(n) + '\\n'));
  c.on('error', () => {});
});
s.on('error', (e) => { console.error(e.message); process.exit(1); });
s.listen(port, host, () => console.log('listening'));
`;

// A sender of exactly N bytes; prints the receiver's count.
const SENDER = `
const net = require('net');
const [host, port, total] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
const chunk = Buffer.alloc(65536, 0x5a);
let left = total;
let reply = '';
const c = net.connect({ host, port, allowHalfOpen: true });
function pump() {
  while (left > 0) {
    const n = Math.min(left, chunk.length);
    left -= n;
    if (!c.write(n === chunk.length ? chunk : chunk.subarray(0, n))) { c.once('drain', pump); return; }
  }
  c.end();
}
c.on('connect', pump);
c.on('data', (d) => { reply += d; });
c.on('end', () => { process.stdout.write(JSON.stringify({ received: Number(reply.trim()) }) + '\\n'); process.exit(0); });
c.on('error', (e) => { console.error(e.message); process.exit(1); });
`;

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Background bulk transfers in a lab (see NetworkLab.startBulkTransfers). */
export class BulkTransfers {
  private readonly rand: () => number;
  private readonly among: number[];
  private readonly port: number;
  private readonly receivers: ChildProcess[] = [];
  private readonly senders = new Set<ChildProcess>();
  private readonly waiters: { n: number; resolve: (s: BulkStats) => void; reject: (e: Error) => void }[] = [];
  private transfers = 0;
  private bytes = 0;
  private failures = 0;
  private consecutiveFailures = 0;
  private stopped = false;
  private error: Error | null = null;
  /** every completed transfer, in completion order */
  readonly completed: { from: number; to: number; bytes: number }[] = [];

  constructor(
    private readonly lab: NetworkLab,
    private readonly o: BulkTransferOptions,
  ) {
    if (!Number.isInteger(o.pairs) || o.pairs < 1) throw new Error(`bulk transfers: pairs must be a positive integer, got ${o.pairs}`);
    if (!Number.isInteger(o.minBytes) || !Number.isInteger(o.maxBytes) || o.minBytes < 1 || o.maxBytes < o.minBytes) {
      throw new Error(`bulk transfers: need integers 1 <= minBytes <= maxBytes, got ${o.minBytes}..${o.maxBytes}`);
    }
    this.among = o.among ?? Array.from({ length: lab.hosts }, (_, i) => i);
    for (const i of this.among) lab.address(i);
    if (new Set(this.among).size < 2) throw new Error('bulk transfers: need at least two distinct hosts');
    this.port = o.port ?? 5201;
    this.rand = mulberry32(o.seed);
  }

  async start(): Promise<void> {
    await Promise.all(
      this.among.map(
        (i) =>
          new Promise<void>((resolve, reject) => {
            const p = this.lab.spawnNode(i, RECEIVER, [this.lab.address(i), String(this.port)]);
            this.receivers.push(p);
            let err = '';
            p.stderr!.on('data', (d: Buffer) => {
              if (err.length < 4096) err += d.toString();
            });
            createInterface({ input: p.stdout! }).once('line', (l) =>
              l === 'listening' ? resolve() : reject(new Error(`bulk receiver on host ${i}: ${l}`)),
            );
            p.once('exit', (code, sig) => {
              reject(new Error(`bulk receiver on host ${i} exited (${code ?? sig}): ${err.trim()}`));
              if (!this.stopped) this.fail(new Error(`bulk receiver on host ${i} exited (${code ?? sig}): ${err.trim()}`));
            });
            p.once('error', reject);
          }),
      ),
    );
    for (let k = 0; k < this.o.pairs; k++) this.launch();
  }

  private pick(): { from: number; to: number; bytes: number } {
    const n = this.among.length;
    const a = Math.floor(this.rand() * n);
    let b = Math.floor(this.rand() * (n - 1));
    if (b >= a) b++;
    const bytes = this.o.minBytes + Math.floor(this.rand() * (this.o.maxBytes - this.o.minBytes + 1));
    return { from: this.among[a], to: this.among[b], bytes };
  }

  private launch(): void {
    if (this.stopped) return;
    const t = this.pick();
    const p = this.lab.spawnNode(t.from, SENDER, [this.lab.address(t.to), String(this.port), String(t.bytes)]);
    this.senders.add(p);
    let out = '';
    let err = '';
    p.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
    });
    p.stderr!.on('data', (d: Buffer) => {
      if (err.length < 4096) err += d.toString();
    });
    let ended = false;
    const done = (code: number | null, sig: NodeJS.Signals | null) => {
      if (ended) return;
      ended = true;
      this.senders.delete(p);
      if (this.stopped) return;
      let received = -1;
      try {
        received = (JSON.parse(out.trim()) as { received: number }).received;
      } catch {
        // no answer
      }
      if (code === 0 && received === t.bytes) {
        this.transfers++;
        this.bytes += received;
        this.consecutiveFailures = 0;
        this.completed.push(t);
        this.settle();
      } else {
        this.failures++;
        if (++this.consecutiveFailures >= 5) {
          this.fail(
            new Error(
              `bulk transfers: 5 transfers in a row failed; last ${t.from} -> ${t.to} (${code ?? sig}, received ${received} of ${t.bytes}): ${err.trim()}`,
            ),
          );
          return;
        }
      }
      this.launch();
    };
    p.once('exit', done);
    p.once('error', (e) => {
      err += e.message;
      done(null, null);
    });
  }

  private settle(): void {
    for (let k = this.waiters.length - 1; k >= 0; k--) {
      if (this.transfers >= this.waiters[k].n) this.waiters.splice(k, 1)[0].resolve(this.stats());
    }
  }

  private fail(e: Error): void {
    if (this.error) return;
    this.error = e;
    for (const w of this.waiters.splice(0)) w.reject(e);
    void this.stop();
  }

  stats(): BulkStats {
    return { transfers: this.transfers, bytes: this.bytes, running: this.senders.size, failures: this.failures };
  }

  /** resolves once at least n transfers have completed; rejects if the transfers stop first */
  waitFor(n: number): Promise<BulkStats> {
    if (this.transfers >= n) return Promise.resolve(this.stats());
    if (this.error) return Promise.reject(this.error);
    if (this.stopped) return Promise.reject(new Error('bulk transfers: stopped'));
    return new Promise((resolve, reject) => this.waiters.push({ n, resolve, reject }));
  }

  /** ends all senders and receivers (idempotent) */
  async stop(): Promise<void> {
    if (!this.stopped) {
      this.stopped = true;
      for (const w of this.waiters.splice(0)) w.reject(this.error ?? new Error('bulk transfers: stopped'));
    }
    await Promise.all(
      [...this.senders, ...this.receivers].map(
        (p) =>
          new Promise<void>((resolve) => {
            if (p.exitCode !== null || p.signalCode !== null) return resolve();
            p.once('exit', () => resolve());
            p.kill('SIGKILL');
          }),
      ),
    );
  }
}
