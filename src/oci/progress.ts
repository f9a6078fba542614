// Pull progress on one stderr line, redrawn at most ten times a second, and only on a terminal:
// a log file or a pipe gets nothing.
export class Progress {
  private done = 0;
  private layersDone = 0;
  private last = 0;
  private readonly enabled: boolean;
  constructor(
    private readonly total: number,
    private readonly layers: number,
    enabled = process.stderr.isTTY === true,
  ) {
    this.enabled = enabled;
  }
  bytes(n: number): void {
    this.done += n;
    this.draw(false);
  }
  layer(): void {
    this.layersDone++;
    this.draw(true);
  }
  finish(): void {
    if (this.enabled) process.stderr.write('\n');
  }
  private draw(force: boolean): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (!force && now - this.last < 100) return;
    this.last = now;
    const mb = (n: number) => (n / 1e6).toFixed(1);
    process.stderr.write(`\r\x1b[Kpull: ${this.layersDone}/${this.layers} layers, ${mb(this.done)}/${mb(this.total)} MB`);
  }
}
