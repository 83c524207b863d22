// A user's mistake in options or inputs (the CLI prints its message and the usage, exit 2).
// Here, below every layer, so that library code (training runs, sweeps) can raise it too.
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** `value` if it is one of `choices` (the fallback when undefined); else a UsageError naming --name. */
export function choiceOption<T extends string>(value: string | undefined, name: string, choices: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (!(choices as readonly string[]).includes(value))
    throw new UsageError(`--${name} must be one of ${choices.join(', ')}, got '${value}'`);
  return value as T;
}
