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
