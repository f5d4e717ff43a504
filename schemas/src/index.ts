/**
 * The workflow language: valibot schemas, problems, and (in later modules) the loaders.
 *
 * @module
 */
export * from './workflow.ts';
export * from './problems.ts';
