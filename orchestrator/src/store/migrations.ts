/**
 * Where the SQL migrations are, from source or from `dist/` (where the build copies them).
 *
 * @module
 */
import { fileURLToPath } from 'node:url';

/** The migrations folder, for drizzle's migrators. */
export const MIGRATIONS_FOLDER = fileURLToPath(new URL('./migrations', import.meta.url));
