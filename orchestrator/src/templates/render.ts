/**
 * Renders step params: every string in a step's `params` (recursively through objects and lists)
 * that holds template syntax is a Jinja2-style template, rendered with nunjucks at dispatch time
 * over a {@link TemplateContext}. Autoescaping is off (nothing here is HTML) and undefined is
 * strict: naming something that does not exist fails the step, saying what is missing.
 *
 * Rendered params are handed to the step's handler and never stored; what is stored is the
 * workflow as written.
 *
 * @module
 */
import type { Step, StepAction } from '../../../schemas/src/workflow.ts';
import { MusterError } from '../../../schemas/src/problems.ts';
import type { TemplateContext } from './context.ts';
import { renderEnvironment } from './nunjucks.ts';
import { cleanNunjucksMessage, isTemplate, templateReferences } from './references.ts';

/** A template failed to render: the param's path and why, never a secret value. */
export class TemplateError extends MusterError {
  override readonly name = 'TemplateError';
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super('ORC1921', `${path}: ${reason}`);
  }
}

/**
 * Renders the templates in a value: strings holding `{{`, `{%` or `{#` are rendered, objects and
 * lists are walked, anything else is kept.
 *
 * @param value Step params, or any JSON-like value.
 * @param context The template variables.
 * @param path Where the value sits, for errors (`params`).
 * @returns A copy with every template rendered.
 * @throws {TemplateError} When a template does not parse, or names something that is not there.
 */
export function renderValue(value: unknown, context: TemplateContext, path: string): unknown {
  if (typeof value === 'string')
    return isTemplate(value) ? renderString(value, context, path) : value;
  if (Array.isArray(value)) return value.map((v, i) => renderValue(v, context, `${path}[${i}]`));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>).map(([k, v]) => [
        k,
        renderValue(
          v,
          context,
          /^[A-Za-z_][\w-]*$/.test(k) ? `${path}.${k}` : `${path}[${JSON.stringify(k)}]`,
        ),
      ]),
    );
  }
  return value;
}

/**
 * A step with its params (and its rollback action's params) rendered.
 *
 * @throws {TemplateError} As {@link renderValue}.
 */
export function renderStep(step: Step, context: TemplateContext): Step {
  const params = renderValue(step.params, context, 'params') as Step['params'];
  const rollback: StepAction | undefined = step.rollback && {
    ...step.rollback,
    params: renderValue(step.rollback.params, context, 'rollback.params') as StepAction['params'],
  };
  return { ...step, params, ...(rollback ? { rollback } : {}) };
}

function renderString(source: string, context: TemplateContext, path: string): string {
  try {
    return renderEnvironment().renderString(source, context as unknown as object);
  } catch (e: unknown) {
    const missing = explainMissing(source, context);
    throw new TemplateError(path, missing ?? cleanNunjucksMessage(e));
  }
}

/** Says which name a template reads that the context does not have, if that is what failed. */
function explainMissing(source: string, context: TemplateContext): string | undefined {
  const parsed = templateReferences(source);
  if (!('references' in parsed)) return undefined;
  for (const { path } of parsed.references) {
    let node: unknown = context;
    for (let i = 0; i < path.length; i++) {
      const key = path[i]!;
      const next =
        node !== null && typeof node === 'object'
          ? (node as Record<string, unknown>)[key]
          : undefined;
      if (next === undefined || next === null) return describeMissing(path.slice(0, i + 1), node);
      node = next;
    }
  }
  return undefined;
}

function describeMissing(path: readonly (string | number)[], parent: unknown): string {
  const name = path.map(String).join('.');
  const known = parent !== null && typeof parent === 'object' ? Object.keys(parent) : [];
  const list = (what: string) =>
    known.length > 0 ? `; ${what}: ${known.join(', ')}` : `; there are none`;
  const [root, first] = path;
  if (root === 'server' && path.length === 1)
    return 'this task runs on no server, so it has no server facts';
  if (path.length === 1) return `${name} is not defined; templates can use ${known.join(', ')}`;
  if (root === 'inputs')
    return `input "${String(first)}" has no value; give it with --set ${String(first)}=… or a default`;
  if (root === 'steps' && path.length === 2)
    return `no earlier step named "${String(first)}" has run in this task${list('earlier steps')}`;
  if (root === 'steps' && path.length === 4)
    return `step "${String(first)}" published no output "${String(path[3])}"${list('its outputs')}`;
  if (root === 'operations' && path.length === 2)
    return `operation "${String(first)}" has published no outputs for this task (it has not run, or it ran on no task this one can see)`;
  if (root === 'operations' && path.length === 4)
    return `operation "${String(first)}" published no output "${String(path[3])}"${list('its outputs')}`;
  if (root === 'secrets')
    return `no secret "${path.slice(1).map(String).join('.')}"${list('secrets at that level')}`;
  return `${name} is not defined${list(`${path.slice(0, -1).map(String).join('.')} has`)}`;
}
