// The serving policy: every decision the frontend makes about a query, driven by events
// (a query arrives, an instance answers or fails, a timer fires) and nothing else. The
// frontend runs it on the system clock with V2 gRPC instances; the tests and the planner's
// simulator run the very same code on a VirtualClock with simulated instances.
//
// Modes:
//   none / equal-resources  every query goes to the base pool once; with hedgeMs a query still
//                           unanswered after hedgeMs is sent again (a hedged request, "The Tail
//                           at Scale"): first answer wins, the other copy is dropped if queued;
//   replication             the replication code (k = 1, r = 1): two copies, first one wins;
//   coded                   groups of k queries are encoded with the code, each coded query goes
//                           to the pool its worker function names, and the code decodes outputs
//                           that are late or lost.
//
// Coding groups: queries join the open group in arrival order; a group is closed when it has
// k queries, or maxWaitMs after its first query arrived. With systematic codes each original
// is dispatched to the base pool the moment it arrives; only the parity queries wait for the
// group to close (then it is encoded). A group closed early fills its empty slots with queries
// this frontend answered recently with the model's own output (padding 'answered', the default):
// their outputs are known, so the padding costs no request and the group decodes a late original
// from its parity alone, and the parity model sees real inputs, as in training. Until the
// frontend knows enough answered queries other than the group's own, and with padding 'repeat',
// a partial group repeats its own queries (X_1, X_2, X_1, ...) instead: those padding copies are
// computed like any other query (a copy that comes back before its original answers the query,
// flagged as an answer by a copy).
// Either way a partial group is protected like a full one and no output is ever guessed. With
// parityDelayMs the padding copies are redundancy too: they go out with the delayed parity
// queries, and only if an original is still missing.
//
// Deadlines, per group, measured from its first query's arrival: after decodeDeadlineMs its
// missing original outputs are "late", and as soon as the code can decode from what has arrived (or at once if an
// instance failed the query) the reconstruction is returned, marked reconstructed. If at that
// point the group cannot be decoded (the partner or the parity is late too), the fallback (on
// by default) re-issues each missing original to the base pool as a hedged request, ahead of
// the queue but never joining a backlog, away from the instance that holds the first copy:
// first useful answer wins.
// At sloMs a query with no answer gets the default output (marked default) or an error, as
// configured. Every accepted query is answered exactly once.
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { Clock, Timer } from './clock.js';
import type { GroupCodec } from './group-codec.js';
import type { Dispatch, Task } from './pool.js';
import { ServeError } from './v2/types.js';
import { admissionVerdict, type AdmissionOptions } from './admission.js';

/** copies per query that hedging and the fallback may send, by default (see PolicyOptions.copyBudget) */
export const DEFAULT_COPY_BUDGET = 0.1;

export type ServingMode = 'coded' | 'equal-resources' | 'replication' | 'none';
export type Outcome = 'original' | 'reconstructed' | 'default';

export interface QueryResult {
  data: Float32Array;
  reconstructed: boolean;
  defaulted: boolean;
  /** the answer came from a hedged copy (uncoded hedging or the coded fallback) */
  hedged: boolean;
}

/** What the policy reports as it works (metrics in the server, statistics in the simulator). */
export interface PolicyEvents {
  answered?(outcome: Outcome, latencyMs: number, hedged: boolean): void;
  failed?(latencyMs: number): void;
  rejected?(reason: 'pending' | 'queue' | 'latency', n: number): void;
  encoded?(seconds: number): void;
  decoded?(seconds: number): void;
  paritySkipped?(): void;
  taskFailed?(pool: string): void;
  hedgeSent?(kind: 'hedge' | 'fallback'): void;
  /** a copy was due but never sent: the copy budget allowed none before the query was answered */
  copyDenied?(kind: 'hedge' | 'fallback'): void;
  /** a query answered `slowQueryMs` or more after it arrived, with what happened to it (see SlowQueryStory) */
  slowQuery?(story: SlowQueryStory): void;
}

/**
 * What happened to a slow query, for the frontend's slow-query log: every request that carried
 * it or its group (times in ms after the query arrived; null: not yet), and how it was answered.
 */
export interface SlowQueryStory {
  latencyMs: number;
  outcome: Outcome | 'error';
  byCopy: boolean;
  /** queries in its coding group (0: uncoded) */
  groupSize: number;
  /** slots of its coding group padded with queries already answered (padding 'answered': their outputs were known, no request) */
  paddedWithAnswered: number;
  /** hedged / fallback copies that were due but never sent, the budget allowing none in time (all queries so far) */
  copiesDeniedSoFar: number;
  /** this query's copy was due but the copy budget allowed none before it was answered */
  copyDenied: boolean;
  tasks: {
    role: string;
    pool: string;
    instance: string | null;
    createdMs: number | null;
    startedMs: number | null;
    finishedMs: number | null;
    cancelled: boolean;
  }[];
}

