/**
 * What a template names, found without rendering it: nunjucks parses the template, and every
 * variable lookup with a static path (`inputs.version`, `steps["build"].outputs.tag`) becomes a
 * {@link TemplateReference}. Names a template binds itself (`{% for t in … %}`, `{% set %}`,
 * macro arguments, `loop`) are not references.
 *
 * @module
 */
import { nunjucks } from './nunjucks.ts';

/** A variable path a template reads, e.g. `['steps', 'build', 'outputs', 'tag']`. */
export interface TemplateReference {
  /** The static part of the path; a lookup with a computed key ends it. */
  readonly path: readonly (string | number)[];
  /** The path continues with a computed key (`secrets[name]`), so only its start is known. */
  readonly dynamic: boolean;
}

/** A template that does not parse. */
export interface TemplateSyntaxProblem {
  /** `line 1, column 10: expected variable end`. */
  readonly message: string;
}

/** Where a string holds template syntax. */
const MARKERS = /\{\{|\{%|\{#/;

/** Whether a string is a template (holds `{{`, `{%` or `{#`). */
export function isTemplate(text: string): boolean {
  return MARKERS.test(text);
}

/** Functions nunjucks provides in every template. */
const GLOBALS = new Set(['range', 'cycler', 'joiner', 'loop', 'caller', 'super']);

interface AstNode {
  readonly typename: string;
  readonly fields?: readonly string[];
  readonly value?: unknown;
  readonly children?: readonly AstNode[];
  readonly [field: string]: unknown;
}

/**
 * Parses a template and lists what it reads.
 *
 * @param source The template.
 * @returns Its references, or the syntax problem.
 */
export function templateReferences(
  source: string,
): { references: TemplateReference[] } | { problem: TemplateSyntaxProblem } {
  let root: AstNode;
  try {
    root = (nunjucks() as unknown as { parser: { parse(src: string): AstNode } }).parser.parse(
      source,
    );
  } catch (e: unknown) {
    return { problem: { message: cleanNunjucksMessage(e) } };
  }
  const locals = new Set<string>();
  collectLocals(root, locals);
  const references: TemplateReference[] = [];
  visit(root, (path, dynamic) => {
    const head = path[0];
    if (typeof head === 'string' && !locals.has(head) && !GLOBALS.has(head)) {
      references.push({ path, dynamic });
    }
  });
  return { references };
}

/**
 * A nunjucks error message without its noise: `(unknown path) [Line 1, Column 10]\n  expected
 * variable end` becomes `line 1, column 10: expected variable end`.
 */
export function cleanNunjucksMessage(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  const m = /\[Line (\d+), Column (\d+)\]\s*([\s\S]*)$/.exec(text);
  const body = (m ? m[3]! : text)
    .replace(/^\(unknown path\)\s*/, '')
    .replace(/^Error:\s*/, '')
    .trim();
  if (m) return `line ${m[1]}, column ${m[2]}: ${body}`;
  const at = e as { lineno?: unknown; colno?: unknown };
  return typeof at.lineno === 'number' && typeof at.colno === 'number'
    ? `line ${at.lineno}, column ${at.colno}: ${body}`
    : body;
}

function childNodes(node: AstNode): AstNode[] {
  const out: AstNode[] = [];
  const push = (c: unknown) => {
    if (Array.isArray(c)) c.forEach(push);
    else if (c && typeof c === 'object' && 'typename' in c) out.push(c as AstNode);
  };
  for (const field of node.fields ?? []) push(node[field]);
  return out;
}

function collectLocals(node: AstNode, locals: Set<string>): void {
  const bind = (target: unknown) => {
    const t = target as AstNode | undefined;
    if (!t) return;
    if (t.typename === 'Symbol') locals.add(String(t.value));
    else childNodes(t).forEach(bind);
  };
  if (node.typename === 'For' || node.typename === 'AsyncEach' || node.typename === 'AsyncAll') {
    bind(node['name']);
  } else if (node.typename === 'Set') {
    (node['targets'] as unknown[] | undefined)?.forEach(bind);
  } else if (node.typename === 'Macro' || node.typename === 'Caller') {
    bind(node['args']);
  } else if (node.typename === 'FromImport' || node.typename === 'Import') {
    bind(node['target']);
    bind(node['names']);
  }
  childNodes(node).forEach((c) => collectLocals(c, locals));
}

function visit(node: AstNode, found: (path: (string | number)[], dynamic: boolean) => void): void {
  if (node.typename === 'Symbol') {
    found([String(node.value)], false);
    return;
  }
  if (node.typename === 'LookupVal') {
    // Unwind a.b["c"][x] to its root, keeping the static keys.
    const keys: AstNode[] = [];
    let target: AstNode = node;
    while (target.typename === 'LookupVal') {
      keys.unshift(target['val'] as AstNode);
      target = target['target'] as AstNode;
    }
    if (target.typename !== 'Symbol') {
      visit(target, found);
      keys.forEach((k) => visit(k, found));
      return;
    }
    const path: (string | number)[] = [String(target.value)];
    let dynamic = false;
    for (const key of keys) {
      if (
        !dynamic &&
        key.typename === 'Literal' &&
        (typeof key.value === 'string' || typeof key.value === 'number')
      ) {
        path.push(key.value);
      } else {
        dynamic = true;
        visit(key, found);
      }
    }
    found(path, dynamic);
    return;
  }
  if (
    node.typename === 'Filter' ||
    node.typename === 'FunCall' ||
    node.typename === 'FilterAsync'
  ) {
    // A filter's or function's name is not a variable; its arguments are.
    const name = node['name'] as AstNode | undefined;
    if (node.typename === 'FunCall' && name && name.typename !== 'Symbol') visit(name, found);
    if (
      node.typename === 'FunCall' &&
      name?.typename === 'Symbol' &&
      !GLOBALS.has(String(name.value))
    ) {
      found([String(name.value)], false);
    }
    const args = node['args'] as AstNode | undefined;
    if (args) visit(args, found);
    return;
  }
  childNodes(node).forEach((c) => visit(c, found));
}
