/**
 * Scaffolds a CUE workflow project: a module (`cue.mod/module.cue`), Muster's schema package
 * vendored under `cue.mod/pkg/muster.dev/schemas/`, and a starter `workflow.cue` that imports it.
 *
 * @module
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { MusterError } from './problems.ts';
import { SCHEMA_MODULE, SCHEMA_PACKAGE, readSchemaFiles } from './schema-files.ts';

/** Some files the scaffold would write exist already. */
export class ScaffoldExistsError extends MusterError {
  override readonly name = 'ScaffoldExistsError';
  constructor(
    readonly dir: string,
    readonly existing: readonly string[],
  ) {
    super(
      'MUS2004',
      `${existing.length === 1 ? 'a file' : 'files'} already exist in "${dir}": ${existing.join(', ')}; ` +
        'pass --force to overwrite them, or choose another directory',
    );
  }
}

/** What {@link scaffoldWorkflowProject} does. */
export interface ScaffoldOptions {
  /**
   * Overwrite files that exist.
   *
   * @default false
   */
  readonly force?: boolean;
}

/** The starter workflow's file name. */
export const STARTER_WORKFLOW = 'workflow.cue';

/**
 * Writes a CUE workflow project into `dir`, creating it if needed.
 *
 * @param dir The project directory.
 * @param options `force` to overwrite existing files.
 * @returns The files written, relative to `dir`, in the order written.
 * @throws {ScaffoldExistsError} When a file exists and `force` is not set; nothing is written then.
 * @example
 * ```ts
 * await scaffoldWorkflowProject('deploy');
 * // ['cue.mod/module.cue', 'cue.mod/pkg/muster.dev/schemas/operation.cue', …, 'workflow.cue']
 * ```
 */
export async function scaffoldWorkflowProject(
  dir: string,
  options: ScaffoldOptions = {},
): Promise<string[]> {
  const files = await scaffoldFiles(dir);
  if (!options.force) {
    const existing = files.map((f) => f.path).filter((p) => existsSync(join(dir, p)));
    if (existing.length > 0) throw new ScaffoldExistsError(dir, existing);
  }
  for (const f of files) {
    const path = join(dir, f.path);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, f.content);
  }
  return files.map((f) => f.path);
}

async function scaffoldFiles(dir: string): Promise<Array<{ path: string; content: string }>> {
  const schema = await readSchemaFiles();
  const name =
    basename(resolve(dir))
      .toLowerCase()
      .replace(/[^a-z0-9-]+/g, '-')
      .replace(/^-+|-+$/g, '') || 'workflows';
  return [
    {
      path: 'cue.mod/module.cue',
      content: `// The CUE module of these workflows. Muster's schema is vendored under
// cue.mod/pkg/${SCHEMA_MODULE}/ by \`muster init\`; \`muster init --force\` refreshes it (and
// overwrites ${STARTER_WORKFLOW}).
module: "example.com/${name}"
language: version: "v0.9.0"
`,
    },
    ...schema.map((f) => ({ path: `cue.mod/pkg/${SCHEMA_MODULE}/${f.name}`, content: f.source })),
    { path: STARTER_WORKFLOW, content: starterWorkflow() },
  ];
}

function starterWorkflow(): string {
  return `// A Muster workflow, scaffolded by \`muster init\`.
//
//   muster validate ${STARTER_WORKFLOW}   check it against the schema
//   muster plan ${STARTER_WORKFLOW}       show the tasks it would run, in order
//
// #Workflow and the definitions it uses (#Operation, #Step, #Server, …) are in
// cue.mod/pkg/${SCHEMA_MODULE}/; unknown fields are errors, and unset fields take their defaults.
package workflow

import "${SCHEMA_MODULE}:${SCHEMA_PACKAGE}"

${SCHEMA_PACKAGE}.#Workflow & {
	name:        "hello"
	description: "Say hello on two local servers"

	// Local servers are sandbox directories on this machine: nothing to provision.
	servers: [
		{name: "local-1", provider: "local"},
		{name: "local-2", provider: "local"},
	]

	operations: [
		{
			id:     "hello"
			type:   "update"
			target: "server"
			// No items: every server of the inventory, one at a time.
			rollout: strategy: "sequential"
			timeout: 30
			steps: [
				{name: "greet", type: "echo", params: message: "hello from Muster"},
			]
		},
	]
}
`;
}