export interface PolicyOptions {
  mode: ServingMode;
  /** the code (coded and replication modes) */
  codec: GroupCodec | null;
  /** where tasks go, by key: 'base', 'parity:J', 'worker:NAME:I' (Pools over instances in the server and the simulator; scripted in tests) */
  pools: ReadonlyMap<string, Dispatch>;
  clock: Clock;
  log: Logger;
  inputShape: number[];
  defaultOutput: Float32Array;
  sloMs: number;
  decodeDeadlineMs: number;
  maxWaitMs: number;
  parityDelayMs: number;
  onMiss: 'default' | 'error';
  maxPendingQueries: number;
  maxAttempts: number;
  /** uncoded modes: send a second copy of a query unanswered after this long (null: never) */
  hedgeMs: number | null;
  /** coded mode: re-issue late originals whose group cannot decode by the decode deadline */
  fallback: boolean;
  /**
   * At most this many hedged / fallback copies per accepted query, on average (a token bucket
   * filled by arrivals, holding at most max(1, 100 x budget) copies for bursts); null: no limit;
   * default DEFAULT_COPY_BUDGET.
   * Copies of late queries protect the tail only while they are rare: when everything is late
   * (an overloaded frontend or pool) they would multiply the load that made it late.
   */
  copyBudget?: number | null;
  /** report queries answered this many ms or more after arrival through events.slowQuery (default: never) */
  slowQueryMs?: number;
  /**
   * coded mode, systematic codes, with the fallback on: what a group that closes with a single
   * query does. 'pad' (default): padded with copies of that query and encoded like any group
   * (k + r - 1 extra requests); 'copy': no padding and no parity (there is no partner to code
   * with), the query is protected by a fallback copy once its original has run for the decode
   * deadline, as a hedged request. With sparse arrivals (a rate per frontend well below k / maxWaitMs)
   * most groups close alone and 'pad' costs up to k + r requests per query.
   */
  singletonGroups?: 'pad' | 'copy';
  /**
   * coded mode, systematic codes: what fills the empty slots of a group that closes with fewer
   * than k queries. 'answered' (default): the last queries this frontend answered with an
   * output of the base model itself (not reconstructed, not default); their outputs are known,
   * so no padding request goes out (until enough such answers, other than the group's own
   * queries, are known it falls back to 'repeat').
   * 'repeat': copies of the group's own queries, computed by the base pool like any query.
   */
  padding?: 'answered' | 'repeat';
  /** admission control: refuse queries whose predicted latency would miss the budget (omitted / null: admit up to the bounds) */
  admission?: AdmissionOptions | null;
  events?: PolicyEvents;
}

interface Query {
  /** numbers the queries this policy accepted (padding 'answered' tells a group's own queries by it) */
  id: number;
  /** the submission (request) it came with: its tasks' source in the pools' fair queues */
  source: number;
  data: Float32Array;
  arrival: number;
  answered: boolean;
  settle: (r: QueryResult | Error) => void;
  sloTimer: Timer | null;
  /** pending hedge / fallback check */
  copyTimer: Timer | null;
  group: Group | null;
  /** tasks that carry this query alone (the uncoded copy, hedged copies, fallback copies) */
  tasks: Task[];
  /** a hedged / fallback copy was sent */
  copied: boolean;
}

/** A query answered with the base model's own output, kept as padding (padding 'answered'). */
interface Answered {
  id: number;
  data: Float32Array;
  output: Float32Array;
}

/** One of a group's k systematic slots: the input it encodes and the query its output answers. */
interface Slot {
  data: Float32Array;
  /** null: padding by an answered query, whose output is already in the group's outputs */
  query: Query | null;
}

interface Group {
  queries: Query[];
  /** the k slots: the group's queries, then padding (answered queries, or its own queries repeated) */
  slots: Slot[];
  outputs: (Float32Array | null)[];
  failed: boolean[];
  tasks: (Task | null)[];
  deadline: number;
  /** the deadline timer fired (authoritative: a system timer may fire a fraction of a millisecond before clock.now() reaches the deadline) */
  deadlinePassed: boolean;
  timer: Timer | null;
  /** the coded queries were encoded and sent (or found unnecessary) */
  paritySent: boolean;
  /** padding slots [from, k) not dispatched yet (hedged: they go out with the parity) */
  paddingFrom: number | null;
  parityTimer: Timer | null;
  closed: boolean;
}

export interface PolicyCounts {
  original: number;
  reconstructed: number;
  default: number;
  error: number;
  rejected: number;
  /** answers that came from a hedged or fallback copy (also counted under their outcome) */
  hedgedAnswers: number;
  /** hedged / fallback copies sent */
  copies: number;
  /** copies that were due but never sent: the copy budget allowed none before the query was answered */
  copiesDenied: number;
  /** tasks handed to instance pools (every coded query, copy and retry; those cancelled while queued never reach an instance: Pool.requests counts what did) */
  tasks: number;
}

