/**
 * Templates in step params: Jinja2-style (nunjucks), rendered at dispatch time over inputs, the
 * environment, the run and task, the server's facts, earlier steps' and operations' outputs and
 * secrets; checked at validate time for names that cannot exist.
 *
 * @module
 */
export { checkWorkflowTemplates, secretNamesOf } from './check.ts';
export type { CheckTemplatesOptions, SecretNames } from './check.ts';
export { readsOperationOutputs, TEMPLATE_ROOTS } from './context.ts';
export type { Outputs, TaskContext, TemplateContext } from './context.ts';
export { renderStep, renderValue, TemplateError } from './render.ts';
export { cleanNunjucksMessage, isTemplate, templateReferences } from './references.ts';
export type { TemplateReference, TemplateSyntaxProblem } from './references.ts';
