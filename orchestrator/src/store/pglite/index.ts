export { createPgliteDriver, type PgliteOptions } from './driver.ts';
