/** The partitioned log: the interface (types.ts), its errors, and the embedded implementation. */
export { EmbeddedLog, openEmbeddedLog } from './embedded/log.js';
export type { EmbeddedLogOptions, FsyncPolicy, Recovery } from './embedded/options.js';
export type { EmbeddedTopic } from './embedded/topic.js';
export { LogError, type LogErrorCode, type LogErrorDetails } from './errors.js';
export type * from './types.js';
