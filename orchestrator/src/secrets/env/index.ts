/**
 * The `env` secret provider: `secrets: {provider: "env", env: ["DB_PASSWORD", ...]}` reads the
 * listed variables from the orchestrator's environment, as `secrets.DB_PASSWORD`. Only listed
 * names are read, so a template cannot reach any other variable.
 *
 * @module
 */
import { SecretsError, type SecretProvider, type SecretTree } from '../types.ts';

/** The `env` provider. */
export const envProvider: SecretProvider = {
  name: 'env',
  async load(config, ctx) {
    const tree: Record<string, string> = {};
    const missing = config.env.filter((name) => ctx.env[name] === undefined);
    if (missing.length > 0) {
      throw new SecretsError(
        'ORC1908',
        `secret variable${missing.length === 1 ? '' : 's'} ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} not set in the environment; export ${missing.length === 1 ? 'it' : 'them'} before running, or remove ${missing.length === 1 ? 'it' : 'them'} from secrets.env`,
      );
    }
    for (const name of config.env) tree[name] = ctx.env[name]!;
    return tree;
  },
  shape(config) {
    return Object.fromEntries(config.env.map((name) => [name, true])) as SecretTree;
  },
};
