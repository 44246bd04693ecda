/**
 * The contract of the Log interface (src/log/types.ts), as one suite any implementation
 * runs: what the engine and the data-stream lanes rely on, nothing about how records are
 * stored. test/log-kafka.test.ts runs it on the Kafka log and on the embedded log.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Log, LogRecord } from '../../src/log/types.js';
import { ENTRY_BYTES, expectRecords, HOUR, readAll, rec, recs, rejection, T0 } from './log-fixtures.js';

export interface LogContractSubject {
  /** For test titles: "embedded", "kafka". */
  readonly name: string;
  /**
   * Opens the log under test. Opening it again after a close must find the same topics and
   * cursors (same directory, same cluster).
   */
  open(): Promise<Log>;
  /** A topic name nobody used before in that store (a broker keeps topics between runs). */
  topicName(base: string): string;
}

export function describeLogContract(subject: LogContractSubject): void {
  const opened: Log[] = [];
  const open = async () => {
    const log = await subject.open();
    opened.push(log);
    return log;
  };
  afterEach(async () => {
    await Promise.allSettled(opened.splice(0).map((l) => l.close()));
  });

  describe(`log contract (${subject.name})`, () => {
    it('round-trips keys, values and timestamps with contiguous offsets, and keeps them across reopen', async () => {
      const name = subject.topicName('roundtrip');
      const log = await open();
      const topic = await log.topic(name, 2);
      for (let b = 0; b < 12; b++)
        expect(await topic.append(0, recs(b * 10, 10))).toEqual({
          baseOffset: b * 10,
          nextOffset: b * 10 + 10,
        });
      expect(await topic.append(1, recs(0, 3))).toEqual({ baseOffset: 0, nextOffset: 3 });
      expect(await topic.startOffset(0)).toBe(0);
      expect(await topic.endOffset(0)).toBe(120);
      expect(await topic.endOffset(1)).toBe(3);
      expectRecords(await readAll(topic, 0), 0, 120);
      expectRecords(await readAll(topic, 1), 0, 3, 1);
      await log.close();

      const again = await open();
      const reopened = await again.topic(name, 2);
      expect(await reopened.endOffset(0)).toBe(120);
      expectRecords(await readAll(reopened, 0, 50), 0, 120);
      expect(await reopened.append(0, recs(120, 5))).toEqual({ baseOffset: 120, nextOffset: 125 });
      expectRecords(await reopened.read(0, 118, 100), 118, 7);
    });

    it('reads from any offset, within maxRecords and maxBytes (at least one record), and [] at the end', async () => {
      const log = await open();
      const topic = await log.topic(subject.topicName('read'), 1);
      await topic.append(0, recs(0, 100));
      for (const from of [0, 1, 13, 57, 97]) expectRecords(await topic.read(0, from, 3), from, 3);
      expectRecords(await topic.read(0, 95, 1000), 95, 5);
      expectRecords(await topic.read(0, 10, 1000, 3 * ENTRY_BYTES), 10, 3);
      expectRecords(await topic.read(0, 10, 1000, 1), 10, 1);
      expect(await topic.read(0, 100, 10)).toEqual([]);
      const big = { key: null, value: Buffer.alloc(100_000, 7), timestamp: T0 };
      await topic.append(0, [big, rec(101)]);
      const [got] = await topic.read(0, 100, 10, 1000);
      expect(got?.key).toBeNull();
      expect(got?.value.equals(big.value)).toBe(true);
      expect(got?.offset).toBe(100);
      expect(await topic.read(0, 101, 10)).toHaveLength(1);
      // An empty key and an empty value are not null.
      await topic.append(0, [{ key: '', value: Buffer.alloc(0), timestamp: T0 }]);
      const [empty] = await topic.read(0, 102, 1);
      expect(empty?.key).toBe('');
      expect(empty?.value.length).toBe(0);
    });

    it('rejects offsets out of range with LOG_OFFSET_OUT_OF_RANGE naming topic, partition and offset', async () => {
      const name = subject.topicName('events');
      const log = await open();
      const topic = await log.topic(name, 1);
      await topic.append(0, recs(0, 5));
      const e = await rejection(topic.read(0, 6, 10));
      expect(e.code).toBe('LOG_OFFSET_OUT_OF_RANGE');
      expect(e.message).toBe(`${name}/0: offset 6 is out of range; the partition holds 0 to 5`);
      expect(e.details).toMatchObject({ topic: name, partition: 0, offset: 6 });
      expect((await rejection(topic.read(0, -1, 10))).code).toBe('LOG_INVALID_ARGUMENT');
      expect((await rejection(topic.read(1, 0, 10))).code).toBe('LOG_INVALID_ARGUMENT');
      expect((await rejection(topic.read(0, 0, 0))).code).toBe('LOG_INVALID_ARGUMENT');
      expect((await rejection(topic.read(0, 0, 1, 0))).code).toBe('LOG_INVALID_ARGUMENT');
    });

    it('finds the first offset at or after a timestamp, in log order, and endOffset past the newest', async () => {
      const log = await open();
      const topic = await log.topic(subject.topicName('time'), 1);
      expect(await topic.offsetForTime(0, T0)).toBe(0); // empty: the end
      for (let b = 0; b < 10; b++) await topic.append(0, recs(b * 10, 10)); // T0 + offset seconds
      expect(await topic.offsetForTime(0, 0)).toBe(0);
      expect(await topic.offsetForTime(0, T0)).toBe(0);
      expect(await topic.offsetForTime(0, T0 + 1)).toBe(1);
      expect(await topic.offsetForTime(0, T0 + 42_000)).toBe(42);
      expect(await topic.offsetForTime(0, T0 + 41_500)).toBe(42);
      expect(await topic.offsetForTime(0, T0 + 99_000)).toBe(99);
      expect(await topic.offsetForTime(0, T0 + 99_001)).toBe(100);
      // A late record far ahead, then older ones: the first in log order with ts >= t wins.
      await topic.append(0, [rec(100, T0 + HOUR), rec(101, T0 + 5000), rec(102, T0 + 2 * HOUR)]);
      expect(await topic.offsetForTime(0, T0 + 200_000)).toBe(100);
      expect(await topic.offsetForTime(0, T0 + HOUR + 1)).toBe(102);
      expect(await topic.offsetForTime(0, T0 + 3 * HOUR)).toBe(103);
      expect((await rejection(topic.offsetForTime(0, Number.NaN))).code).toBe('LOG_INVALID_ARGUMENT');
    });

    it('validates records, names and partition counts; a topic opened again is the same', async () => {
      const name = subject.topicName('invalid');
      const log = await open();
      const topic = await log.topic(name, 2);
      const badTime = await rejection(
        topic.append(0, [{ key: null, value: Buffer.alloc(1), timestamp: 1.5 }]),
      );
      expect(badTime.code).toBe('LOG_INVALID_ARGUMENT');
      expect(badTime.message).toContain(`${name}/0: record 0 of the batch`);
      const badKey = { key: 7 as unknown as string, value: Buffer.alloc(1), timestamp: T0 };
      expect((await rejection(topic.append(0, [badKey]))).code).toBe('LOG_INVALID_ARGUMENT');
      const huge = { key: null, value: Buffer.alloc(17 * 2 ** 20), timestamp: T0 };
      expect((await rejection(topic.append(0, [huge]))).code).toBe('LOG_RECORD_TOO_LARGE');
      expect(await topic.append(0, [])).toEqual({ baseOffset: 0, nextOffset: 0 });
      expect(await topic.endOffset(0)).toBe(0); // nothing of the refused batches got in
      expect((await rejection(topic.append(2, recs(0, 1)))).code).toBe('LOG_INVALID_ARGUMENT');
      expect((await rejection(log.topic(name, 3))).code).toBe('LOG_TOPIC_MISMATCH');
      for (const bad of ['', '..', 'a/b', '__cursors', 'x'.repeat(201)])
        expect((await rejection(log.topic(bad, 1))).code).toBe('LOG_INVALID_ARGUMENT');
      expect((await rejection(log.topic(subject.topicName('zero'), 0))).code).toBe('LOG_INVALID_ARGUMENT');
      expect(await log.topic(name, 2)).toBe(topic);
      await topic.append(1, recs(0, 2));
      expect(await topic.append(1, [])).toEqual({ baseOffset: 2, nextOffset: 2 });
      await log.close();

      const again = await open();
      const e = await rejection(again.topic(name, 1));
      expect(e.code).toBe('LOG_TOPIC_MISMATCH');
      expect(e.message).toBe(`topic ${name} has 2 partitions, asked for 1`);
    });

    it('refuses every call after close with LOG_CLOSED, after finishing the appends under way', async () => {
      const log = await open();
      const topic = await log.topic(subject.topicName('closed'), 1);
      const pending = topic.append(0, recs(0, 10));
      const closing = log.close();
      expect((await pending).nextOffset).toBe(10);
      await closing;
      expect((await rejection(topic.append(0, recs(10, 1)))).code).toBe('LOG_CLOSED');
      expect((await rejection(topic.read(0, 0, 1))).code).toBe('LOG_CLOSED');
      expect((await rejection(topic.endOffset(0))).code).toBe('LOG_CLOSED');
      expect((await rejection(log.topic(subject.topicName('closed'), 1))).code).toBe('LOG_CLOSED');
      expect((await rejection(log.cursors.get('g', 'raw', 0))).code).toBe('LOG_CLOSED');
      expect((await rejection(log.cursors.commit('g', 'raw', 0, 1))).code).toBe('LOG_CLOSED');
    });

    it('reopens a closed topic only once its appends under way are done', async () => {
      const log = await open();
      const name = subject.topicName('reopen-topic');
      const topic = await log.topic(name, 1);
      const pending = Array.from({ length: 10 }, (_, b) => topic.append(0, recs(b * 10, 10)));
      void topic.close();
      const again = await log.topic(name, 1);
      expect(again).not.toBe(topic);
      await Promise.all(pending);
      expect(await again.endOffset(0)).toBe(100);
      expectRecords(await readAll(again, 0), 0, 100);
    });

    it('serialises concurrent appends to a partition in call order', async () => {
      const log = await open();
      const topic = await log.topic(subject.topicName('concurrent'), 1);
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, b) => topic.append(0, recs(b * 5, 5))),
      );
      results.forEach((r, b) => {
        expect(r).toEqual({ baseOffset: b * 5, nextOffset: b * 5 + 5 });
      });
      expectRecords(await readAll(topic, 0), 0, 100);
    });

    it('keeps partitions independent: many partitions, appended to at once', async () => {
      const log = await open();
      const partitions = 24;
      const topic = await log.topic(subject.topicName('many'), partitions);
      expect(topic.partitions).toBe(partitions);
      await Promise.all(
        Array.from({ length: partitions }, async (_, p) => {
          for (let b = 0; b < 3; b++) await topic.append(p, recs(b * 10, 10 + (b === 2 ? p : 0)));
        }),
      );
      for (let p = 0; p < partitions; p++) {
        expect(await topic.endOffset(p)).toBe(30 + p);
        expectRecords(await topic.read(p, 0, 1000), 0, 30 + p, p);
      }
    });

    it('takes a batch of 10,000 records in one append and reads it back in order', async () => {
      const log = await open();
      const topic = await log.topic(subject.topicName('big-batch'), 1);
      expect(await topic.append(0, recs(0, 10_000))).toEqual({ baseOffset: 0, nextOffset: 10_000 });
      const all: LogRecord[] = [];
      for (let next = 0; next < 10_000; ) {
        const got = await topic.read(0, next, 1000);
        expect(got.length).toBeGreaterThan(0);
        all.push(...got);
        next = (got.at(-1) as LogRecord).offset + 1;
      }
      expectRecords(all, 0, 10_000);
      expect(await topic.offsetForTime(0, T0 + 5_000_000)).toBe(5000);
    });

    it('commits and gets cursors per group, topic and partition, and keeps them across reopen', async () => {
      const raw = subject.topicName('raw');
      const commands = subject.topicName('commands');
      const log = await open();
      // Kafka keeps cursors of existing topics and partitions only.
      await log.topic(raw, 3);
      await log.topic(commands, 1);
      expect(await log.cursors.get('engine', raw, 0)).toBeUndefined();
      await log.cursors.commit('engine', raw, 0, 10);
      await log.cursors.commit('engine', raw, 1, 20);
      await log.cursors.commit('engine', commands, 0, 3);
      await log.cursors.commit('sink/s3 ü', raw, 0, 5);
      await log.cursors.commit('engine', raw, 0, 11);
      expect(await log.cursors.get('engine', raw, 0)).toBe(11);
      expect(await log.cursors.get('engine', raw, 1)).toBe(20);
      expect(await log.cursors.get('engine', raw, 2)).toBeUndefined();
      expect(await log.cursors.get('engine', commands, 0)).toBe(3);
      expect(await log.cursors.get('sink/s3 ü', raw, 0)).toBe(5);
      expect(await log.cursors.get('other', raw, 0)).toBeUndefined();
      // Commits of several partitions at once, the last one per partition wins.
      await Promise.all([0, 1, 2].map((p) => log.cursors.commit('engine', raw, p, 100 + p)));
      expect((await rejection(log.cursors.commit('engine', raw, 0, -1))).code).toBe('LOG_INVALID_ARGUMENT');
      expect((await rejection(log.cursors.commit('', raw, 0, 1))).code).toBe('LOG_INVALID_ARGUMENT');
      expect((await rejection(log.cursors.get('engine', 'a/b', 0))).code).toBe('LOG_INVALID_ARGUMENT');
      await log.close();

      const again = await open();
      expect(await again.cursors.get('engine', raw, 0)).toBe(100);
      expect(await again.cursors.get('engine', raw, 2)).toBe(102);
      expect(await again.cursors.get('engine', commands, 0)).toBe(3);
      expect(await again.cursors.get('sink/s3 ü', raw, 0)).toBe(5);
    });
  });
}
