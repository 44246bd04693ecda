/**
 * Readers waiting for the next append (lanes at the end of a log): each wait resolves when
 * woken, or when its signal aborts, and leaves no listener behind either way.
 */
export class Waiters {
  private readonly waiting = new Set<() => void>();

  wait(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const wake = () => {
        this.waiting.delete(wake);
        signal.removeEventListener('abort', wake);
        resolve();
      };
      this.waiting.add(wake);
      signal.addEventListener('abort', wake, { once: true });
    });
  }

  wakeAll(): void {
    for (const wake of [...this.waiting]) wake();
  }
}
