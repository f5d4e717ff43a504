export { createPostgresDriver, type PostgresOptions } from './driver.ts';
