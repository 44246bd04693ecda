import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'connectors/**/*.test.ts', 'replay/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 60_000,
    // Simulator tests spawn the built CLI; they need their own core each.
    pool: 'forks',
  },
});
