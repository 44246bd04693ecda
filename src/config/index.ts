/** The configuration: one file (YAML or JSON) plus environment overrides. docs/configuration.md */
export { ENV_OVERRIDES } from './env.js';
export { ConfigError, type ConfigErrorCode } from './errors.js';
export { loadConfig } from './load.js';
export { kafkaLogOptions, storeOptions } from './map.js';
export { type DataStreamerConfig, DEFAULTS } from './types.js';
