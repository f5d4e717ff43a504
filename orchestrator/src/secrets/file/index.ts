/**
 * The `file` secret provider: `secrets: {provider: "file", files: ["secrets.yaml"]}` reads plain
 * YAML or JSON files (kept out of version control, or mounted by the platform). Later files'
 * top-level keys replace earlier ones'.
 *
 * @module
 */
import { readSecretsFile } from '../sops/index.ts';
import {
  SecretsError,
  type SecretProvider,
  type SecretTree,
  type SecretsContext,
} from '../types.ts';
import type { Secrets } from '../../../../schemas/src/workflow.ts';
import { yamlLibrary } from '../../../../schemas/src/yaml-library.ts';

/** The `file` provider. */
export const fileProvider: SecretProvider = {
  name: 'file',
  async load(config, ctx) {
    return read(config, ctx);
  },
  shape(config, ctx) {
    return read(config, ctx);
  },
};

function read(config: Secrets, ctx: SecretsContext): SecretTree {
  const trees = config.files.map((file) => {
    const { path, source } = readSecretsFile(file, ctx);
    let value: unknown;
    try {
      value = yamlLibrary().parse(source);
    } catch (e: unknown) {
      const line = (e as { linePos?: Array<{ line: number }> }).linePos?.[0]?.line;
      throw new SecretsError(
        'ORC1904',
        `${path}${line ? `:${line}` : ''} is not valid YAML or JSON; fix the file`,
        path,
      );
    }
    if (value === null || value === undefined) return {};
    if (typeof value !== 'object' || Array.isArray(value)) {
      throw new SecretsError(
        'ORC1904',
        `${path} must hold a mapping of secret names to values, not ${Array.isArray(value) ? 'a list' : `a ${typeof value}`}`,
        path,
      );
    }
    if ('sops' in value) {
      throw new SecretsError(
        'ORC1904',
        `${path} is SOPS-encrypted; use secrets provider "sops" for it`,
        path,
      );
    }
    return value as SecretTree;
  });
  return Object.assign({}, ...trees) as SecretTree;
}