/** The first slot that carries query q (its own; later ones are padding that repeats it). */
function slotOf(g: Group, q: Query): number {
  return g.slots.findIndex((s) => s.query === q);
}

export class ServingPolicy {
  readonly counts: PolicyCounts = {
    original: 0,
    reconstructed: 0,
    default: 0,
    error: 0,
    rejected: 0,
    hedgedAnswers: 0,
    copies: 0,
    copiesDenied: 0,
    tasks: 0,
  };
  private openGroup: Group | null = null;
  private openTimer: Timer | null = null;
  private readonly live = new Set<Query>();
  private closing = false;
  private readonly base: Dispatch;
  private readonly ev: PolicyEvents;
  private readonly fallback: boolean;
  /** coding groups not yet closed (their timers are cancelled on close) */
  private readonly liveGroups = new Set<Group>();
  /** copies that may still be sent (see copyBudget) */
  private copyTokens: number;
  private readonly copyBurst: number;
  private readonly copyBudget: number;
  /**
   * Queries whose copy was due while the budget was spent, oldest first: each token that arrivals
   * add goes to the query that has waited longest (the one most likely stuck for good, e.g. behind
   * a lost packet's retransmission timeout), not to whichever query happens to be late next.
   */
  private readonly copyWaiters = new Map<Query, 'hedge' | 'fallback'>();
  /**
   * padding 'answered': the last 2(k - 1) queries answered with the base model's own output (a
   * ring; twice what one group needs, so that a group is padded with queries other than its own)
   */
  private readonly answered: Answered[] = [];
  private answeredNext = 0;
  private readonly padAnswered: boolean;
  /** submissions so far: each one's queries are one source in the pools' fair queues */
  private submissions = 0;
  /** queries accepted so far */
  private accepted = 0;

  constructor(readonly o: PolicyOptions) {
    const base = o.pools.get('base');
    if (base === undefined) throw new Error('the serving policy needs a base pool');
    this.base = base;
    this.ev = o.events ?? {};
    // the fallback belongs to coded mode (replication's two copies are its own redundancy)
    this.fallback = o.mode === 'coded' && o.fallback;
    const b = o.copyBudget === undefined ? DEFAULT_COPY_BUDGET : o.copyBudget;
    if (b !== null && !(b >= 0)) throw new Error(`copyBudget must be a number >= 0 (copies per query), not ${b}`);
    this.copyBudget = b ?? 0;
    this.copyBurst = b === null ? Infinity : Math.max(1, 100 * b);
    this.copyTokens = this.copyBurst;
    this.padAnswered = o.mode === 'coded' && o.codec !== null && o.codec.systematic && o.codec.k > 1 && o.padding !== 'repeat';
    if ((o.mode === 'coded' || o.mode === 'replication') && o.codec === null) throw new Error(`mode ${o.mode} needs a code`);
    if (o.codec !== null) {
      for (const k of new Set(o.codec.pools))
        if (!o.pools.has(k))
          throw new Error(
            `code ${o.codec.name} sends coded queries to pool '${k}', which the config does not define (pools: ${[...o.pools.keys()].join(', ')})`,
          );
    }
  }

  get pending(): number {
    return this.live.size;
  }

