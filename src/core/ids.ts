/**
 * Deterministic output ids, derived from the input position that produced the output:
 * id = ((partition * 2^37) + offset) * 2^6 + sub. 10 bits of partition (1024 partitions),
 * 37 bits of offset (1.3e11 records per partition), 6 bits of sub-index (64 outputs per
 * input): 53 bits, so every id is a safe JavaScript integer and a JSON number that
 * consumers can parse exactly. Re-processing the same input gives the same ids.
 */
export const MAX_PARTITIONS = 1 << 10;
export const MAX_OFFSET = 2 ** 37 - 1;
export const MAX_SUB = (1 << 6) - 1;

export function outputId(partition: number, offset: number, sub: number): number {
  if (!Number.isInteger(partition) || partition < 0 || partition >= MAX_PARTITIONS)
    throw new RangeError(`partition ${partition} out of range 0..${MAX_PARTITIONS - 1}`);
  if (!Number.isInteger(offset) || offset < 0 || offset > MAX_OFFSET)
    throw new RangeError(`offset ${offset} out of range 0..${MAX_OFFSET}`);
  if (!Number.isInteger(sub) || sub < 0 || sub > MAX_SUB)
    throw new RangeError(`sub-index ${sub} out of range 0..${MAX_SUB}`);
  return (partition * 2 ** 37 + offset) * 64 + sub;
}

/** The input position an id was derived from. */
export function idPosition(id: number): { partition: number; offset: number; sub: number } {
  const sub = id % 64;
  const rest = (id - sub) / 64;
  const offset = rest % 2 ** 37;
  return { partition: (rest - offset) / 2 ** 37, offset, sub };
}
