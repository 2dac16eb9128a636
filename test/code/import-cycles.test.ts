/**
 * No import cycles in src/, type-only imports included: a cycle makes load order decide what is defined
 * (a value read during import is undefined), and it makes a folder impossible to read on its own. Shared
 * types live in leaf modules (rendered-request.ts, compiled-rule.ts, enrichment-facts.ts, sandbox-protocol.ts).
 */
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { parseCircular, parseDependencyTree } from 'dpdm';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** cyclesIn lists every cycle among the files matched by `pattern`, each as "a.ts -> b.ts -> a.ts". */
async function cyclesIn(pattern: string): Promise<string[]> {
  const tree = await parseDependencyTree(pattern, {
    context: root,
    cwd: root,
    transform: false,
    skipDynamicImports: false,
  });
  return parseCircular(tree).map((cycle) => [...cycle, cycle[0]].join(' -> '));
}

describe('import cycles', () => {
  it('src/ has none', async () => {
    const cycles = await cyclesIn('src/**/*.ts');
    assert.deepEqual(
      cycles,
      [],
      `import cycles in src/ (move the shared types to a leaf module):\n${cycles.join('\n')}`,
    );
  });

  it('the check finds a cycle when there is one', async () => {
    const cycles = await cyclesIn('test/code/fixtures/cycle-a.ts');
    assert.deepEqual(cycles, [
      'test/code/fixtures/cycle-a.ts -> test/code/fixtures/cycle-b.ts -> test/code/fixtures/cycle-a.ts',
    ]);
  });
});