  /**
   * Accept queries (all or none) and call `answer` exactly once for each, with its result or an
   * Error. Throws a ServeError ('overloaded' / 'unavailable') when they are refused.
   */
  submit(samples: Float32Array[], answer: (i: number, r: QueryResult | Error) => void): void {
    if (this.closing) throw new ServeError('unavailable', 'frontend is shutting down');
    const n = samples.length;
    if (this.live.size + n > this.o.maxPendingQueries) {
      this.counts.rejected += n;
      this.ev.rejected?.('pending', n);
      throw new ServeError(
        'overloaded',
        `overloaded: ${this.live.size} queries pending (limit ${this.o.maxPendingQueries}); retry later`,
        1000,
      );
    }
    const c = this.o.codec;
    const tasksPerQuery = c === null ? 1 : Math.ceil(c.n / c.k) + 1;
    for (const p of this.o.pools.values()) {
      if (!p.hasRoom(n * tasksPerQuery)) {
        this.counts.rejected += n;
        this.ev.rejected?.('queue', n);
        throw new ServeError('overloaded', `overloaded: pool ${p.name} queue is full; retry later`, 1000);
      }
    }
    this.admit(n);
    const source = ++this.submissions;
    const now = this.o.clock.now();
    if (this.copyBurst !== Infinity) this.copyTokens = Math.min(this.copyBurst, this.copyTokens + n * this.copyBudget);
    samples.forEach((data, i) => {
      const q: Query = {
        id: ++this.accepted,
        source,
        data,
        arrival: now,
        answered: false,
        sloTimer: null,
        copyTimer: null,
        group: null,
        tasks: [],
        copied: false,
        settle: (r) => {
          if (q.answered) return;
          q.answered = true;
          this.live.delete(q);
          const waited = this.copyWaiters.get(q);
          if (waited !== undefined) {
            this.copyWaiters.delete(q);
            this.counts.copiesDenied++;
            this.ev.copyDenied?.(waited);
          }
          q.sloTimer?.cancel();
          q.copyTimer?.cancel();
          for (const t of q.tasks) t.cancelled = true;
          const ms = this.o.clock.now() - q.arrival;
          if (this.o.slowQueryMs !== undefined && ms >= this.o.slowQueryMs && this.ev.slowQuery !== undefined)
            this.ev.slowQuery(this.story(q, ms, r, waited !== undefined));
          if (r instanceof Error) {
            this.counts.error++;
            this.ev.failed?.(ms);
          } else {
            const outcome: Outcome = r.defaulted ? 'default' : r.reconstructed ? 'reconstructed' : 'original';
            if (outcome === 'original' && this.padAnswered) this.rememberAnswered(q, r.data);
            this.counts[outcome]++;
            if (r.hedged) this.counts.hedgedAnswers++;
            this.ev.answered?.(outcome, ms, r.hedged);
          }
          answer(i, r);
        },
      };
      this.live.add(q);
      q.sloTimer = this.o.clock.after(this.o.sloMs, () => this.miss(q));
      if (c === null) this.dispatchUncoded(q);
      else this.enqueueCoded(q);
    });
    // the arrivals refilled the copy budget: copies that waited for it go out now
    this.serveCopyWaiters();
  }

  /**
   * Padding 'answered': keep the query's input and a copy of its output (the answer's buffer is
   * the caller's) as padding for partial groups. Only a well-formed output (the model's output
   * size, every value finite) is kept: a bad one would spoil other queries' reconstructions. An
   * input that is a small view of a larger buffer (one sample of a batch request) is copied, so
   * the ring never holds whole requests.
   */
  private rememberAnswered(q: Query, output: Float32Array): void {
    if (output.length !== this.o.defaultOutput.length) return;
    for (let i = 0; i < output.length; i++) if (!Number.isFinite(output[i])) return;
    const data = q.data;
    const a = { id: q.id, data: data.byteLength * 2 < data.buffer.byteLength ? data.slice() : data, output: output.slice() };
    const size = 2 * (this.o.codec!.k - 1);
    if (this.answered.length < size) this.answered.push(a);
    else this.answered[this.answeredNext] = a;
    this.answeredNext = (this.answeredNext + 1) % size;
  }

  /**
   * k - real answered queries to pad a group with, none of them the group's own (their inputs
   * would repeat in the parity), newest first; null while fewer are known.
   */
  private answeredPadding(g: Group, need: number): Answered[] | null {
    const own = new Set(g.queries.map((q) => q.id));
    const picked: Answered[] = [];
    const n = this.answered.length;
    for (let j = 1; j <= n && picked.length < need; j++) {
      const a = this.answered[(this.answeredNext - j + n) % n];
      if (!own.has(a.id)) picked.push(a);
    }
    return picked.length === need ? picked : null;
  }

  /** Send the copies that waited for the budget, oldest first, while it allows and no backlog forms. */
  private serveCopyWaiters(): void {
    for (const [q, kind] of this.copyWaiters) {
      if (!this.hasCopyToken()) return;
      // as in considerCopy: a copy never joins a backlog
      if (this.base.idleCount === 0 && this.base.queued > 0) return;
      this.sendCopy(q, kind);
    }
  }

  /**
   * Admission control: the pools whose answers the queries need (the base pool; every pool of a
   * non-systematic code) predict, from their measured service times and the work queued and
   * running, when the last of the n new queries' requests would finish; beyond the budget the
   * request is refused now rather than answered with a default at the SLO.
   */
  private admit(n: number): void {
    const a = this.o.admission;
    if (a === undefined || a === null) return;
    const c = this.o.codec;
    // requests each pool gets for the n queries (at least; padding and copies come later, if at all)
    const perPool = new Map<string, number>();
    if (c === null) perPool.set('base', n);
    else if (this.o.mode === 'replication') perPool.set('base', 2 * n);
    else if (c.systematic) perPool.set('base', n);
    else for (const k of c.pools) perPool.set(k, (perPool.get(k) ?? 0) + n / c.k);
    for (const [key, per] of perPool) {
      const pool = this.o.pools.get(key)!;
      const extra = Math.ceil(per);
      // the pools' queues are fair across requests: the new request waits for at most `extra`
      // tasks of each request queued before it, not for their whole backlog
      const load = pool.load(extra);
      if (load === null) continue;
      const v = admissionVerdict(load, pool.serviceTimes.count, extra, a);
      if (v === null) continue;
      this.counts.rejected += n;
      this.ev.rejected?.('latency', n);
      const s = Math.ceil(v.retryAfterMs / 1000);
      throw new ServeError(
        'overloaded',
        `overloaded: predicted latency ${Math.round(v.predictedMs)} ms (pool ${pool.name}: ${load.queued} requests queued, ${load.ahead ?? load.queued} of them ahead of this request, and ${load.inflight} running on ${load.slots} instance slots, ${load.serviceMs.toFixed(1)} ms each) exceeds the admission limit of ${Math.round(a.maxPredictedLatencyMs)} ms (admission.maxPredictedLatencyMs); retry after ${s} s`,
        v.retryAfterMs,
      );
    }
  }

