/**
 * The providers Muster ships.
 *
 * @module
 */
export type * from './types.ts';
export { createLocalProvider, type LocalProviderOptions } from './local/index.ts';
