/**
 * Running the real CLI as a child process, from any working directory: the compiled CLI when
 * dist/ is the build of the current sources, else the sources (scripts/muster-entry.ts).
 *
 * @module
 */
import { musterNodeArgs, ROOT } from '../../../scripts/muster-entry.ts';

export { ROOT };

/** `node` arguments that start `muster`, before the command's own arguments. */
export const MUSTER_NODE_ARGS: readonly string[] = musterNodeArgs();
