import { configDefaults, defineConfig } from 'vitest/config';
import { ENGINE_SUITES, engineRequired, probeDockerEngine } from './tests/setup/docker-engine.js';

export default defineConfig(async () => {
  // Suites that need a Docker engine are left out, with one line naming the engine, when none
  // answers; in CI (CODEGOD_TEST_REQUIRE_ENGINE=1) that is an error instead.
  const engine = await probeDockerEngine();
  const exclude = [...configDefaults.exclude];
  if (!engine.reachable) {
    if (engineRequired()) {
      throw new Error(`CODEGOD_TEST_REQUIRE_ENGINE=1 but no Docker engine answers at ${engine.endpoint} (${engine.reason})`);
    }
    console.log(`tests: skipping ${ENGINE_SUITES}/ (image, compose stack, devops engine): no Docker engine at ${engine.endpoint} (${engine.reason})`);
    exclude.push(`${ENGINE_SUITES}/**`);
  }
  return {
    test: {
      include: ['tests/**/*.test.ts'],
      exclude,
      globalSetup: ['tests/setup/global-build.ts', 'tests/setup/global-redis.ts'],
      pool: 'forks',
      // Integration files start real processes; two cores run two files at a time comfortably.
      maxWorkers: 2,
      testTimeout: 60_000,
      hookTimeout: 60_000,
      reporters: ['default'],
    },
  };
});
