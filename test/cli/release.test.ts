/**
 * One version names a release: the npm package, the image tag in deploy/ and the changelog agree.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parse } from 'yaml';

const repo = new URL('../../', import.meta.url).pathname;
const read = (path: string) => readFileSync(`${repo}${path}`, 'utf8');

describe('release version', () => {
  const { version, files } = JSON.parse(read('package.json')) as { version: string; files: string[] };

  it('the manifests deploy the image of the package version', () => {
    const kustomization = parse(read('deploy/base/kustomization.yaml')) as {
      images: { name: string; newTag: string }[];
    };
    assert.equal(kustomization.images.find((i) => i.name === 'kube-event-rules')?.newTag, version);
  });

  it('the changelog has the version and an Unreleased section', () => {
    const changelog = read('CHANGELOG.md');
    assert.match(changelog, new RegExp(`^## \\[${version.replace(/\./g, '\\.')}\\]`, 'm'));
    assert.match(changelog, /^## \[Unreleased\]/m);
  });

  it('the package carries what the CLI reads at run time', () => {
    for (const path of ['dist', 'bin', 'rules', 'examples/events', 'src/rules/rule-document.schema.json'])
      assert.ok(files.includes(path), path);
  });
});
