// The frontend's configuration file (JSON), validated with TypeBox.
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { readFileSync } from 'node:fs';
import { checkInstanceEntries } from './discovery.js';
import type { PolicyOptions } from './policy.js';
import type { AdmissionOptions } from './admission.js';

const PoolSchema = Type.Object(
  {
    /** the V2 model name the instances serve */
    model: Type.String({ minLength: 1 }),
    /** addresses host:port of the instances (their gRPC port, or their HTTP port with protocol "rest"), or DNS names
     * dns:///NAME:PORT (every A record is an instance; see ./discovery.ts) */
    instances: Type.Array(Type.String({ minLength: 3 }), { minItems: 1 }),
    /** how the frontend speaks to these instances: V2 gRPC (default) or V2 REST with binary tensor data over
     * HTTP/1.1 keep-alive, which costs the frontend less CPU per request (docs/SERVING.md, "Transport") */
    protocol: Type.Optional(Type.Union([Type.Literal('grpc'), Type.Literal('rest')])),
  },
  { additionalProperties: false },
);

export const FrontendConfigSchema = Type.Object(
  {
    /** the name clients use (V2 model name) and the Clipper application name */
    name: Type.String({ minLength: 1, pattern: '^[A-Za-z0-9_.-]+$' }),
    app: Type.Optional(Type.String({ minLength: 1, pattern: '^[A-Za-z0-9_.-]+$' })),
    host: Type.Optional(Type.String()),
    /** REST port (0 = any free port); omitted = no REST */
    httpPort: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
    /** gRPC port (0 = any free port); omitted = no gRPC */
    grpcPort: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
    mode: Type.Union([Type.Literal('coded'), Type.Literal('equal-resources'), Type.Literal('replication'), Type.Literal('none')]),
    /** the code for mode coded: a code config ({family, k, r, ...}) */
    code: Type.Optional(
      Type.Object(
        { family: Type.String(), k: Type.Integer({ minimum: 1 }), r: Type.Integer({ minimum: 0 }) },
        { additionalProperties: true },
      ),
    ),
    /** or a code checkpoint written by training (config + learned modules) */
    codeCheckpoint: Type.Optional(Type.String()),
    pools: Type.Object(
      {
        base: PoolSchema,
        /** parity pools by parity index j (ParM) */
        parity: Type.Optional(Type.Array(PoolSchema)),
        /** family-specific worker pools by name, then index */
        workers: Type.Optional(Type.Record(Type.String(), Type.Array(PoolSchema))),
      },
      { additionalProperties: false },
    ),
    /** a partial coding group is flushed this long after its first query arrived */
    maxWaitMs: Type.Optional(Type.Number({ minimum: 0 })),
    /** systematic codes: parity queries are sent this long after their group closed (a hedge: a group
     * whose originals all answered by then sends none; a failed or late original sends them at once).
     * Default 0: at once, as ParM does. */
    parityDelayMs: Type.Optional(Type.Number({ minimum: 0 })),
    /** uncoded modes (none, equal-resources): a query still unanswered after hedgeMs is sent again to another
     * instance (a hedged request, as in "The Tail at Scale"); first answer wins. Omitted: no hedging. */
    hedgeMs: Type.Optional(Type.Number({ minimum: 0 })),
    /** coded mode: when a late query's group cannot be decoded by its decode deadline (the partner or the
     * parity is late too), re-issue the missing originals to the base pool as hedged requests (default true) */
    fallback: Type.Optional(Type.Boolean()),
    /** hedged and fallback copies: at most this many per query on average (a token bucket filled by
     * arrivals; bursts up to max(1, 100 x budget) copies), so copies never multiply the load of an
     * overloaded frontend or pool (default 0.1; null: no limit) */
    /** coded mode with the fallback: a coding group that closes with one query is padded and encoded
     * ('pad', default) or sent alone and protected by a fallback copy after the decode deadline ('copy') */
    singletonGroups: Type.Optional(Type.Union([Type.Literal('pad'), Type.Literal('copy')])),
    /** coded mode, systematic codes: a group that closes with fewer than k queries is padded with queries
     * this frontend already answered, whose outputs are known, so no padding request goes out ('answered',
     * default), or with copies of its own queries, computed by the base pool ('repeat') */
    padding: Type.Optional(Type.Union([Type.Literal('answered'), Type.Literal('repeat')])),
    copyBudget: Type.Optional(Type.Union([Type.Number({ minimum: 0 }), Type.Null()])),
    /** log every query answered this many ms or more after arrival, with its requests' story (pino warn 'slow query'); default: off */
    slowQueryLogMs: Type.Optional(Type.Number({ minimum: 0 })),
    /** latency objective: a query unanswered after sloMs gets the default response (or an error) */
    sloMs: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
    /** a data output is "late" this long after its query arrived; then decoding may replace it (default sloMs * 0.02) */
    decodeDeadlineMs: Type.Optional(Type.Number({ minimum: 0 })),
    /** what a query gets when nothing is available by the SLO */
    onMiss: Type.Optional(Type.Union([Type.Literal('default'), Type.Literal('error')])),
    /** the default output (default: zeros) */
    defaultOutput: Type.Optional(Type.Array(Type.Number())),
    /** how queued work reaches instances: one queue, the first free instance takes the next task (default); each
     * instance's own queue, in turn; or one queue, the free instance that has been fastest lately takes it */
    dispatch: Type.Optional(Type.Union([Type.Literal('single-queue'), Type.Literal('round-robin'), Type.Literal('fastest-free')])),
    /** requests in flight per instance (1 = an instance pulls work only when idle) */
    instanceConcurrency: Type.Optional(Type.Integer({ minimum: 1, maximum: 64 })),
    /** queries accepted and not yet answered, over all clients; beyond it: 429 / RESOURCE_EXHAUSTED */
    maxPendingQueries: Type.Optional(Type.Integer({ minimum: 1 })),
    /** tasks waiting in one pool's queue; beyond it new queries are refused */
    maxPoolQueue: Type.Optional(Type.Integer({ minimum: 1 })),
    /** admission control: a query whose latency, predicted from the instances' measured service times and the
     * requests queued and running, exceeds maxPredictedLatencyMs (default sloMs / 2) is refused at once with
     * 429 / RESOURCE_EXHAUSTED and a Retry-After, instead of being accepted and answered with the default at the
     * SLO. minSamples (default 20): requests a pool must have served before its predictions count. */
    admission: Type.Optional(
      Type.Object(
        {
          enabled: Type.Optional(Type.Boolean()),
          maxPredictedLatencyMs: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
          minSamples: Type.Optional(Type.Integer({ minimum: 0 })),
        },
        { additionalProperties: false },
      ),
    ),
    /** attempts per task when an instance fails (>= 1) */
    maxAttempts: Type.Optional(Type.Integer({ minimum: 1, maximum: 5 })),
    maxBatch: Type.Optional(Type.Integer({ minimum: 1 })),
    maxBodyBytes: Type.Optional(Type.Integer({ minimum: 1024 })),
    /** bounds on one request's work (defaults in src/serve/v2/types.ts DEFAULT_LIMITS): JSON nesting and values, gRPC typed
     * values, the time to receive a whole request, HTTP idle and keep-alive timeouts (ms) */
    limits: Type.Optional(
      Type.Object(
        {
          maxJsonDepth: Type.Optional(Type.Integer({ minimum: 4, maximum: 1024 })),
          maxJsonElements: Type.Optional(Type.Integer({ minimum: 1 })),
          maxTypedElements: Type.Optional(Type.Integer({ minimum: 1 })),
          requestTimeoutMs: Type.Optional(Type.Integer({ minimum: 100 })),
          idleTimeoutMs: Type.Optional(Type.Integer({ minimum: 100 })),
          keepAliveTimeoutMs: Type.Optional(Type.Integer({ minimum: 100 })),
        },
        { additionalProperties: false },
      ),
    ),
    health: Type.Optional(
      Type.Object(
        {
          intervalMs: Type.Optional(Type.Number({ minimum: 10 })),
          timeoutMs: Type.Optional(Type.Number({ minimum: 1 })),
          failures: Type.Optional(Type.Integer({ minimum: 1 })),
        },
        { additionalProperties: false },
      ),
    ),
    /** DNS discovery of instances listed as dns:///NAME:PORT: re-resolved every intervalMs (default 5000);
     * servers: DNS servers to ask (IP[:PORT]; default: the system resolver); timeoutMs per query (default 2000) */
    discovery: Type.Optional(
      Type.Object(
        {
          intervalMs: Type.Optional(Type.Number({ minimum: 10 })),
          servers: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })),
          timeoutMs: Type.Optional(Type.Number({ minimum: 1 })),
        },
        { additionalProperties: false },
      ),
    ),
    logLevel: Type.Optional(Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)))),
  },
  { additionalProperties: false },
);

