/**
 * Newline-delimited JSON-RPC from a STDIO server's stdout. Chunks arrive split
 * anywhere; a line that is not JSON (a server printing to stdout by mistake) is
 * reported, not fatal.
 */
export class LineDecoder {
  private partial = '';

  constructor(
    private readonly onMessage: (message: unknown) => void,
    private readonly onGarbage: (line: string, error: Error) => void,
  ) {}

  push(chunk: Buffer | string): void {
    const text = this.partial + (typeof chunk === 'string' ? chunk : chunk.toString('utf8'));
    let start = 0;
    let end: number;
    while ((end = text.indexOf('\n', start)) !== -1) {
      const line = text.slice(start, end).trim();
      start = end + 1;
      if (line === '') continue;
      let message: unknown;
      try {
        message = JSON.parse(line);
      } catch (error) {
        this.onGarbage(line, error as Error);
        continue;
      }
      this.onMessage(message);
    }
    this.partial = text.slice(start);
  }
}

/** The last lines a server wrote to stderr, for diagnosis; bounded. */
export class LineRing {
  private readonly lines: string[] = [];
  private partial = '';

  constructor(private readonly capacity = 200) {}

  push(chunk: Buffer | string): void {
    const parts = (this.partial + chunk.toString()).split('\n');
    this.partial = parts.pop() ?? '';
    for (const line of parts) {
      this.lines.push(line);
      if (this.lines.length > this.capacity) this.lines.shift();
    }
    if (this.partial.length > 8192) {
      this.lines.push(this.partial);
      this.partial = '';
      if (this.lines.length > this.capacity) this.lines.shift();
    }
  }

  snapshot(): string[] {
    return this.partial ? [...this.lines, this.partial] : [...this.lines];
  }
}
