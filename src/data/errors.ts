// Errors of the data layer. Every message names the file (or dataset) concerned and says
// how to repair the situation, because they end up verbatim in `coded`'s output.

/** A data file is missing, truncated, corrupt or not in the expected format. */
export class DataFileError extends Error {
  constructor(
    readonly file: string,
    detail: string,
  ) {
    super(`${file}: ${detail}`);
    this.name = 'DataFileError';
  }
}

/** A file's digest differs from the expected one. */
export class ChecksumError extends DataFileError {
  constructor(
    file: string,
    readonly expected: string,
    readonly actual: string,
    what = 'MD5',
    repair = 'delete it and fetch it again',
  ) {
    super(file, `${what} is ${actual}, expected ${expected}: the file is corrupt or not the official one; ${repair}`);
    this.name = 'ChecksumError';
  }
}

/** A dataset is not present locally and could not (or may not) be downloaded. */
export class DatasetUnavailableError extends Error {
  constructor(
    readonly dataset: string,
    message: string,
  ) {
    super(message);
    this.name = 'DatasetUnavailableError';
  }
}

/** One failed attempt of a download (one mirror). */
export interface DownloadAttempt {
  url: string;
  reason: string;
  /** true when the host could not be reached at all (no network, DNS failure, refused, timed out) */
  unreachable: boolean;
}

/** Every mirror of a file failed; the message says how to obtain the file by hand. */
export class DownloadError extends Error {
  constructor(
    readonly file: string,
    readonly expected: string,
    readonly attempts: DownloadAttempt[],
    readonly destination: string,
    manual: string,
  ) {
    const offline = attempts.length > 0 && attempts.every((a) => a.unreachable);
    const lines = attempts.map((a) => `  ${a.url}: ${a.reason}`);
    super(
      `cannot download ${file} (expected ${expected})${offline ? ': no mirror could be reached — this machine seems to have no internet access to them' : ''}\n` +
        `${lines.join('\n')}\n` +
        `To obtain it manually: ${manual}`,
    );
    this.name = 'DownloadError';
  }
}
