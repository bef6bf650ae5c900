/**
 * Newline-delimited JSON-RPC from a STDIO server's stdout. Chunks arrive split
 * anywhere (also inside a multi-byte character, so lines are cut as bytes and decoded
 * whole); a line that is not JSON (a server printing to stdout by mistake) is
 * reported, not fatal. A line may not grow past maxLineBytes: a server that writes
 * more without a newline is not speaking JSON-RPC, and buffering it would let one
 * upstream take mcpd's memory. Its bytes are dropped up to the next newline and
 * onOverflow is told once per such line.
 */
export const DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024;

export class LineDecoder {
  /** The start of the current line, as it arrived. */
  private partial: Buffer[] = [];
  private partialBytes = 0;
  /** Inside a line that overflowed: dropping until its newline. */
  private dropping = false;

  constructor(
    private readonly onMessage: (message: unknown) => void,
    /** `line` is at most GARBAGE_EXCERPT_BYTES of the line; `why` says why it is not a message. */
    private readonly onGarbage: (line: string, why: string) => void,
    private readonly maxLineBytes = DEFAULT_MAX_LINE_BYTES,
    private readonly onOverflow: (maxLineBytes: number) => void = () => undefined,
  ) {}

  push(chunk: Buffer | string): void {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    let start = 0;
    let end: number;
    // Only the new bytes are searched: a long line arriving in many chunks costs linear time.
    while ((end = bytes.indexOf(0x0a, start)) !== -1) {
      const tail = bytes.subarray(start, end);
      start = end + 1;
      if (this.dropping) {
        this.dropping = false;
        continue;
      }
      if (this.partialBytes + tail.length > this.maxLineBytes) {
        this.overflow();
        continue;
      }
      const line = this.partial.length === 0 ? tail : Buffer.concat([...this.partial, tail]);
      this.partial = [];
      this.partialBytes = 0;
      this.decode(line);
    }
    if (start === bytes.length || this.dropping) return;
    if (this.partialBytes + bytes.length - start > this.maxLineBytes) {
      this.overflow();
      this.dropping = true;
      return;
    }
    this.partial.push(bytes.subarray(start));
    this.partialBytes += bytes.length - start;
  }

  /** The current line passed the cap: forget what it buffered and say so. */
  private overflow(): void {
    this.partial = [];
    this.partialBytes = 0;
    this.onOverflow(this.maxLineBytes);
  }

  private decode(line: Buffer): void {
    let first = 0;
    while (first < line.length && isJsonWhitespace(line[first])) first++;
    if (first === line.length) return;
    // A JSON-RPC message is an object (or a batch, an array). Anything else is garbage
    // without the cost of a parse and its exception: a flood of prints stays cheap.
    if (line[first] !== 0x7b && line[first] !== 0x5b) {
      this.onGarbage(excerpt(line, first), 'not a JSON object');
      return;
    }
    let message: unknown;
    try {
      message = JSON.parse(line.toString('utf8'));
    } catch (error) {
      this.onGarbage(excerpt(line, first), (error as Error).message);
      return;
    }
    this.onMessage(message);
  }
}

/** The start of a garbage line, for the log: enough to recognise it, never the whole flood. */
export const GARBAGE_EXCERPT_BYTES = 500;

function excerpt(line: Buffer, from: number): string {
  return line
    .subarray(from, from + GARBAGE_EXCERPT_BYTES)
    .toString('utf8')
    .trimEnd();
}

function isJsonWhitespace(byte: number): boolean {
  return byte === 0x20 || byte === 0x09 || byte === 0x0d || byte === 0x0a;
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
