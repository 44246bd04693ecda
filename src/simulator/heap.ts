/**
 * Min-heap of (time, device) on typed arrays: one entry per device, so a million devices
 * cost 12 bytes each. Ties break on the device index, which keeps the order deterministic.
 */
export class TimerHeap {
  private times: Float64Array;
  private devices: Int32Array;
  private length = 0;

  constructor(capacity: number) {
    this.times = new Float64Array(capacity);
    this.devices = new Int32Array(capacity);
  }

  get size(): number {
    return this.length;
  }

  peekTime(): number {
    return this.length > 0 ? (this.times[0] as number) : Number.POSITIVE_INFINITY;
  }

  peekDevice(): number {
    return this.devices[0] as number;
  }

  private less(t1: number, d1: number, t2: number, d2: number): boolean {
    return t1 < t2 || (t1 === t2 && d1 < d2);
  }

  push(time: number, device: number): void {
    if (this.length === this.times.length) this.grow();
    let i = this.length++;
    const times = this.times;
    const devices = this.devices;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const pt = times[parent] as number;
      const pd = devices[parent] as number;
      if (!this.less(time, device, pt, pd)) break;
      times[i] = pt;
      devices[i] = pd;
      i = parent;
    }
    times[i] = time;
    devices[i] = device;
  }

  private grow(): void {
    const times = new Float64Array(this.times.length * 2 + 16);
    const devices = new Int32Array(times.length);
    times.set(this.times);
    devices.set(this.devices);
    this.times = times;
    this.devices = devices;
  }

  /** Removes the earliest entry (read it first with peekTime/peekDevice). */
  pop(): void {
    const n = --this.length;
    if (n === 0) return;
    const times = this.times;
    const devices = this.devices;
    const time = times[n] as number;
    const device = devices[n] as number;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      const right = child + 1;
      if (
        right < n &&
        this.less(
          times[right] as number,
          devices[right] as number,
          times[child] as number,
          devices[child] as number,
        )
      ) {
        child = right;
      }
      if (!this.less(times[child] as number, devices[child] as number, time, device)) break;
      times[i] = times[child] as number;
      devices[i] = devices[child] as number;
      i = child;
    }
    times[i] = time;
    devices[i] = device;
  }
}
