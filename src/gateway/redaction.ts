/**
 * No secret leaves through a result: the values of the secrets mcpd injected into an
 * instance are replaced with REDACTION_MARKER wherever they appear in what that
 * instance sends back (results, errors, notifications, its requests to the client).
 *
 * A value reaches a message in more than one spelling. A tool that prints its
 * environment as JSON (`JSON.stringify(process.env)`) puts the value JSON-escaped into
 * a text field, so a value with a quote, a backslash or a newline appears as `a\"b\\n`
 * once the message is parsed; printed twice-encoded, escaped twice; Python's json.dumps
 * escapes every non-ASCII character as \uXXXX; Node's util.inspect quotes with `'`.
 * Each spelling is searched for, longest first, in every string and key of the message.
 *
 * Values shorter than MIN_REDACTED_LENGTH are left alone: they occur by chance in
 * ordinary text (replacing "1" or "yes" everywhere would corrupt every result) and are
 * not secret against guessing anyway.
 */

export const REDACTION_MARKER = '[redacted by mcpd]';
export const MIN_REDACTED_LENGTH = 4;

/** The value inside a JSON string literal. */
function jsonEscaped(value: string): string {
  return JSON.stringify(value).slice(1, -1);
}

/** json.dumps(value) with ensure_ascii (Python's default): every non-ASCII UTF-16 unit as \uXXXX. */
function jsonAsciiEscaped(value: string): string {
  return jsonEscaped(value).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** The value inside a single-quoted JavaScript literal as util.inspect writes it. */
function singleQuoteEscaped(value: string): string {
  return jsonEscaped(value).replace(/\\"/g, '"').replace(/'/g, "\\'");
}

/** Every spelling of the values worth searching for, longest first (a value containing another is replaced whole). */
export function redactionForms(values: readonly string[]): string[] {
  const forms = new Set<string>();
  for (const value of values) {
    if (value.length < MIN_REDACTED_LENGTH) continue;
    for (const once of [value, jsonEscaped(value), jsonAsciiEscaped(value), singleQuoteEscaped(value)]) {
      forms.add(once);
      forms.add(jsonEscaped(once));
    }
  }
  return [...forms].sort((a, b) => b.length - a.length);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Replaces the injected values of one instance in the messages it sends. Pure: the
 * caller keeps the count (the gateway reports it per instance).
 */
export class SecretRedactor {
  private readonly pattern: RegExp | undefined;

  constructor(values: readonly string[]) {
    const forms = redactionForms(values);
    // One alternation, longest first: a single pass over each string finds every spelling.
    this.pattern = forms.length > 0 ? new RegExp(forms.map(escapeRegExp).join('|'), 'g') : undefined;
  }

  /** Whether there is anything to redact (no value long enough: the messages pass untouched). */
  get active(): boolean {
    return this.pattern !== undefined;
  }

  /** The text with every spelling of every value replaced, and how many were. */
  redactText(text: string): { text: string; count: number } {
    if (!this.pattern) return { text, count: 0 };
    let count = 0;
    const redacted = text.replace(this.pattern, () => {
      count++;
      return REDACTION_MARKER;
    });
    return { text: redacted, count };
  }

  /**
   * The message with every string (and key) redacted, and how many replacements that
   * took. An untouched message is returned as is (no copy on the hot path).
   */
  redact<T>(message: T): { message: T; count: number } {
    if (!this.pattern) return { message, count: 0 };
    let count = 0;
    const walk = (value: unknown): unknown => {
      if (typeof value === 'string') {
        const r = this.redactText(value);
        count += r.count;
        return r.count > 0 ? r.text : value;
      }
      if (Array.isArray(value)) {
        let changed = false;
        const out = value.map((item) => {
          const next = walk(item);
          if (next !== item) changed = true;
          return next;
        });
        return changed ? out : value;
      }
      if (value !== null && typeof value === 'object') {
        let changed = false;
        const out: Record<string, unknown> = {};
        for (const [key, item] of Object.entries(value)) {
          const k = this.redactText(key);
          count += k.count;
          const next = walk(item);
          if (next !== item || k.count > 0) changed = true;
          out[k.text] = next;
        }
        return changed ? out : value;
      }
      return value;
    };
    const redacted = walk(message) as T;
    return { message: redacted, count };
  }
}
