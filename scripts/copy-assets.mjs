// Copies what the compiled CLI reads at run time but tsc does not emit: the CUE schema, the
// taskserv catalog and the SQL migrations, so `dist/` finds them beside the code.
import { cpSync, existsSync } from 'node:fs';

for (const dir of ['schemas', 'taskservs', 'orchestrator/src/store/migrations']) {
  if (!existsSync(dir)) continue;
  cpSync(dir, `dist/${dir}`, {
    recursive: true,
    filter: (src) => !src.endsWith('.ts') || src.endsWith('.d.ts'),
  });
}

// Which sources this build is of: tests start dist/ only when it matches (scripts/source-stamp.mjs).
const { sourceStamp, STAMP_FILE } = await import('./source-stamp.mjs');
const { writeFileSync } = await import('node:fs');
writeFileSync(STAMP_FILE, `${sourceStamp()}\n`);
