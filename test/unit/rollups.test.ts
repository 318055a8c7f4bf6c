// Usage rollup rules read against the runbook: whole-hour windows, backfill chunks, progress, "rerun every 2 hours for 48 hours".
import { defaultPolicy, parsePolicy } from '../../domain/policy';
import {
  RollupWindowError,
  attemptOffsetsHours,
  backfillRequestSchema,
  chunkWindows,
  hourWindow,
  newBackfillStatus,
  percentDone,
  previousHours,
  recordBackfillProgress,
  rollupPolicyOf,
  wholeHours,
} from '../../domain/rollups';

describe('rollup windows', () => {
  it('cover whole hours: a partial hour widens to the full one', () => {
    expect(wholeHours('2026-03-01T10:20:00Z', '2026-03-01T12:00:00.001Z')).toEqual({
      from: '2026-03-01T10:00:00.000Z',
      to: '2026-03-01T13:00:00.000Z',
    });
    expect(wholeHours('2026-03-01T10:00:00+02:00', '2026-03-01T11:00:00+02:00')).toEqual({
      from: '2026-03-01T08:00:00.000Z',
      to: '2026-03-01T09:00:00.000Z',
    });
  });

  it('refuse a window off the hour or empty, and a range that is not a time', () => {
    expect(() => hourWindow('2026-03-01T10:30:00Z', '2026-03-01T12:00:00Z')).toThrow(RollupWindowError);
    expect(() => hourWindow('2026-03-01T10:00:00Z', '2026-03-01T10:00:00Z')).toThrow(/is empty/);
    expect(() => wholeHours('yesterday', '2026-03-01T10:00:00Z')).toThrow(RollupWindowError);
  });

  it('for a scheduled run are the hours before the hour it was due in', () => {
    expect(previousHours('2026-03-01T10:05:00Z', 2)).toEqual({
      from: '2026-03-01T08:00:00.000Z',
      to: '2026-03-01T10:00:00.000Z',
    });
    expect(previousHours(Date.parse('2026-03-01T00:00:00Z'), 1)).toEqual({
      from: '2026-02-28T23:00:00.000Z',
      to: '2026-03-01T00:00:00.000Z',
    });
  });
});

describe('backfill chunks', () => {
  const range = { from: '2026-03-01T00:00:00Z', to: '2026-03-02T02:00:00Z' };

  it('split the range into consecutive windows of chunkHours, the last one shorter', () => {
    const chunks = chunkWindows(range, 6);
    expect(chunks.map((c) => `${c.from.slice(8, 13)}..${c.to.slice(8, 13)}`)).toEqual([
      '01T00..01T06',
      '01T06..01T12',
      '01T12..01T18',
      '01T18..02T00',
      '02T00..02T02',
    ]);
    expect(chunkWindows(range, 1)).toHaveLength(26);
    expect(chunkWindows(range, 100)).toEqual([
      { from: '2026-03-01T00:00:00.000Z', to: '2026-03-02T02:00:00.000Z' },
    ]);
  });

  it('refuse a chunk size that is not a positive whole number of hours', () => {
    expect(() => chunkWindows(range, 0)).toThrow(/chunkHours/);
    expect(() => chunkWindows(range, 1.5)).toThrow(/chunkHours/);
  });

  it('report progress in whole percent, 100 only when every chunk is done', () => {
    expect([0, 1, 25, 71, 72].map((done) => percentDone(done, 72))).toEqual([0, 1, 34, 98, 100]);
    expect(percentDone(0, 0)).toBe(100);
  });

  it('give the status query chunks, percent, events and the next chunk', () => {
    const chunks = chunkWindows(range, 6);
    const status = newBackfillStatus(
      { ...range, chunkHours: 6, tenants: ['acme'], policy: rollupPolicyOf(defaultPolicy) },
      chunks,
    );
    expect(status).toMatchObject({
      state: 'running',
      chunksTotal: 5,
      chunksDone: 0,
      percent: 0,
      tenants: ['acme'],
    });
    recordBackfillProgress(status, chunks, { chunksDone: 2, eventsProcessed: 1234 });
    expect(status).toMatchObject({
      chunksDone: 2,
      percent: 40,
      eventsProcessed: 1234,
      nextChunkStart: '2026-03-01T12:00:00.000Z',
    });
    recordBackfillProgress(status, chunks, { chunksDone: 5, eventsProcessed: 2000 });
    expect(status).toMatchObject({ percent: 100, nextChunkStart: null });
  });
});

describe('backfill requests', () => {
  it('accept a range, an optional tenant list and a chunk size', () => {
    expect(
      backfillRequestSchema.safeParse({
        from: '2026-03-01T00:00:00Z',
        to: '2026-03-04T00:00:00Z',
        tenants: ['acme'],
        chunkHours: 6,
      }).success,
    ).toBe(true);
  });

  it.each([
    [{ from: '2026-03-04T00:00:00Z', to: '2026-03-01T00:00:00Z', chunkHours: 6 }, 'to'],
    [{ from: 'last week', to: '2026-03-01T00:00:00Z', chunkHours: 6 }, 'from'],
    [{ from: '2026-03-01T00:00:00Z', to: '2026-03-02T00:00:00Z', chunkHours: 0 }, 'chunkHours'],
    [{ from: '2026-03-01T00:00:00Z', to: '2026-03-02T00:00:00Z', chunkHours: 6, tenants: [] }, 'tenants'],
  ])('refuse %j at %s', (request, path) => {
    const result = backfillRequestSchema.safeParse(request);
    expect(result.success).toBe(false);
    expect(result.error?.issues.map((i) => i.path.join('.'))).toContain(path);
  });
});

describe('"Usage aggregation: Rerun failed jobs every 2 hours for 48 hours"', () => {
  it('attempts at 0 h, then every 2 h up to and including 48 h: 25 attempts', () => {
    const offsets = attemptOffsetsHours(defaultPolicy.usageAggregationRetry);
    expect(offsets).toEqual(Array.from({ length: 25 }, (_, i) => i * 2));
  });

  it('follows the policy in force', () => {
    const policy = parsePolicy({ usageAggregationRetry: { everyHours: 5, forHours: 12 } });
    expect(attemptOffsetsHours(policy.usageAggregationRetry)).toEqual([0, 5, 10]);
    expect(rollupPolicyOf(policy)).toEqual({
      version: policy.version,
      apiRetry: policy.apiRetry,
      usageAggregationRetry: { everyHours: 5, forHours: 12 },
    });
  });
});
