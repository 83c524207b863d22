// A pool's waiting line, fair across requests: one FIFO line per source (the request a task
// came from), the lines served round-robin, one task per turn. A request of 64 queries then
// delays a single query that arrives after it by at most one task per other active source,
// instead of by all 64 (issue 15: one request must not stall everyone). Inside a source, tasks
// keep their order.
//
// A front lane, served before every line, holds the tasks that must not wait their turn again:
// hedged copies of late queries, tasks handed back by a removed instance (they waited already),
// a task put back because the instance that asked must not run it.
//
// A new source joins the end of the round: it is served after each source already waiting has
// had one turn. A line that empties leaves the round (its source joins at the end again if more
// of its tasks come).

export class Deque<T> {
  private items: (T | undefined)[] = [];
  private head = 0;
  get length(): number {
    return this.items.length - this.head;
  }
  push(x: T): void {
    this.items.push(x);
  }
  unshift(x: T): void {
    if (this.head > 0) this.items[--this.head] = x;
    else this.items.unshift(x);
  }
  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const x = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return x;
  }
  /** the items in order, without removing them */
  toArray(): T[] {
    return this.items.slice(this.head) as T[];
  }
  drain(): T[] {
    const out = this.toArray();
    this.items = [];
    this.head = 0;
    return out;
  }
}

export type SourceId = number | string;

export class FairQueue<T> {
  private readonly front = new Deque<T>();
  private readonly lines = new Map<SourceId, Deque<T>>();
  /** sources with waiting tasks, in the order they are served next */
  private readonly round = new Deque<SourceId>();
  private n = 0;

  constructor(private readonly sourceOf: (t: T) => SourceId) {}

  /** tasks waiting (front lane and every line) */
  get length(): number {
    return this.n;
  }

  /** sources with tasks waiting in their line (the front lane not counted) */
  get sources(): number {
    return this.lines.size;
  }

  /** at the end of its source's line */
  push(t: T): void {
    const s = this.sourceOf(t);
    let line = this.lines.get(s);
    if (line === undefined) {
      line = new Deque<T>();
      this.lines.set(s, line);
      this.round.push(s);
    }
    line.push(t);
    this.n++;
  }

  /** in the front lane: served before every line (last put there, first served) */
  unshift(t: T): void {
    this.front.unshift(t);
    this.n++;
  }

  /** the front lane's next task, else the next source's oldest task (that source then goes to the end of the round) */
  shift(): T | undefined {
    if (this.front.length > 0) {
      this.n--;
      return this.front.shift();
    }
    const s = this.round.shift();
    if (s === undefined) return undefined;
    const line = this.lines.get(s)!;
    const t = line.shift()!;
    if (line.length > 0) this.round.push(s);
    else this.lines.delete(s);
    this.n--;
    return t;
  }

  /**
   * Tasks served before the last of `extra` tasks of a new source pushed now: the front lane,
   * and from each waiting line at most `extra` (one per round until the new source's last
   * turn). A new request is not delayed by the whole backlog of a large one.
   */
  aheadOfNewSource(extra: number): number {
    let ahead = this.front.length;
    for (const line of this.lines.values()) ahead += Math.min(line.length, extra);
    return ahead;
  }

  /** every task (front lane first, then each line in round order), the queue left empty */
  drain(): T[] {
    const out = this.front.drain();
    for (const s of this.round.drain()) out.push(...this.lines.get(s)!.drain());
    this.lines.clear();
    this.n = 0;
    return out;
  }
}
