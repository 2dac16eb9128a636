/**
 * needs: the end-to-end suites use real programs from Debian's packages (receivers, Redis, kubectl).
 * `npm test` skips a suite whose programs are missing and says which package brings them, so a
 * contributor without root or Debian still runs everything else. With E2E_REQUIRED=1 (`npm run test:e2e`,
 * CI) a missing program fails the suite instead: CI can never pass by skipping.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** program → the Debian package that installs it. */
const PACKAGES: Record<string, string> = {
  'redis-server': 'redis-server',
  prometheus: 'prometheus',
  promtool: 'prometheus',
  'prometheus-alertmanager': 'prometheus-alertmanager',
  kubectl: 'kubernetes-client',
  setpriv: 'util-linux',
  'graphite-web': 'graphite-web python3-django',
  chromium: 'chromium',
  openssl: 'openssl',
  tinyproxy: 'tinyproxy',
};

function found(program: string): boolean {
  if (program === 'graphite-web') {
    return (
      existsSync('/usr/bin/python3') &&
      spawnSync('/usr/bin/python3', ['-c', 'import graphite, django'], { stdio: 'ignore' }).status === 0
    );
  }
  return spawnSync('sh', ['-c', `command -v ${program}`], { stdio: 'ignore' }).status === 0;
}

/**
 * needs returns node:test's `skip` option for a suite: false when every program is there, else the
 * reason. Under E2E_REQUIRED=1 a missing program throws, which fails the test file.
 */
export function needs(...programs: string[]): false | string {
  const missing = programs.filter((p) => !found(p));
  if (missing.length === 0) return false;
  const packages = [...new Set(missing.map((p) => PACKAGES[p] ?? p))].join(' ');
  const reason = `needs ${missing.join(', ')} (Debian: apt-get install ${packages}; \`npm run test:e2e\` installs them)`;
  if (process.env.E2E_REQUIRED === '1') throw new Error(`E2E_REQUIRED=1 but this suite ${reason}`);
  return reason;
}
