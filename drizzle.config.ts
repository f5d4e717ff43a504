import { defineConfig } from 'drizzle-kit';

// `npm run db:generate` writes SQL migrations from the tables; both drivers apply the same files.
export default defineConfig({
  dialect: 'postgresql',
  schema: './orchestrator/src/store/tables.ts',
  out: './orchestrator/src/store/migrations',
});
