// Where a JSON text goes wrong, in ncfence's words: "line 3, column 5:
// expected "," or "}" after a member". JSON.parse says it in V8's words,
// which change between releases, quote the text with its line breaks, and
// for an unexpected token give no position at all (Node 20: `Unexpected
// token ']', "[1,]" is not valid JSON`). This scanner follows the grammar of
// RFC 8259 sections 2-7 only to find the first place that breaks it; the
// parsing itself stays JSON.parse's.

class JsonSyntax extends Error {
  constructor(
    readonly at: number,
    readonly problem: string,
  ) {
    super(problem);
  }
}

const WS = new Set([' ', '\t', '\n', '\r']); // RFC 8259 s. 2

function shown(c: string | undefined): string {
  if (c === undefined) return 'the end of the text';
  return /^[\x21-\x7e]$/.test(c) ? `"${c}"` : `character U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
}

class Scanner {
  pos = 0;
  constructor(private readonly s: string) {}

  private fail(problem: string, at = this.pos): never {
    throw new JsonSyntax(at, problem);
  }

  private ws(): void {
    while (this.pos < this.s.length && WS.has(this.s[this.pos]!)) this.pos++;
  }

  private peek(): string | undefined {
    return this.s[this.pos];
  }

  document(): void {
    this.ws();
    this.value();
    this.ws();
    if (this.pos < this.s.length) this.fail(`more text after the JSON value: ${shown(this.peek())}`);
  }

  private value(): void {
    const c = this.peek();
    if (c === '{') return this.items('}', () => this.member(), 'a member');
    if (c === '[') return this.items(']', () => this.value(), 'an element');
    if (c === '"') return this.string();
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return this.number();
    for (const word of ['true', 'false', 'null']) {
      if (this.s.startsWith(word, this.pos)) {
        this.pos += word.length;
        return;
      }
    }
    this.fail(c === undefined ? 'the text ends where a value should be' : `expected a value, found ${shown(c)}${c === "'" ? ' (JSON strings take double quotes)' : ''}`);
  }

  /** An object's members or an array's elements, from the opening bracket to `close`. */
  private items(close: '}' | ']', item: () => void, what: string): void {
    this.pos++;
    this.ws();
    if (this.peek() === close) {
      this.pos++;
      return;
    }
    for (;;) {
      this.ws();
      item();
      this.ws();
      const c = this.peek();
      this.pos++;
      if (c === close) return;
      if (c !== ',') this.fail(`expected "," or "${close}" after ${what}, found ${shown(c)}`, this.pos - 1);
    }
  }

  private member(): void {
    if (this.peek() !== '"') this.fail(`expected a member name in double quotes, found ${shown(this.peek())}`);
    this.string();
    this.ws();
    if (this.peek() !== ':') this.fail(`expected ":" after the member name, found ${shown(this.peek())}`);
    this.pos++;
    this.ws();
    this.value();
  }

  private string(): void {
    const start = this.pos++;
    for (;;) {
      const c = this.peek();
      if (c === undefined) this.fail('the text ends inside a string', start);
      this.pos++;
      if (c === '"') return;
      if (c < ' ') this.fail(`${c === '\n' ? 'a line break' : shown(c)} inside a string (write it as an escape such as \\n)`, this.pos - 1);
      if (c === '\\') {
        const e = this.peek();
        if (e !== undefined && '"\\/bfnrt'.includes(e)) this.pos++;
        else if (e === 'u' && /^[0-9a-fA-F]{4}$/.test(this.s.slice(this.pos + 1, this.pos + 5))) this.pos += 5;
        else this.fail(`a bad escape "\\${e ?? ''}" inside a string`, this.pos - 1);
      }
    }
  }

  private number(): void {
    const m = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/.exec(this.s.slice(this.pos));
    const next = m ? this.s[this.pos + m[0].length] : undefined;
    if (!m || m[0] === '-' || (next !== undefined && /[0-9.eE+-]/.test(next))) this.fail('a malformed number');
    this.pos += m[0].length;
  }
}

/** Line and column (1-based) of a character offset. */
function lineColumn(s: string, at: number): string {
  const before = s.slice(0, at);
  const line = before.split('\n').length;
  const column = at - (before.lastIndexOf('\n') + 1) + 1;
  return `line ${line}, column ${column}`;
}

/**
 * Why `text` is not JSON, as "line L, column C: problem"; a generic phrase
 * when the scanner finds nothing wrong (JSON.parse refused something it
 * accepts, which would be a bug here).
 */
export function jsonSyntaxProblem(text: string): string {
  try {
    new Scanner(text).document();
  } catch (e) {
    if (e instanceof JsonSyntax) return `${lineColumn(text, e.at)}: ${e.problem}`;
    throw e;
  }
  return 'the text is not JSON';
}