  private miss(q: Query): void {
    if (q.answered) return;
    if (this.o.onMiss === 'error') q.settle(new ServeError('deadline', `no output within the SLO of ${this.o.sloMs} ms`));
    else q.settle({ data: this.o.defaultOutput.slice(), reconstructed: false, defaulted: true, hedged: false });
    if (q.group !== null) this.cancelIfDone(q.group);
  }

  private taskFor(
    pool: Dispatch,
    source: number,
    data: Float32Array,
    expiresAt: number,
    done: (out: Float32Array) => void,
    failed: (e: Error) => void,
    isNeeded: () => boolean,
    input?: { shape: number[]; side?: Task['side'] },
  ): Task {
    // slow-query stories need each request's times; without them the per-query path reads no extra clock
    const told = this.o.slowQueryMs !== undefined;
    const t: Task = {
      source,
      data,
      shape: input?.shape ?? this.o.inputShape,
      expiresAt,
      attempts: 0,
      cancelled: false,
      ...(told ? { createdAt: this.o.clock.now() } : {}),
      ...(input?.side !== undefined ? { side: input.side } : {}),
      done: told
        ? (out) => {
            t.finishedAt = this.o.clock.now();
            done(out);
          }
        : done,
      fail: (e, retryable) => {
        this.ev.taskFailed?.(pool.name);
        if (retryable && t.attempts < this.o.maxAttempts && this.o.clock.now() < expiresAt && isNeeded() && !this.closing) {
          // the next attempt is a new request: it has not started anywhere yet
          delete t.startedAt;
          try {
            this.send(pool, t);
            return;
          } catch {
            // queue full: give up on this task
          }
        }
        if (told) t.finishedAt = this.o.clock.now();
        failed(e);
      },
    };
    return t;
  }

  private story(q: Query, ms: number, r: QueryResult | Error, copyDenied: boolean): SlowQueryStory {
    const at = (x: number | undefined) => (x === undefined ? null : Math.round((x - q.arrival) * 100) / 100);
    const g = q.group;
    const code = this.o.codec;
    const groupTasks: { t: Task; role: string; pool: string }[] = [];
    if (g !== null && code !== null) {
      g.tasks.forEach((t, i) => {
        if (t === null) return;
        const systematicSlot = code.systematic && i < code.k;
        const role = !systematicSlot ? 'parity' : i >= g.queries.length ? 'padding' : g.slots[i].query === q ? 'original' : 'partner';
        groupTasks.push({ t, role, pool: systematicSlot ? 'base' : code.pools[i] });
      });
    }
    const own = q.tasks.map((t) => ({ t, role: t.hedge ? 'copy' : 'original', pool: 'base' }));
    return {
      latencyMs: Math.round(ms * 100) / 100,
      outcome: r instanceof Error ? 'error' : r.defaulted ? 'default' : r.reconstructed ? 'reconstructed' : 'original',
      byCopy: !(r instanceof Error) && r.hedged,
      groupSize: g === null ? 0 : g.queries.length,
      paddedWithAnswered: g === null ? 0 : g.slots.filter((s) => s.query === null).length,
      copiesDeniedSoFar: this.counts.copiesDenied,
      copyDenied,
      tasks: [...groupTasks, ...own].map(({ t, role, pool }) => ({
        role,
        pool,
        instance: t.ranOn ?? null,
        createdMs: at(t.createdAt),
        startedMs: at(t.startedAt),
        finishedMs: at(t.finishedAt),
        cancelled: t.cancelled,
      })),
    };
  }

  private send(pool: Dispatch, t: Task): void {
    pool.submit(t);
    this.counts.tasks++;
  }

