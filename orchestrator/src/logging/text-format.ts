/**
 * The `text` log format: a pino JSON line as one line a person reads,
 * `2025-01-31T10:00:00.000Z INFO  task started run=deploy-1 task=a:x attempt=1`.
 *
 * @module
 */

/** Fields shown first, in this order, when present. */
const LEADING = ['run_id', 'operation', 'task', 'step'];
/** Fields not repeated as `key=value`. */
const SKIPPED = new Set(['time', 'level', 'msg', 'trace_id', 'pid', 'hostname']);

/**
 * Formats one pino JSON line as text.
 *
 * @param json A JSON object with `time`, `level`, `msg` and other fields, and a newline.
 * @returns The text line, with its newline.
 */
export function formatText(json: string): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.endsWith('\n') ? json : `${json}\n`;
  }
  const level = String(record['level'] ?? 'info')
    .toUpperCase()
    .padEnd(5);
  const fields = [
    ...LEADING.filter((k) => record[k] !== undefined && record[k] !== null),
    ...Object.keys(record).filter((k) => !LEADING.includes(k) && !SKIPPED.has(k)),
  ].map((k) => `${k}=${show(record[k])}`);
  return `${String(record['time'] ?? '')} ${level} ${String(record['msg'] ?? '')}${fields.length ? ` ${fields.join(' ')}` : ''}\n`;
}

function show(value: unknown): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return /[\s"=]/.test(text) ? JSON.stringify(text) : text;
}
