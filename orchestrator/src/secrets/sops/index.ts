/**
 * The `sops` secret provider: `secrets: {provider: "sops", files: [...], age_key_file}`. Each
 * file (YAML or JSON, by extension) is decrypted with age and MAC-verified; later files' top-level
 * keys replace earlier ones'.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import type { Secrets } from '../../../../schemas/src/workflow.ts';
import { createAgeKeyService, findAgeIdentities } from '../kms/age.ts';
import type { KeyService } from '../kms/types.ts';
import {
  SecretsError,
  type SecretProvider,
  type SecretTree,
  type SecretsContext,
} from '../types.ts';
import { decryptSops, sopsShape } from './decrypt.ts';

export { decryptSops, sopsShape } from './decrypt.ts';
export type { DecryptSopsOptions, SopsFileOptions } from './decrypt.ts';

/** Key services SOPS files may be encrypted to; only age is shipped. */
const KEY_SERVICES = ['age'] as const;

/** The `sops` provider. */
export const sopsProvider: SecretProvider = {
  name: 'sops',
  async load(config, ctx) {
    if (config.files.length === 0) return {};
    const services = keyServices(config, ctx);
    const trees: SecretTree[] = [];
    for (const file of filesOf(config)) {
      const { path, source, format } = readSecretsFile(file, ctx);
      trees.push(await decryptSops(source, { file: path, format, keyServices: services }));
    }
    return Object.assign({}, ...trees) as SecretTree;
  },
  shape(config, ctx) {
    const trees = filesOf(config).map((file) => {
      const { path, source, format } = readSecretsFile(file, ctx);
      return sopsShape(source, { file: path, format });
    });
    return Object.assign({}, ...trees) as SecretTree;
  },
};

/** The files to read; none is allowed (a workflow may set up secrets before it has any). */
function filesOf(config: Secrets): readonly string[] {
  return config.files;
}

function keyServices(config: Secrets, ctx: SecretsContext): KeyService[] {
  const kms = config.kms?.provider;
  if (kms !== undefined && !(KEY_SERVICES as readonly string[]).includes(kms)) {
    throw new SecretsError(
      'ORC1902',
      `secrets.kms.provider "${kms}" is not available: Muster ships the ${KEY_SERVICES.join(', ')} key service; remove secrets.kms or set provider: "age"`,
    );
  }
  return [createAgeKeyService(findAgeIdentities(config, ctx))];
}

/**
 * Reads a secrets file; its format comes from the extension (`.json`, else YAML).
 *
 * @throws {SecretsError} `ORC1901` when it cannot be read.
 */
export function readSecretsFile(
  file: string,
  ctx: SecretsContext,
): { path: string; source: string; format: 'yaml' | 'json' } {
  const path = resolve(ctx.cwd ?? process.cwd(), file);
  try {
    const source = readFileSync(path, 'utf8');
    return {
      path: file,
      source,
      format: extname(path).toLowerCase() === '.json' ? 'json' : 'yaml',
    };
  } catch (e: unknown) {
    const code = (e as { code?: string }).code;
    throw new SecretsError(
      'ORC1901',
      `cannot read secrets file ${file}: ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a directory' : String(code ?? e)}; fix secrets.files`,
      file,
      { cause: e },
    );
  }
}
