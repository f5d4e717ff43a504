import { describe, expect, test } from 'vitest';
import { agentSocketUrl } from './agent.ts';
import { AgentMessageSchema, HubMessageSchema, parseMessage, type AgentHello } from './protocol.ts';

const hello: AgentHello = {
  type: 'agent:hello',
  protocol: 1,
  agentId: 'web-1-abc',
  server: 'web-1',
  version: '0.1.0',
  capabilities: {
    steps: ['echo', 'script'],
    slots: 1,
    platform: 'linux',
    arch: 'x64',
    hostname: 'h',
  },
  leases: [{ runId: 'r', taskId: 't@web-1', token: 3, attempt: 2, state: 'done' }],
  draining: false,
};

const lease = { runId: 'r', taskId: 't@web-1', token: 3 };

describe('agent messages', () => {
  test('a hello parses as it was sent', () => {
    expect(parseMessage(AgentMessageSchema, JSON.stringify(hello))).toEqual({
      ok: true,
      message: hello,
    });
  });

  test('a report keeps its step records and failure', () => {
    const report = {
      type: 'task:report',
      lease,
      seq: 7,
      report: {
        status: 'failed',
        result: {
          steps: [
            { index: 0, name: 'write', status: 'succeeded', rollbackData: { previous: 'x' } },
          ],
        },
        failure: { type: 'exit-code', message: 'exit 1', step: 'run', details: { code: 1 } },
      },
    };
    expect(parseMessage(AgentMessageSchema, JSON.stringify(report))).toEqual({
      ok: true,
      message: report,
    });
  });

  test.each([
    ['not JSON', '{', 'the frame is not JSON'],
    [
      'an unknown type',
      JSON.stringify({ type: 'agent:dance' }),
      'Invalid type: Expected ("agent:hello"',
    ],
    [
      'a bad server name',
      JSON.stringify({ ...hello, server: 'web 1' }),
      'agent:hello: server: a server name is letters, digits',
    ],
    [
      'an unexpected field in a hello',
      JSON.stringify({ ...hello, sneaky: true }),
      'agent:hello: sneaky:',
    ],
    [
      'a token that is not a positive integer',
      JSON.stringify({
        type: 'task:output',
        lease: { ...lease, token: 0 },
        seq: 1,
        stream: 'stdout',
        line: '',
      }),
      'task:output: lease.token:',
    ],
  ])('%s is refused with where and why', (_what, frame, error) => {
    const parsed = parseMessage(AgentMessageSchema, frame);
    expect(parsed.ok).toBe(false);
    expect(!parsed.ok && parsed.error).toContain(error);
  });
});

describe('hub messages', () => {
  const assign = {
    type: 'task:assign',
    lease,
    assignment: {
      runId: 'r',
      task: {
        id: 't@web-1',
        operation: 'op',
        item: 'web-1',
        server: 'web-1',
        queue: 'server:web-1',
        steps: [
          { name: 's', type: 'echo', params: {}, required: true, continue_on_failure: false },
        ],
        compensation: [],
      },
      attempt: 2,
      mode: 'execute',
      timeoutMs: 1000,
      server: { name: 'web-1', provider: 'local', labels: {} },
      context: { inputs: { version: '2.0' } },
    },
  };

  test('an assignment keeps fields added to assignments later (loose), steps filled in', () => {
    const parsed = parseMessage(HubMessageSchema, JSON.stringify(assign));
    expect(parsed.ok && parsed.message).toEqual(assign);
  });

  test('an assignment for a queue other than a server queue is refused', () => {
    const other = {
      ...assign,
      assignment: {
        ...assign.assignment,
        task: { ...assign.assignment.task, queue: 'orchestrator' },
      },
    };
    const parsed = parseMessage(HubMessageSchema, JSON.stringify(other));
    expect(!parsed.ok && parsed.error).toContain('agents only take server queues');
  });
});

describe('agentSocketUrl', () => {
  test.each([
    ['http://orch:7070', 'ws://orch:7070/agents'],
    ['https://orch.example.com', 'wss://orch.example.com/agents'],
    ['ws://127.0.0.1:9/agents', 'ws://127.0.0.1:9/agents'],
    ['http://orch:7070/muster/agents', 'ws://orch:7070/muster/agents'],
  ])('%s → %s', (input, expected) => {
    expect(agentSocketUrl(input)).toBe(expected);
  });

  test.each([
    ['orch:7070', 'must start with http://'],
    ['not a url', 'must be a URL such as http://orchestrator:7070'],
    ['ftp://orch', 'must start with http://, https://, ws:// or wss://, not ftp://'],
  ])('%s is refused', (input, message) => {
    expect(() => agentSocketUrl(input)).toThrow(message);
  });
});
