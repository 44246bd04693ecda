/**
 * Typed errors with stable codes. `kind` says what a caller may do about it:
 * retriable (try again later), permanent (the input or config is wrong), partial (some
 * items of a batch failed; the error lists which).
 */
export type ErrorKind = 'retriable' | 'permanent' | 'partial';

export class DataStreamerError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly kind: ErrorKind = 'permanent',
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'DataStreamerError';
  }
}

/** Reference data that does not satisfy its schema or its cross-references. */
export class ReferenceDataError extends DataStreamerError {
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(
      'REFERENCE_DATA_INVALID',
      `${file}: ${problems.length} problem${problems.length === 1 ? '' : 's'} in reference data:\n` +
        problems.map((p) => `  - ${p}`).join('\n'),
    );
    this.name = 'ReferenceDataError';
  }
}

/** A command-line mistake: unknown flag, bad value, unwritable path. */
export class UsageError extends DataStreamerError {
  constructor(message: string) {
    super('CLI_USAGE', message);
    this.name = 'UsageError';
  }
}
