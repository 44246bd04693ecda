/**
 * A one-line live progress display on stderr. On a terminal it redraws in place a few
 * times a second; otherwise (CI, pipes) it prints a line every few seconds.
 */
export class Progress {
  private last = 0;
  private readonly tty: boolean;
  private readonly interval: number;
  private drawn = false;

  constructor(private readonly enabled: boolean) {
    this.tty = Boolean(process.stderr.isTTY);
    this.interval = this.tty ? 200 : 5000;
  }

  update(render: () => string, force = false): void {
    if (!this.enabled) return;
    const now = performance.now();
    if (!force && now - this.last < this.interval) return;
    this.last = now;
    const line = render();
    if (this.tty) {
      process.stderr.write(`\r\x1b[2K${line}`);
      this.drawn = true;
    } else {
      process.stderr.write(`${line}\n`);
    }
  }

  done(): void {
    if (this.drawn) process.stderr.write('\n');
    this.drawn = false;
  }
}

export function formatCount(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

export function formatBar(fraction: number, width = 20): string {
  const filled = Math.max(0, Math.min(width, Math.round(fraction * width)));
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
}
