/**
 * `--format`: what a workflow file is written in, when its name does not say (standard input,
 * `-`, or a file with another extension).
 *
 * @module
 */
import { Option } from 'commander';

/** The formats a workflow file may be written in. */
export const INPUT_FORMATS = ['cue', 'json', 'yaml'] as const;

/** The `--format` option of the commands that read workflow files. */
export function inputFormatOption(): Option {
  return new Option(
    '--format <format>',
    "the file's format, whatever its name (for -: JSON when it starts with { or [, else YAML)",
  ).choices(INPUT_FORMATS);
}
