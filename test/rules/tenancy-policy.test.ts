import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config.js';
import { DEFAULT_TENANCY, bySourceOrder, compileTenancyPolicy } from '../../src/rules/tenancy-policy.js';

describe('tenancy policy settings', () => {
  const policy = compileTenancyPolicy({
    ...DEFAULT_TENANCY,
    envAllowlist: ['CLUSTER_NAME'],
    destinationHosts: { cluster: [], team: ['hooks.example.com', '*.corp.example', '127.0.0.1:8080'] },
  });
  const allowed = (url: string, scope: string | null = 'team-a') => {
    try {
      policy.checkDestination(scope ?? undefined, 'd', url);
      return true;
    } catch {
      return false;
    }
  };

  it('matches destination hosts: host (any port), host:port, *.domain (subdomains only)', () => {
    assert.ok(allowed('https://hooks.example.com/x'));
    assert.ok(allowed('https://HOOKS.example.com:8443/x'), 'host names compare case-insensitively, any port');
    assert.ok(allowed('https://a.b.corp.example/x'));
    assert.ok(!allowed('https://corp.example/x'), 'the apex is not a subdomain');
    assert.ok(!allowed('https://evilcorp.example/x'));
    assert.ok(allowed('http://127.0.0.1:8080/x'));
    assert.ok(!allowed('http://127.0.0.1:9090/x'), 'host:port pins the port');
    assert.ok(!allowed('https://hooks.example.com.evil.example/x'));
    assert.ok(!allowed('https://hooks.example.com@evil.example/x'), 'userinfo does not fool it');
    assert.ok(allowed('https://anything.example/x', null), 'cluster rules, empty list: any host');
  });

  it('a team sees only the allowlisted environment variables', () => {
    const env = { CLUSTER_NAME: 'prod', REDIS_URL: 'redis://:pw@r:6379' };
    assert.deepEqual(policy.envFor('team-a', env), { CLUSTER_NAME: 'prod' });
    assert.equal(policy.envFor(undefined, env), env);
  });

  it('config refuses a host entry that could never match (a URL, a path)', () => {
    assert.throws(
      () => loadConfig({ DESTINATION_HOSTS_TEAM: 'hooks.example.com,https://x.example/' }),
      /DESTINATION_HOSTS_TEAM entry "https:\/\/x\.example\/" is not a host/,
    );
    assert.deepEqual(
      loadConfig({ DESTINATION_HOSTS_CLUSTER: 'a.example, *.b.example ,c.example:443' }).tenancy.destinationHosts
        .cluster,
      ['a.example', '*.b.example', 'c.example:443'],
    );
    assert.deepEqual(loadConfig({ TEAM_CLUSTER_KINDS: '' }).tenancy.clusterKinds, [], 'empty: none');
    assert.deepEqual(loadConfig({}).tenancy.clusterKinds, ['Namespace', 'Node']);
  });

  it('source order depends on names only: RULES_DIR files, cluster ConfigMaps, then teams', () => {
    const sources = [
      { source: 'configmap:aaa/x/r.yaml', scope: 'aaa', rules: [] },
      { source: 'configmap:observability/a/r.yaml', rules: [] },
      { source: 'file:z.yaml', rules: [] },
      { source: 'configmap:aaa/a/r.yaml', scope: 'aaa', rules: [] },
    ];
    assert.deepEqual(
      [...sources].sort(bySourceOrder).map((s) => s.source),
      ['file:z.yaml', 'configmap:observability/a/r.yaml', 'configmap:aaa/a/r.yaml', 'configmap:aaa/x/r.yaml'],
    );
  });
});
