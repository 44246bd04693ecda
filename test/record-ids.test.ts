import { describe, expect, it } from 'vitest';
import { recordIds } from '../load-tests/scenarios/record-ids.js';

/** What JSON.parse finds: the benchmark receiver's count must be exactly this. */
const parsedIds = (body: string) => [JSON.parse(body)].flat().map((r: { id: number }) => r.id);

describe('benchmark receiver: record ids of a webhook body', () => {
  const records = [
    '{"id":64,"alert":false,"detail":{"operators":[{"id":1201,"tapcode":"DEUD1"},{"id":1202}]}}',
    '{"id":128,"description":"a \\"quoted\\" {brace} [bracket] \\\\","detail":null}',
    '{"id":9007199254740928,"name":"Zürich {\\"id\\":5}","x":[[{"id":7}]]}',
  ];

  it('finds the top-level ids of an array batch, skipping nested objects and string contents', () => {
    const body = `[${records.join(',')}]`;
    expect(recordIds(Buffer.from(body))).toEqual(parsedIds(body));
    expect(recordIds(Buffer.from(body))).toEqual([64, 128, 9007199254740928]);
  });

  it('finds the id of a bare record (batch size 1)', () => {
    expect(recordIds(Buffer.from(records[0] as string))).toEqual([64]);
  });

  it('gives up on records that do not start with their id, so the caller parses them', () => {
    expect(recordIds(Buffer.from('[{"alert":true,"id":3}]'))).toBeUndefined();
    expect(recordIds(Buffer.from('[{"id":"x"}]'))).toBeUndefined();
  });
});
