/**
 * The workflow language: valibot schemas, problems, the CUE runner and the loaders.
 *
 * @module
 */
export * from './workflow.ts';
export * from './problems.ts';
export * from './load.ts';
export { exportCue, resolveCueEngine } from './cue.ts';
export type { CueEngine, CueFile, CueResult, ExportCueOptions } from './cue.ts';
export { formatPath, parsePath } from './path.ts';
export type { PathSegment } from './path.ts';
export { SCHEMA_MODULE, SCHEMA_PACKAGE, readSchemaFiles, schemaDir } from './schema-files.ts';
export type { SchemaFile } from './schema-files.ts';
export { STARTER_WORKFLOW, ScaffoldExistsError, scaffoldWorkflowProject } from './scaffold.ts';
export type { ScaffoldOptions } from './scaffold.ts';
export * from './inputs.ts';