export type FrontendConfig = Static<typeof FrontendConfigSchema>;

/** Validate a parsed config, with every problem listed by JSON path. */
export function validateFrontendConfig(doc: unknown, source = 'config'): FrontendConfig {
  if (!Value.Check(FrontendConfigSchema, doc)) {
    const errs = [...Value.Errors(FrontendConfigSchema, doc)].slice(0, 10).map((e) => `  ${e.path || '/'}: ${e.message}`);
    throw new Error(`${source} is not a valid frontend config:\n${errs.join('\n')}`);
  }
  const c = doc as FrontendConfig;
  if (c.mode === 'coded' && (c.code === undefined) === (c.codeCheckpoint === undefined))
    throw new Error(`${source}: mode "coded" needs exactly one of "code" and "codeCheckpoint"`);
  if (c.mode !== 'coded' && (c.code !== undefined || c.codeCheckpoint !== undefined))
    throw new Error(`${source}: "code"/"codeCheckpoint" only apply to mode "coded" (mode is "${c.mode}")`);
  if (c.mode !== 'coded' && (c.pools.parity !== undefined || c.pools.workers !== undefined)) {
    throw new Error(
      `${source}: mode "${c.mode}" uses base instances only; list the extra instances under pools.base (they serve as base replicas)`,
    );
  }
  if (c.hedgeMs !== undefined && (c.mode === 'coded' || c.mode === 'replication'))
    throw new Error(
      `${source}: "hedgeMs" applies to modes "none" and "equal-resources" (coded mode has "fallback", replication sends two copies anyway)`,
    );
  if (c.fallback !== undefined && c.mode !== 'coded')
    throw new Error(`${source}: "fallback" applies to mode "coded" only (mode is "${c.mode}")`);
  if (c.httpPort === undefined && c.grpcPort === undefined) throw new Error(`${source}: give httpPort and/or grpcPort`);
  checkInstanceEntries(c, source);
  return c;
}