  private dispatchUncoded(q: Query): void {
    const t = this.taskFor(
      this.base,
      q.source,
      q.data,
      q.arrival + this.o.sloMs,
      (out) => q.settle({ data: out, reconstructed: false, defaulted: false, hedged: false }),
      // out of attempts: the SLO timer (or a hedged copy) answers the query
      (e) => this.o.log.debug({ error: e.message }, 'query failed; the SLO timer will answer it'),
      () => !q.answered,
    );
    q.tasks.push(t);
    this.send(this.base, t);
    const h = this.o.hedgeMs;
    if (h !== null)
      q.copyTimer = this.o.clock.after(h, () => {
        q.copyTimer = null;
        this.considerCopy(q, 'hedge', h);
      });
  }

  /** The task that carries a query's original (uncoded: its only task; coded: its slot). */
  private originalTask(q: Query): Task | undefined {
    if (q.group === null) return q.tasks[0];
    // non-systematic codes send no original: a copy is the first time the query itself goes out
    if (!this.o.codec!.systematic) return undefined;
    return q.group.tasks[slotOf(q.group, q)] ?? undefined;
  }

  /**
   * Send a second copy of a query once its original has been *running* for `delayMs` (a query
   * that is late only because it waited in the queue is not a straggler: a copy would queue
   * behind the same backlog and only add load). Re-checks until then.
   */
  private considerCopy(q: Query, kind: 'hedge' | 'fallback', delayMs: number): void {
    if (q.answered || q.copied || this.closing || q.copyTimer !== null) return;
    const first = this.originalTask(q);
    const now = this.o.clock.now();
    // never started (queued, or never dispatched) vs. running since startedAt
    const due =
      first === undefined || first.startedAt === undefined ? (first === undefined ? now : now + delayMs) : first.startedAt + delayMs;
    if (due <= now) {
      // copies never join a backlog: queued behind one they would only feed it (under load,
      // copies of late queries make every query later: a feedback loop). They go out when an
      // instance is idle, or when nothing waits in the queue (the copy is the next task served)
      if (this.base.idleCount > 0 || this.base.queued === 0) return this.sendCopy(q, kind);
      q.copyTimer = this.o.clock.after(Math.max(1, delayMs / 4), () => {
        q.copyTimer = null;
        this.considerCopy(q, kind, delayMs);
      });
      return;
    }
    q.copyTimer = this.o.clock.after(due - now, () => {
      q.copyTimer = null;
      this.considerCopy(q, kind, delayMs);
    });
  }

  /** a whole copy token is in the bucket (it sums fractions: ten arrivals at 0.1 make 0.9999999999999999) */
  private hasCopyToken(): boolean {
    return this.copyTokens >= 1 - 1e-9;
  }

  /** A second copy of a late query to the base pool, ahead of the queue and away from the first copy's instance. */
  private sendCopy(q: Query, kind: 'hedge' | 'fallback'): void {
    if (q.answered || q.copied || this.closing) return;
    // the budget is spent, or older queries wait for it: this one waits in line behind them for
    // the tokens the next arrivals add (serveCopyWaiters); a query answered before its copy went
    // out counts as denied
    if (!this.hasCopyToken() || (this.copyWaiters.size > 0 && !this.copyWaiters.has(q))) {
      if (!this.copyWaiters.has(q)) this.copyWaiters.set(q, kind);
      if (this.hasCopyToken()) this.serveCopyWaiters();
      return;
    }
    this.copyTokens = Math.max(0, this.copyTokens - 1);
    this.copyWaiters.delete(q);
    q.copied = true;
    const first = this.originalTask(q);
    const t = this.taskFor(
      this.base,
      q.source,
      q.data,
      q.arrival + this.o.sloMs,
      (out) => {
        q.settle({ data: out, reconstructed: false, defaulted: false, hedged: true });
        if (q.group !== null) this.cancelIfDone(q.group);
      },
      (e) => this.o.log.debug({ error: e.message }, `${kind} copy failed`),
      () => !q.answered,
    );
    t.hedge = true;
    if (first?.ranOn !== undefined) t.avoid = first.ranOn;
    try {
      this.send(this.base, t);
    } catch (e) {
      this.o.log.warn({ error: (e as Error).message }, `${kind} copy not dispatched`);
      return;
    }
    q.tasks.push(t);
    this.counts.copies++;
    this.ev.hedgeSent?.(kind);
  }

  // -------------------------------------------------------------------------
  // coding groups

  private get decodeDeadlineMs(): number {
    // replication: first copy wins, no waiting for the original
    return this.o.mode === 'replication' ? 0 : this.o.decodeDeadlineMs;
  }

