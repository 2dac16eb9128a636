/**
 * `validate` gives a template error at its line and column in the file (JSONata counts within the
 * expression), as file:line:column with the file's line and a caret.
 */
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { validateCommand } from '../../src/cli/validate.js';

const DOC = (body: string) => `destinations:
  out: { kind: log }
rules:
  - name: a
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: X } ] }
    actions:
      - destination: out
        body: ${body}
`;

async function validate(text: string): Promise<{ code: number; lines: string[]; file: string }> {
  const file = join(await mkdtemp(join(tmpdir(), 'ker-pos-')), 'rules.yaml');
  await writeFile(file, text);
  const lines: string[] = [];
  const code = await validateCommand([file], (line) => lines.push(line), {});
  return { code, lines, file };
}

describe('validate: template errors at their place in the file', () => {
  it("in a block scalar: the line and column of the file, the file's line, a caret under the token", async () => {
    const { code, lines, file } = await validate(DOC('|\n          { "x": reason &\n            foo( }'));
    assert.equal(code, 1);
    assert.equal(
      lines[0],
      `✗ ${file}:10:18: rules[0] (a).actions[0].body: S0211: The symbol "}" cannot be used as a unary operator at line 10, column 18 of the file\n                foo( }\n                     ^`,
    );
  });

  it('in a quoted scalar on one line', async () => {
    const { lines, file } = await validate(DOC(`'{ "x": reason ( }'`));
    assert.match(
      lines[0],
      new RegExp(`^✗ ${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:8:32: .* at line 8, column 32 of the file\\n`),
    );
  });

  it('other problems are printed as before', async () => {
    const { lines, file } = await validate(DOC(`'{ "x": reason }'`).replace('operator: equal', 'operator: eqaul'));
    assert.match(
      lines[0],
      new RegExp(
        `^✗ ${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: rules\\[0\\] \\(a\\)\\.conditions\\.all\\[0\\]\\.operator: unknown operator "eqaul"`,
      ),
    );
  });
});
