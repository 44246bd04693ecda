/**
 * Parts of output records copied from reference data objects (an operator's detail, a
 * tariff's ratezone), built once per object and key and shared by every record that
 * carries them: fewer objects in the state and in flight. A part is built again when
 * `matches` says it no longer copies its object (reference data changed in place).
 * Callers never change a part.
 */
export function derivedPart<O extends object, K, V>(
  cache: WeakMap<O, Map<K, V>>,
  owner: O,
  key: K,
  matches: (part: V) => boolean,
  build: () => V,
): V {
  let byKey = cache.get(owner);
  if (!byKey) {
    byKey = new Map();
    cache.set(owner, byKey);
  }
  let part = byKey.get(key);
  if (part === undefined || !matches(part)) {
    part = build();
    byKey.set(key, part);
  }
  return part;
}
