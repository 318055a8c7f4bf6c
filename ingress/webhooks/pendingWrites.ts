// Writes the ingress makes after it has answered: tracked, so a shutdown (and a test) can wait for them to land.

export class PendingWrites {
  private readonly open = new Set<Promise<void>>();

  /** `write` handles its own failure: nothing here reports it. */
  add(write: Promise<void>): void {
    const tracked = write.finally(() => this.open.delete(tracked));
    this.open.add(tracked);
  }

  /** Resolves once every write added so far, and any added meanwhile, has finished. */
  async settled(): Promise<void> {
    while (this.open.size > 0) await Promise.allSettled([...this.open]);
  }
}
