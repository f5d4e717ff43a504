/**
 * Loads workflow and taskserv files (CUE, JSON or YAML) into validated values, or throws an
 * {@link InvalidWorkflowError} that lists every problem with its file, line, path, what was
 * expected and what was found.
 *
 * - CUE: the file's top level is unified with `#Workflow` (or `#Taskserv`) from `schemas/*.cue`,
 *   so closed definitions catch unknown fields and defaults are filled in. Files that import
 *   packages from a module (e.g. `muster.dev/schemas:muster`, as `muster init` scaffolds) are
 *   evaluated in their module's root. The exported JSON then goes through valibot too, since that
 *   is what the code trusts.
 * - JSON and YAML: parsed with `JSON.parse` and `js-yaml` (see `yaml-value.ts`), then valibot.
 *   `yaml`, whose node ranges give exact lines, runs when a problem needs a line, and reads the
 *   YAML files js-yaml cannot stand in for (syntax errors, aliases, unknown tags). CUE runs on
 *   them too only when asked (`cueCheck`, or `MUSTER_CUE_CHECK_ALL=1`): it is slow, and the
 *   conformance test keeps valibot equal to it.
 *
 * @module
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, extname, join, resolve } from 'node:path';
import type * as v from 'valibot';
import { exportCue } from './cue.ts';
import { parseCueHeader, wrapCueSource } from './cue-source.ts';
import { fastSafeParse } from './fast-validate.ts';
import { finishProblems, issuesToProblems, type Locate } from './issues.ts';
import { jsonLocator } from './json-locate.ts';
import { findJsonSyntaxError } from './json-syntax.ts';
import { cueLocator, yamlLocator } from './locate.ts';
import { InvalidWorkflowError, MusterError, type Problem } from './problems.ts';
import { SCHEMA_PACKAGE, readSchemaFiles } from './schema-files.ts';
import { TaskservSchema, WorkflowSchema, type Taskserv, type Workflow } from './workflow.ts';
import { yamlValueLocator } from './yaml-locate.ts';
import { readYamlValue } from './yaml-value.ts';
import { yamlLibrary } from './yaml-library.ts';

/** The languages a workflow file may be written in. */
export type WorkflowFormat = 'cue' | 'json' | 'yaml';

/** A workflow read from a file or a string, valid, with every default filled in. */
export interface LoadedWorkflow {
  /** The workflow as valibot outputs it: all defaults filled. */
  readonly workflow: Workflow;
  /** The file, as given (for messages). */
  readonly file: string;
  readonly format: WorkflowFormat;
  /**
   * Line/column of a dotted path like `operations[2].depends_on[0]` in the source, where known.
   * Exact for JSON and YAML; a best-effort text search for CUE.
   */
  locate(path: string): { line: number; column?: number } | undefined;
}

/** How {@link loadWorkflowSource} reads a string. */
export interface LoadWorkflowOptions {
  readonly format: WorkflowFormat;
  /** The file name problems report, and where CUE imports resolve from. */
  readonly file?: string;
  /**
   * Also check JSON and YAML with CUE, and fail if CUE and valibot disagree.
   *
   * @default `process.env.MUSTER_CUE_CHECK_ALL === '1'`
   */
  readonly cueCheck?: boolean;
}

/** The field a user's CUE top level is wrapped into (CUE reserves names starting with `__`). */
const DOC_FIELD = 'muster_doc__';

/** What is being loaded: the definition CUE checks it against, and the valibot schema. */
interface DocumentKind {
  readonly definition: '#Workflow' | '#Taskserv';
  readonly schema: v.GenericSchema;
  readonly what: string;
}

const WORKFLOW: DocumentKind = {
  definition: '#Workflow',
  schema: WorkflowSchema,
  what: 'workflow',
};
const TASKSERV: DocumentKind = {
  definition: '#Taskserv',
  schema: TaskservSchema,
  what: 'taskserv',
};

/** The file name that stands for standard input, as in `muster validate -`. */
const STDIN = '-';

/** How problems name standard input. */
const STDIN_NAME = '<stdin>';

/** The name problems give a file: `<stdin>` for `-`, else the path as given. */
export function fileNameOf(path: string): string {
  return path === STDIN ? STDIN_NAME : path;
}

/**
 * Reads and validates a workflow file; the format comes from the extension unless given.
 *
 * @param path A `.cue`, `.json`, `.yaml` or `.yml` file, or `-` for standard input (JSON when it
 *   starts with `{` or `[`, else YAML; CUE when `format` says so).
 * @param options.format The format, whatever the file is named.
 * @returns The workflow, its format and a locator into its source.
 * @throws {MusterError} `MUS2002` when the file cannot be read, `MUS2003` for an unknown extension.
 * @throws {InvalidWorkflowError} With every problem, when the file does not validate.
 * @example
 * ```ts
 * const { workflow, locate } = await loadWorkflowFile('examples/deploy.cue');
 * locate('operations[1].depends_on[0]'); // { line: 14, column: 5 }
 * ```
 */