export function readFrontendConfig(path: string): FrontendConfig {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`cannot read frontend config ${path}: ${(e as Error).message}`);
  }
  return validateFrontendConfig(doc, path);
}

/** The serving policy's settings a frontend config gives, with the frontend's defaults. */
export type PolicySettings = Pick<
  PolicyOptions,
  | 'mode'
  | 'sloMs'
  | 'decodeDeadlineMs'
  | 'maxWaitMs'
  | 'parityDelayMs'
  | 'onMiss'
  | 'maxPendingQueries'
  | 'maxAttempts'
  | 'hedgeMs'
  | 'fallback'
  | 'copyBudget'
  | 'slowQueryMs'
  | 'singletonGroups'
  | 'padding'
> & { admission: AdmissionOptions | null };

/**
 * The policy settings of a frontend config: what the frontend runs its ServingPolicy with
 * (the rest of PolicyOptions, the code, pools, clock and shapes, it supplies at start).
 */
export function policySettings(c: FrontendConfig): PolicySettings {
  const sloMs = c.sloMs ?? 1000;
  return {
    mode: c.mode,
    sloMs,
    // replication ignores it: the policy answers with the first copy
    decodeDeadlineMs: c.decodeDeadlineMs ?? sloMs * 0.02,
    maxWaitMs: c.maxWaitMs ?? 5,
    parityDelayMs: c.parityDelayMs ?? 0,
    onMiss: c.onMiss ?? 'default',
    maxPendingQueries: c.maxPendingQueries ?? 4096,
    maxAttempts: c.maxAttempts ?? 2,
    hedgeMs: c.hedgeMs ?? null,
    fallback: c.fallback ?? true,
    copyBudget: c.copyBudget,
    ...(c.slowQueryLogMs !== undefined ? { slowQueryMs: c.slowQueryLogMs } : {}),
    singletonGroups: c.singletonGroups ?? 'pad',
    padding: c.padding ?? 'answered',
    admission:
      c.admission?.enabled === false
        ? null
        : { maxPredictedLatencyMs: c.admission?.maxPredictedLatencyMs ?? sloMs / 2, minSamples: c.admission?.minSamples ?? 20 },
  };
}
