// Alertmanager's fingerprint of a label set, which names an alert's incident: computed by the ingress for an alert
// that carries none and by `billops trigger` to name the incident it reaches.

/**
 * prometheus/common `LabelSet.Fingerprint`: FNV-1a 64 over the label names in sorted order, each name and value
 * followed by a 0xff byte, as 16 hex digits.
 */
export function alertFingerprint(labels: Record<string, string>): string {
  const mask = 0xffffffffffffffffn;
  const utf8 = new TextEncoder();
  let hash = 0xcbf29ce484222325n;
  const add = (bytes: Iterable<number>) => {
    for (const byte of bytes) hash = ((hash ^ BigInt(byte)) * 0x100000001b3n) & mask;
  };
  for (const name of Object.keys(labels).sort()) {
    add(utf8.encode(name));
    add([0xff]);
    add(utf8.encode(labels[name] ?? ''));
    add([0xff]);
  }
  return hash.toString(16).padStart(16, '0');
}
