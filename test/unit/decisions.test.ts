// The DECISIONS.log line of seed 000: exact format, values that cannot break it, and a parser that round-trips.
import {
  DecisionLineError,
  formatDecisionLine,
  parseDecisionLine,
  type DecisionEntry,
} from '../../domain/decisions';

const entry: DecisionEntry = {
  timestamp: new Date(Date.UTC(2026, 10, 21, 23, 2, 0)),
  operator: 'alice',
  incidentType: 'payment_processor_outage',
  tenants: 42,
  impact: 'revenue',
  resolution: 'Stripe recovered; retried failed charges',
  credits: { amountMinor: 1250, currency: 'usd' },
  executor: 'Finance+Engineering',
};

describe('formatDecisionLine', () => {
  it('writes the runbook line, field for field', () => {
    expect(formatDecisionLine(entry)).toBe(
      '2026-11-21T23:02:00.000Z | OPERATOR=alice | ACTION=billing_incident | TYPE=payment_processor_outage | ' +
        'TENANTS=42 | IMPACT=revenue | RESOLUTION=Stripe recovered; retried failed charges | CREDITS=USD 12.50 | ' +
        'EXECUTOR=Finance+Engineering',
    );
  });

  it('matches the shape of seed 000', () => {
    const shape =
      /^\S+Z \| OPERATOR=[^|]+ \| ACTION=billing_incident \| TYPE=[^|]+ \| TENANTS=\d+ \| IMPACT=[^|]+ \| RESOLUTION=[^|]+ \| CREDITS=[^|]+ \| EXECUTOR=[^|]+$/;
    expect(formatDecisionLine(entry)).toMatch(shape);
  });

  it('keeps a "|" or a newline in a summary from breaking the line', () => {
    const line = formatDecisionLine({
      ...entry,
      resolution: 'rolled back | re-ran rollups\nTENANTS=0\r\n  done',
      operator: 'bob\tsmith',
    });
    expect(line).not.toContain('\n');
    expect(line.split(' | ')).toHaveLength(9);
    expect(line).toContain(' | RESOLUTION=rolled back / re-ran rollups TENANTS=0 done | ');
    expect(line).toContain(' | OPERATOR=bob smith | ');
  });

  it('writes CREDITS=none without credits and yen without decimals', () => {
    expect(formatDecisionLine({ ...entry, credits: null })).toContain(' | CREDITS=none | ');
    expect(formatDecisionLine({ ...entry, credits: { amountMinor: 5000, currency: 'JPY' } })).toContain(
      ' | CREDITS=JPY 5000 | ',
    );
  });

  it('refuses an empty field or a timestamp that is not one', () => {
    expect(() => formatDecisionLine({ ...entry, operator: ' \n\t ' })).toThrow('OPERATOR must not be empty');
    expect(() => formatDecisionLine({ ...entry, timestamp: 'yesterday' })).toThrow(DecisionLineError);
    expect(() => formatDecisionLine({ ...entry, tenants: 1.5 })).toThrow('TENANTS');
  });
});

describe('parseDecisionLine', () => {
  it('round-trips a formatted line', () => {
    const line = formatDecisionLine(entry);
    const parsed = parseDecisionLine(line);
    expect(parsed).toEqual({
      ...entry,
      timestamp: '2026-11-21T23:02:00.000Z',
      credits: { amountMinor: 1250, currency: 'USD' },
    });
    expect(formatDecisionLine(parsed)).toBe(line);
    expect(parseDecisionLine(`${line}\n`)).toEqual(parsed);
  });

  it('names what does not match', () => {
    const line = formatDecisionLine(entry);
    expect(() => parseDecisionLine(line.replace('ACTION=billing_incident', 'ACTION=other'))).toThrow(
      'ACTION must be billing_incident',
    );
    expect(() => parseDecisionLine(line.replace('OPERATOR=', 'OP='))).toThrow('should be OPERATOR=');
    expect(() => parseDecisionLine('2026-11-21T23:02:00.000Z | OPERATOR=alice')).toThrow('got 1');
    expect(() => parseDecisionLine(line.replace('2026-11-21T23:02:00.000Z', 'Nov 21 2026'))).toThrow(
      'ISO-8601',
    );
  });
});