export async function loadWorkflowFile(
  path: string,
  options: { readonly format?: WorkflowFormat | undefined } = {},
): Promise<LoadedWorkflow> {
  if (path === STDIN) {
    const source = await readStdin();
    const format = options.format ?? (/^\ufeff?\s*[{[]/.test(source) ? 'json' : 'yaml');
    return loadWorkflowSource(source, { format, file: STDIN_NAME });
  }
  const format = options.format ?? formatOf(path);
  const source = await readSource(path, 'workflow');
  return loadWorkflowSource(source, { format, file: path });
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Validates a workflow given as a string.
 *
 * @param source The document.
 * @param options Its format, and the file name to report.
 * @returns The workflow, its format and a locator into `source`.
 * @throws {InvalidWorkflowError} With every problem, when the document does not validate.
 */
export async function loadWorkflowSource(
  source: string,
  options: LoadWorkflowOptions,
): Promise<LoadedWorkflow> {
  const file = options.file ?? `<${options.format} source>`;
  const cueCheck = options.cueCheck ?? process.env['MUSTER_CUE_CHECK_ALL'] === '1';
  const { value, locate } = await readDocument(source, { ...options, file, cueCheck }, WORKFLOW);
  return { workflow: value as Workflow, file, format: options.format, locate };
}

/**
 * Reads and validates a taskserv file: a `.cue`, `.json` or `.yaml` file whose top level is a
 * taskserv.
 *
 * @param path The file.
 * @returns The taskserv, defaults filled in.
 * @throws {MusterError} `MUS2002` when the file cannot be read, `MUS2003` for an unknown extension.
 * @throws {InvalidWorkflowError} With every problem, when the file does not validate.
 */
export async function loadTaskservFile(path: string): Promise<Taskserv> {
  const format = formatOf(path);
  const source = await readSource(path, 'taskserv');
  const cueCheck = process.env['MUSTER_CUE_CHECK_ALL'] === '1';
  const { value } = await readDocument(source, { format, file: path, cueCheck }, TASKSERV);
  return value as Taskserv;
}

/**
 * Validates a value (e.g. a parsed request body) as a workflow.
 *
 * @param value Anything.
 * @param file The name to report in problems.
 * @returns The workflow, defaults filled in.
 * @throws {InvalidWorkflowError} With every problem (paths, no lines).
 */
export function validateWorkflowValue(value: unknown, file?: string): Workflow {
  return validate(WORKFLOW, value, file === undefined ? {} : { file }) as Workflow;
}

/**
 * The format a file name implies.
 *
 * @param path A file name.
 * @returns `cue`, `json` or `yaml`.
 * @throws {MusterError} `MUS2003` for any other extension.
 */
export function formatOf(path: string): WorkflowFormat {
  const ext = extname(path).toLowerCase();
  if (ext === '.cue') return 'cue';
  if (ext === '.json') return 'json';
  if (ext === '.yaml' || ext === '.yml') return 'yaml';
  throw new MusterError(
    'MUS2003',
    `cannot tell the format of "${path}" from its extension "${ext}"; name it .cue, .json, .yaml or .yml`,
  );
}

/**
 * Why a file could not be read, in a user's words: `no such file`, `it is a directory`,
 * `permission denied`, else the system's message.
 */
export function whyUnreadable(e: unknown): string {
  const code = (e as { code?: string } | null)?.code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EISDIR') return 'it is a directory';
  if (code === 'EACCES') return 'permission denied';
  return e instanceof Error ? e.message : String(e);
}

async function readSource(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e: unknown) {
    throw new MusterError(
      'MUS2002',
      `cannot read ${what} file "${path}": ${whyUnreadable(e)}; check the path`,
      { cause: e },
    );
  }
}

interface ReadOptions {
  readonly format: WorkflowFormat;
  readonly file: string;
  readonly cueCheck: boolean;
}

/** Parses and validates one document of `kind`. */
async function readDocument(
  text: string,
  options: ReadOptions,
  kind: DocumentKind,
): Promise<{ value: unknown; locate: Locate }> {
  // A byte order mark, which some Windows editors write: no part of the document (RFC 8259 lets a
  // JSON reader ignore it, and editors do not count it as a column).
  const source = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  if (options.format === 'cue') return readCue(source, options, kind);
  const { value, locate, owned } =
    options.format === 'json' ? parseJson(source, options.file) : parseYaml(source, options.file);
  if (value === null || value === undefined) {
    throw new InvalidWorkflowError(
      [
        {
          code: 'schema',
          path: '',
          message: `the file is empty; a ${kind.what} is an object${kind === WORKFLOW ? ' with at least `name` and `operations`' : ' with at least `name`'}`,
          file: options.file,
        },
      ],
      options.file,
    );
  }
  if (!options.cueCheck)
    return { value: validate(kind, value, { file: options.file, locate, owned }), locate };

  // Both schemas, and a loud failure when they disagree: that is a bug in Muster, not in the file.
  const checked = await cueCheckValue(value, kind, options.file, locate);
  let parsed: unknown;
  try {
    parsed = validate(kind, value, { file: options.file, locate, owned });
  } catch (e: unknown) {
    if (!checked.ok || !(e instanceof InvalidWorkflowError)) throw e;
    throw new InvalidWorkflowError(
      [...e.problems, disagreement('CUE accepts it but valibot does not')],
      options.file,
    );
  }
  if (!checked.ok) {
    throw new InvalidWorkflowError(
      [...checked.problems, disagreement('valibot accepts it but CUE does not')],
      options.file,
    );
  }
  return { value: parsed, locate };
}

function disagreement(what: string): Problem {
  return {
    code: 'schema-mismatch',
    path: '',
    message: `the CUE schema and the valibot schema disagree on this document: ${what}`,
    hint: 'this is a bug in Muster; please report it with the file',
  };
}

/** Checks a parsed JSON/YAML value with CUE. */
async function cueCheckValue(
  value: unknown,
  kind: DocumentKind,
  file: string,
  locate: Locate,
): Promise<{ ok: true } | { ok: false; problems: Problem[] }> {
  const schema = await readSchemaFiles();
  const result = await exportCue({
    files: [
      {
        name: file,
        source: `package ${SCHEMA_PACKAGE}\n\n${DOC_FIELD}: ${kind.definition} & ${JSON.stringify(value)}\n`,
        internal: true,
      },
      ...schema.map((f) => ({ name: f.name, source: f.source, internal: true })),
    ],
    expression: DOC_FIELD,
  });
  if (result.ok) return { ok: true };
  return {
    ok: false,
    problems: finishProblems(result.problems, { schema: kind.schema, file, locate }),
  };
}

async function readCue(
  source: string,
  options: ReadOptions,
  kind: DocumentKind,
): Promise<{ value: unknown; locate: Locate }> {
  const header = parseCueHeader(source);
  const packageName = header.packageName ?? SCHEMA_PACKAGE;
  const wrapped = wrapCueSource(source, {
    field: DOC_FIELD,
    definition: kind.definition,
    defaultPackage: SCHEMA_PACKAGE,
  });
  const schema = await readSchemaFiles();
  // Imports of a module's packages (their first element has a dot) resolve from its cue.mod.
  const moduleImports = header.imports.some((p) => p.split('/')[0]!.includes('.'));
  const cwd = moduleImports
    ? findModuleRoot(options.file.startsWith('<') ? process.cwd() : dirname(resolve(options.file)))
    : undefined;
  const locate = cueLocator(source);
  const result = await exportCue({
    files: [
      { name: options.file, source: wrapped.source, mapPosition: wrapped.mapPosition },
      ...schema.map((f) => ({
        name: f.name,
        // The schema joins the user's package, so the wrapper can name `#Workflow` directly.
        source: f.source.replace(/^package muster\s*$/m, `package ${packageName}`),
        internal: true,
      })),
    ],
    expression: DOC_FIELD,
    ...(cwd !== undefined ? { cwd } : {}),
  });
  if (!result.ok) {
    const problems = foldMissingLists(result.problems, locate).map((p) =>
      withImportHint(p, moduleImports),
    );
    throw new InvalidWorkflowError(
      finishProblems(problems, { schema: kind.schema, file: options.file, locate }),
      options.file,
    );
  }
  try {
    return {
      value: validate(kind, result.value, { file: options.file, locate, owned: true }),
      locate,
    };
  } catch (e: unknown) {
    if (!(e instanceof InvalidWorkflowError)) throw e;
    throw new InvalidWorkflowError(
      [...e.problems, disagreement('CUE accepts it but valibot does not')],
      options.file,
    );
  }
}

/**
 * CUE checks a non-empty list, `[#Operation, ...#Operation]`, by building its first element, so a
 * missing `operations` comes back as `operations[0].id` etc. missing. When the source has no such
 * list, say that instead.
 */
function foldMissingLists(problems: readonly Problem[], locate: Locate): Problem[] {
  const folded = new Set<string>();
  const out: Problem[] = [];
  for (const p of problems) {
    const list = /^(.+)\[0\]\.[A-Za-z_][\w-]*$/.exec(p.path)?.[1];
    if (p.message === 'missing required field' && p.line === undefined && list && !locate(list)) {
      if (!folded.has(list)) {
        out.push({
          code: p.code,
          path: list,
          message: 'missing required field',
          expected: 'a list of at least one element',
          ...(p.file ? { file: p.file } : {}),
        });
      }
      folded.add(list);
      continue;
    }
    out.push(p);
  }
  return out;
}

function withImportHint(p: Problem, moduleImports: boolean): Problem {
  if (
    !moduleImports ||
    p.hint ||
    !/import failed|cannot find package|package .* not found/.test(p.message)
  )
    return p;
  return {
    ...p,
    hint: "run `muster init` in the workflow's directory to scaffold cue.mod/ with the muster.dev/schemas package",
  };
}

/** The nearest directory at or above `dir` that holds a `cue.mod`. */
function findModuleRoot(dir: string): string | undefined {
  let current = dir;
  for (;;) {
    if (existsSync(join(current, 'cue.mod'))) return current;
    const parent = dirname(current);
    if (parent === current) return undefined;
    current = parent;
  }
}

/**
 * Validates a parsed document. `owned`: the loader parsed it itself, drops it afterwards, and no
 * list or object appears in it twice (no YAML alias), so the result may share its unchanged lists
 * and records instead of copying them.
 */
function validate(
  kind: DocumentKind,
  value: unknown,
  options: { file?: string; locate?: Locate; owned?: boolean },
): unknown {
  const { owned, ...where } = options;
  const result = fastSafeParse(kind.schema, value, { shareInput: owned === true });
  if (result.success) return result.output;
  throw new InvalidWorkflowError(
    issuesToProblems(result.issues, { schema: kind.schema, ...where }),
    options.file,
  );
}

/** A parsed document; `owned` when no list or object in `value` is reachable twice. */
interface ParsedDocument {
  readonly value: unknown;
  readonly locate: Locate;
  readonly owned: boolean;
}

function parseJson(source: string, file: string): ParsedDocument {
  let value: unknown;
  try {
    value = JSON.parse(source);
  } catch (e: unknown) {
    const found = findJsonSyntaxError(source);
    const pos = found ? positionAt(source, found.offset) : undefined;
    const message = found?.message ?? (e instanceof Error ? e.message : String(e));
    throw new InvalidWorkflowError(
      [
        {
          code: 'syntax',
          path: '',
          message: `invalid JSON: ${message}`,
          file,
          ...(pos ? { line: pos.line, column: pos.column } : {}),
        },
      ],
      file,
    );
  }
  return { value, locate: jsonLocator(source), owned: true };
}

/**
 * A locator that parses YAML `source` with `yaml` on its first call: for the paths js-yaml's
 * events cannot place (see `yaml-locate.ts`). That parser is 100 times slower than JSON.parse and
 * 20 times slower than js-yaml (100k operations: 15-20 s, against 0.15 s and 0.9 s).
 */
function locateYamlOnFirstUse(source: string): Locate {
  let locate: Locate | undefined;
  return (path) => {
    if (locate === undefined) {
      const { LineCounter, parseDocument } = yamlLibrary();
      const lineCounter = new LineCounter();
      locate = yamlLocator(parseDocument(source, { lineCounter, uniqueKeys: true }), lineCounter);
    }
    return locate(path);
  };
}

function parseYaml(source: string, file: string): ParsedDocument {
  const fast = readYamlValue(source);
  if (fast)
    return {
      value: fast.value,
      locate: yamlValueLocator(source, locateYamlOnFirstUse(source)),
      owned: true,
    };
  const { LineCounter, parseDocument } = yamlLibrary();
  const lineCounter = new LineCounter();
  const doc = parseDocument(source, { lineCounter });
  if (doc.errors.length > 0) {
    throw new InvalidWorkflowError(
      doc.errors.map((e) => {
        const pos = e.linePos?.[0];
        return {
          code: 'syntax',
          path: '',
          message: `invalid YAML: ${e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}`,
          file,
          ...(pos ? { line: pos.line, column: pos.col } : {}),
        };
      }),
      file,
    );
  }
  // An alias (`*name`) makes its anchor's list or object appear in two places of the value.
  let aliased = false;
  const value = doc.toJS({
    maxAliasCount: 1000,
    onAnchor: (_value, count) => {
      if (count > 0) aliased = true;
    },
  }) as unknown;
  return { value, locate: yamlLocator(doc, lineCounter), owned: !aliased };
}

function positionAt(source: string, offset: number): { line: number; column: number } {
  const before = source.slice(0, offset);
  const line = before.split('\n').length;
  return { line, column: offset - before.lastIndexOf('\n') };
}
