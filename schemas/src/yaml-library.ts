/**
 * The `yaml` package, loaded on first use. Importing it takes about 60 ms, and most commands
 * never need it: JSON and CUE workflows, YAML ones read by js-yaml without a problem to place,
 * runs without secret files, output in any format but YAML. Node resolves `yaml` to its
 * CommonJS build, so `require` here and an `import` elsewhere share one instance.
 *
 * @module
 */
import { createRequire } from 'node:module';
import type * as YamlModule from 'yaml';

type Yaml = typeof YamlModule;

const require = createRequire(import.meta.url);
let loaded: Yaml | undefined;

/** The `yaml` module, loaded synchronously the first time. */
export function yamlLibrary(): Yaml {
  return (loaded ??= require('yaml') as Yaml);
}
