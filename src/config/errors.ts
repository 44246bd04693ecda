import { DataStreamerError } from '../util/errors.js';

export type ConfigErrorCode = 'CONFIG_INVALID' | 'CONFIG_UNREADABLE';

/**
 * A configuration that cannot be used: every problem with the path it is at (and the
 * environment variable it came from). Messages never carry a password.
 */
export class ConfigError extends DataStreamerError {
  declare readonly code: ConfigErrorCode;

  constructor(
    code: ConfigErrorCode,
    /** The config file, or "the configuration" when there is none. */
    readonly source: string,
    readonly problems: string[],
    options?: { cause?: unknown },
  ) {
    super(
      code,
      problems.length === 1
        ? `${source}: ${problems[0]}`
        : `${source}: ${problems.length} problems in the configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`,
      'permanent',
      options,
    );
    this.name = 'ConfigError';
  }
}