  private enqueueCoded(q: Query): void {
    const code = this.o.codec!;
    let g = this.openGroup;
    if (g === null) {
      g = {
        queries: [],
        slots: [],
        outputs: Array(code.n).fill(null),
        failed: Array(code.n).fill(false),
        tasks: Array(code.n).fill(null),
        deadline: q.arrival + this.decodeDeadlineMs,
        deadlinePassed: false,
        timer: null,
        paritySent: false,
        paddingFrom: null,
        parityTimer: null,
        closed: false,
      };
      this.openGroup = g;
      this.liveGroups.add(g);
      const group = g;
      this.openTimer = this.o.clock.after(this.o.maxWaitMs, () => this.closeGroup(group));
      g.timer = this.o.clock.after(Math.max(0, g.deadline - this.o.clock.now()), () => {
        group.deadlinePassed = true;
        this.tryDecode(group);
      });
    }
    q.group = g;
    g.queries.push(q);
    const slot = g.slots.length;
    g.slots.push({ data: q.data, query: q });
    // systematic codes pass originals through unchanged: dispatch each at once, so only the
    // parity queries wait for the group to fill
    if (code.systematic) this.dispatchSlot(g, slot, 'base', q.source, q.data, q.arrival + this.o.sloMs);
    if (g.queries.length >= code.k) this.closeGroup(g);
  }

  private dispatchSlot(
    g: Group,
    i: number,
    key: string,
    source: number,
    data: Float32Array,
    expiresAt: number,
    input?: { shape: number[]; side?: Task['side'] },
  ): void {
    const pool = this.o.pools.get(key)!;
    const t = this.taskFor(
      pool,
      source,
      data,
      expiresAt,
      (out) => this.slotArrived(g, i, out),
      () => {
        g.failed[i] = true;
        this.tryDecode(g);
      },
      () => !g.closed,
      input,
    );
    g.tasks[i] = t;
    try {
      this.send(pool, t);
    } catch (e) {
      g.failed[i] = true;
      this.o.log.warn({ pool: key, error: (e as Error).message }, 'coded query not dispatched');
    }
  }

  private closeGroup(g: Group): void {
    if (this.openGroup !== g) return;
    this.openGroup = null;
    this.openTimer?.cancel();
    this.openTimer = null;
    const code = this.o.codec!;
    const real = g.queries.length;
    const delay = this.o.parityDelayMs;
    const hedged = code.systematic && delay > 0;
    if (real === 1 && code.k > 1 && code.systematic && this.fallback && this.o.singletonGroups === 'copy') {
      // nothing to code with: the original is out; at the decode deadline tryDecode finds the
      // group undecodable and the fallback sends a copy (if the original is still missing)
      g.paritySent = true;
      if (g.deadlinePassed || g.failed.some(Boolean)) this.o.clock.soon(() => this.tryDecode(g));
      return;
    }
    // pad a partial group with answered queries (their outputs are known: no request), or by
    // repeating its own queries, computed like any query (hedged: later, with the parity
    // queries, see dispatchPadding)
    const known = real < code.k && this.padAnswered ? this.answeredPadding(g, code.k - real) : null;
    for (let i = real; i < code.k; i++) {
      if (known === null) g.slots.push({ data: g.queries[i % real].data, query: g.queries[i % real] });
      else {
        const a = known[i - real];
        g.slots.push({ data: a.data, query: null });
        g.outputs[i] = a.output;
      }
    }
    if (real < code.k && code.systematic && known === null) {
      g.paddingFrom = real;
      // (a group whose originals are all back needs no padding: encodeGroup sends nothing)
      if (!hedged && g.queries.some((q) => !q.answered)) this.dispatchPadding(g);
    }
    // encode and send the coded queries after this event's work, so that the originals just
    // dispatched go out first and encoding never delays them; with parityDelayMs (systematic
    // codes only) after that delay, unless every original is back
    // (a group whose deadline passed while it was open, or with a failed original, waits no longer)
    if (hedged && !g.deadlinePassed && !g.failed.some(Boolean)) g.parityTimer = this.o.clock.after(delay, () => this.encodeGroup(g));
    else this.o.clock.soon(() => this.encodeGroup(g));
  }

  private encodeGroup(g: Group): void {
    if (g.closed || g.paritySent || this.closing) return;
    g.parityTimer?.cancel();
    g.parityTimer = null;
    const code = this.o.codec!;
    // every original already answered: the parity queries would protect nothing
    if (code.systematic && g.queries.every((q) => q.answered)) return this.cancelIfDone(g);
    g.paritySent = true;
    this.dispatchPadding(g);
    let coded;
    const t0 = performance.now();
    try {
      coded = code.encode(g.slots.map((s) => s.data));
    } catch (e) {
      this.o.log.error({ error: (e as Error).message }, 'encode failed; the group runs without redundancy');
      if (!code.systematic) {
        this.closeOut(g);
        for (const q of g.queries) {
          q.group = null;
          this.dispatchUncoded(q);
        }
        return;
      }
      // systematic: the originals are out; the fallback still covers a late one
      return this.tryDecode(g);
    }
    this.ev.encoded?.((performance.now() - t0) / 1000);
    const expiresAt = Math.max(...g.queries.map((q) => q.arrival)) + this.o.sloMs;
    // the coded queries belong to the request of the group's last query: a large request's
    // groups all wait in its own line, and a query that closed a group with it is not held back
    const source = g.queries[g.queries.length - 1].source;
    coded.forEach((cq, i) => {
      if (code.systematic && i < code.k) return;
      this.dispatchSlot(g, i, code.pools[i], source, cq.data, expiresAt, { shape: cq.shape, side: cq.side });
    });
    this.tryDecode(g);
  }

