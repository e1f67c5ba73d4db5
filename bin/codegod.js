#!/usr/bin/env node
// The installed `codegod` command: runs the compiled CLI (npm run build produces dist/).
import('../dist/orchestrator/cli.js').catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND') {
    process.stderr.write('codegod: not built yet; run `npm run build` first\n');
    process.exit(1);
  }
  throw err;
});
