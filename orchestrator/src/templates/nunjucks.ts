/**
 * nunjucks, loaded the first time a template is met. Importing it takes about 50 ms, which every
 * command and run of a workflow without templates would pay; it is CommonJS, so `require` loads
 * it synchronously where templates are checked and rendered.
 *
 * @internal
 * @module
 */
import { createRequire } from 'node:module';
import type Nunjucks from 'nunjucks';

const require = createRequire(import.meta.url);
let loaded: typeof Nunjucks | undefined;
let environment: Nunjucks.Environment | undefined;

/** The nunjucks module. */
export function nunjucks(): typeof Nunjucks {
  return (loaded ??= require('nunjucks') as typeof Nunjucks);
}

/** The environment steps' params render in: no autoescaping (nothing here is HTML), strict undefined. */
export function renderEnvironment(): Nunjucks.Environment {
  return (environment ??= new (nunjucks().Environment)(null, {
    autoescape: false,
    throwOnUndefined: true,
  }));
}
