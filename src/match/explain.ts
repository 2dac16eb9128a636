/**
 * explainConditions flattens json-rules-engine's evaluated condition tree into the leaf conditions,
 * each with the value the fact had and whether it held — "the facts that decided", for dry runs.
 */
export interface ConditionOutcome {
  fact: string;
  path?: string;
  operator: string;
  value: unknown;
  factValue: unknown;
  result: boolean | undefined;
}

export function explainConditions(tree: unknown): ConditionOutcome[] {
  const out: ConditionOutcome[] = [];
  const walk = (node: unknown): void => {
    if (typeof node !== 'object' || node === null) return;
    const condition = node as Record<string, unknown>;
    for (const group of ['all', 'any'] as const)
      if (Array.isArray(condition[group])) (condition[group] as unknown[]).forEach(walk);
    if (condition.not) walk(condition.not);
    if (typeof condition.fact === 'string') {
      out.push({
        fact: condition.fact,
        ...(typeof condition.path === 'string' ? { path: condition.path } : {}),
        operator: String(condition.operator),
        value: condition.value,
        factValue: truncate(condition.factResult),
        result: condition.result as boolean | undefined,
      });
    }
  };
  walk(tree);
  return out;
}

/** Long fact values (a 50 KB message, a whole object) are cut so reports stay readable. */
function truncate(value: unknown): unknown {
  if (typeof value === 'string' && value.length > 200) return `${value.slice(0, 200)}…`;
  if (typeof value === 'object' && value !== null) {
    const text = JSON.stringify(value);
    return text.length > 200 ? `${text.slice(0, 200)}…` : value;
  }
  return value;
}
