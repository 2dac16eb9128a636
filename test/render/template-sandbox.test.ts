/**
 * The template sandbox with real worker processes and real JSONata: the same results as on the main thread,
 * and every guard — loop, memory, huge sequence, output size, overrun — trips in the worker, is reported
 * with its guard code, and leaves the sandbox (and this process) serving the next template.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { TemplateError, TemplateQueueError } from '../../src/errors.js';
import { GUARD_CODES } from '../../src/render/template-quarantine.js';
import { createTemplateSandbox, CPU_BUDGET, OUT_OF_MEMORY, OVERRUN } from '../../src/render/template-sandbox.js';
import { compileTemplate, OUTPUT_TOO_LARGE } from '../../src/render/template.js';
import { PRESETS } from '../../src/render/presets.js';
import { loadFixture } from '../support/fixtures.js';

// A far overrun watch, so each test meets the guard it is about (the last test has its own sandbox for it).
const sandbox = createTemplateSandbox({
  workers: 2,
  budgetMs: 100,
  heapMb: 32,
  maxOutputBytes: 64 * 1024,
  overrunMs: 30_000,
});
const options = { timeoutMs: 100, maxOutputBytes: 64 * 1024, sandbox };
const event = loadFixture('pod-backoff-crashloop-resource-update').body as Record<string, unknown>;
const bindings = {
  rule: { name: 'r', description: '' },
  occurrence: 'o-1',
  change: 'add',
  cloudevent: { type: 't', id: 'i', source: 's' },
  object: null,
  owner: null,
  namespace: null,
};

const guardTrip = (code: string) => (err: unknown) =>
  err instanceof TemplateError && err.code === code && GUARD_CODES.has(code);

describe('template sandbox (worker processes)', () => {
  after(() => sandbox.close());

  it('renders every preset exactly as the main thread does', async () => {
    for (const [name, preset] of Object.entries(PRESETS)) {
      const inWorker = await compileTemplate(preset.body, options).render(event, bindings);
      // On the main thread JSONata's timeout is wall-clock: generous, so a busy machine cannot trip it.
      const onMainThread = await compileTemplate(preset.body, { timeoutMs: 10_000 }).render(event, bindings);
      assert.equal(inWorker, onMainThread, name);
    }
  });

  it('keeps deterministic errors as they are: code, message and position', async () => {
    await assert.rejects(
      compileTemplate('{"a": "x" + $count([1,2])}', options).render(event, bindings),
      /T2001: .* at line 1, column 11/,
    );
    await assert.rejects(
      compileTemplate('$count([1,2]) ? nothing.here', options).render(event, bindings),
      /produced no value/,
    );
  });

  it('compiles with the same options as the main thread: regexes run on the linear-time engine', async () => {
    const template = compileTemplate('{ "m": $contains(message, /^(a+)+$/) }', options);
    assert.equal(await template.render({ message: `${'a'.repeat(40)}!` }, bindings), '{"m":false}');
  });

  it('stops a tail-recursive loop at its CPU budget', async () => {
    await assert.rejects(
      compileTemplate('($f := function($x){ $f($x + 1) }; $f(0))', options).render(event, bindings),
      guardTrip(CPU_BUDGET),
    );
  });

  it('ends a worker that runs out of heap ($pad to 100 M characters) and replaces it', async () => {
    await assert.rejects(
      compileTemplate('$pad("", 100000000)', options).render(event, bindings),
      guardTrip(OUT_OF_MEMORY),
    );
    assert.equal(
      await compileTemplate('$string($count([1,2,3]))', options).render(event, bindings),
      '"3"',
      'the next template is served',
    );
  });

  it('stops a huge sequence and refuses an output over the cap', async () => {
    await assert.rejects(compileTemplate('$count([1..10000000])', options).render(event, bindings), guardTrip('D2015'));
    await assert.rejects(
      compileTemplate('$pad("", 100000)', options).render(event, bindings),
      guardTrip(OUTPUT_TOO_LARGE),
    );
  });

  it('terminates and replaces a worker still busy past the overrun time', async () => {
    // JSONata's own timeout set far beyond the overrun watch, as for a native call it cannot interrupt.
    const slow = createTemplateSandbox({
      workers: 1,
      budgetMs: 60_000,
      heapMb: 32,
      maxOutputBytes: 1024,
      overrunMs: 2000,
    });
    try {
      const looping = compileTemplate('($f := function($x){ $f($x + 1) }; $f(0))', {
        timeoutMs: 60_000,
        sandbox: slow,
      });
      await assert.rejects(looping.render(event, bindings), guardTrip(OVERRUN));
      assert.equal(
        await compileTemplate('$string(1 + $count([1]))', { timeoutMs: 60_000, sandbox: slow }).render(event, bindings),
        '"2"',
        'a fresh worker answers',
      );
    } finally {
      await slow.close();
    }
  });

  it('answers with an error (no hang, no crash loop) when its workers cannot start', async () => {
    const broken = createTemplateSandbox({
      workers: 2,
      budgetMs: 100,
      heapMb: 32,
      maxOutputBytes: 1024,
      workerFile: '/nonexistent/template-worker.js',
    });
    try {
      const template = compileTemplate('$string($count([1]))', { timeoutMs: 100, sandbox: broken });
      await assert.rejects(
        template.render(event, bindings),
        (err: unknown) => !(err instanceof TemplateError) && /could not start/.test(String(err)),
      );
      // Within the second after, no new worker is even tried (after it, one is, and fails the same way).
      await assert.rejects(template.render(event, bindings), /not running .*retrying|could not start/);
    } finally {
      await broken.close();
    }
  });

  it('evaluates a burst of 1,000 correct templates without one timeout', async () => {
    const wavefront = compileTemplate(PRESETS['wavefront-event'].body, options);
    const results = await Promise.allSettled(Array.from({ length: 1000 }, () => wavefront.render(event, bindings)));
    assert.deepEqual(
      results.filter((r) => r.status === 'rejected'),
      [],
    );
  });

  it("drops an evaluation still queued at its request's deadline, and refuses one past TEMPLATE_QUEUE at once", async () => {
    const one = createTemplateSandbox({ workers: 1, budgetMs: 60_000, heapMb: 64, maxOutputBytes: 1024, maxQueued: 3 });
    try {
      const slow = compileTemplate('$count([1..90000].$string($))', { timeoutMs: 60_000, sandbox: one });
      const quick = compileTemplate('$join([reason, "x"], ",")', { timeoutMs: 60_000, sandbox: one });
      await quick.render(event, bindings); // the worker is up
      const busy = slow.render(event, bindings); // holds the only worker for a few hundred ms of CPU
      const waiting = [1, 2].map(() => quick.render(event, bindings, Date.now() + 50));
      const kept = quick.render(event, bindings); // no deadline: waits its turn
      await assert.rejects(
        quick.render(event, bindings),
        (err: unknown) =>
          err instanceof TemplateQueueError &&
          /3 evaluations already waiting/.test(err.message) &&
          err.retryAfterMs > 0,
      );
      for (const dropped of waiting)
        await assert.rejects(
          dropped,
          (err: unknown) => err instanceof TemplateQueueError && /deadline/.test(err.message),
        );
      assert.equal(await busy, '90000');
      assert.equal(await kept, '"BackOff,x"');
      assert.equal(one.queued, 0);
    } finally {
      await one.close();
    }
  });
});
