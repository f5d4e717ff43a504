/**
 * Arguments the `muster batch` commands share.
 *
 * @module
 */
import { Argument } from 'commander';

/**
 * The run id argument.
 *
 * @returns A required `<id>` argument.
 */
export function runIdArgument(): Argument {
  return new Argument('<id>', 'the run id (see `muster batch list`)');
}
