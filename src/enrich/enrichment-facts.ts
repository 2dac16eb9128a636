/**
 * The enrichment facts a condition or template may read (what each is: lazy-facts.ts). A leaf, so render/ and rules/
 * can name them without importing the cluster.
 */
export const ENRICHMENT_FACTS = ['object', 'owner', 'namespace'] as const;
export type EnrichmentFact = (typeof ENRICHMENT_FACTS)[number];