  /** Send a partial group's padding copies (systematic codes) if they have not gone out yet. */
  private dispatchPadding(g: Group): void {
    if (g.paddingFrom === null) return;
    const from = g.paddingFrom;
    g.paddingFrom = null;
    for (let i = from; i < this.o.codec!.k; i++) {
      const q = g.slots[i].query!;
      this.dispatchSlot(g, i, 'base', q.source, q.data, q.arrival + this.o.sloMs);
    }
  }

  private slotArrived(g: Group, i: number, out: Float32Array): void {
    if (g.closed) return;
    g.outputs[i] = out;
    const code = this.o.codec!;
    if (code.systematic && i < code.k) {
      const q = g.slots[i].query;
      // a padding slot (a partial group repeats its own queries) computed F(X) too: if it comes
      // first it answers the query, as a copy
      if (q !== null && !q.answered) q.settle({ data: out, reconstructed: false, defaulted: false, hedged: i >= g.queries.length });
    }
    this.tryDecode(g);
  }

  /** Decode if some query is still unanswered, it is late or failed, and the code can decode; else fall back. */
  private tryDecode(g: Group): void {
    if (g.closed) return;
    const code = this.o.codec!;
    const unanswered = g.queries.filter((q) => !q.answered);
    if (unanswered.length === 0) return this.cancelIfDone(g);
    const late = g.deadlinePassed || this.o.clock.now() >= g.deadline;
    const anyFailed = g.slots.some((s, i) => s.query !== null && !s.query.answered && g.failed[i]);
    if (code.systematic && !late && !anyFailed) return;
    // approximate codes (Berrut): decode early only once every output that can still come is in
    if (!code.systematic && code.approximateDecoding && !late && g.outputs.some((o, i) => o === null && !g.failed[i])) return;
    // late or failed before a delayed parity went out: send it now, whatever parityDelayMs says
    // (encodeGroup comes back here)
    if (!g.paritySent && this.openGroup !== g) return this.encodeGroup(g);
    const avail = g.outputs.map((o) => o !== null);
    if (!code.canDecode(avail)) return this.fallBack(g, unanswered, late || anyFailed);
    const t0 = performance.now();
    let decoded: { data: Float32Array[]; reconstructed: boolean[] };
    try {
      decoded = code.decode(g.outputs);
    } catch (e) {
      this.o.log.error({ error: (e as Error).message, available: avail }, 'decode failed');
      return this.fallBack(g, unanswered, true);
    }
    this.ev.decoded?.((performance.now() - t0) / 1000);
    g.slots.forEach(({ query: q }, i) => {
      if (q !== null && !q.answered)
        q.settle({ data: decoded.data[i], reconstructed: decoded.reconstructed[i], defaulted: false, hedged: false });
    });
    this.cancelIfDone(g);
  }

  /**
   * The second line of defense: the group cannot decode by the deadline (the partner or the
   * parity is late too, or decoding failed): each missing original goes out again, first
   * useful answer wins. A failed original goes out at once; a late one once it has run for the
   * decode deadline (non-systematic codes: at once, they sent no original).
   */
  private fallBack(g: Group, unanswered: Query[], due: boolean): void {
    if (!this.fallback || !due || this.openGroup === g) return;
    for (const q of unanswered) {
      const i = slotOf(g, q);
      if (this.o.codec!.systematic && g.failed[i]) this.sendCopy(q, 'fallback');
      else this.considerCopy(q, 'fallback', this.decodeDeadlineMs);
    }
  }

  private closeOut(g: Group): void {
    g.closed = true;
    g.timer?.cancel();
    g.parityTimer?.cancel();
    this.liveGroups.delete(g);
  }

  /** When every query of the group is answered, drop its queued coded queries (best-effort cancellation). */
  private cancelIfDone(g: Group): void {
    if (g.closed || this.openGroup === g || g.queries.some((q) => !q.answered)) return;
    this.closeOut(g);
    if (!g.paritySent) this.ev.paritySkipped?.();
    for (const t of g.tasks) if (t !== null) t.cancelled = true;
  }

  /** Stop: every open query is answered with an 'unavailable' error (exactly once). */
  close(): void {
    if (this.closing) return;
    this.closing = true;
    this.openTimer?.cancel();
    for (const q of [...this.live]) q.settle(new ServeError('unavailable', 'frontend is shutting down'));
    for (const g of [...this.liveGroups]) this.closeOut(g);
    this.openGroup = null;
  }
}
