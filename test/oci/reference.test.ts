// Image references in skopeo's transport syntax, and the refusals of bad ones.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';

import { formatReference, parseReference } from '../../src/oci/reference.js';

test('docker:// references', () => {
  assert.deepEqual(parseReference('docker://127.0.0.1:5000/a/b:v1'), { transport: 'docker', host: '127.0.0.1:5000', repository: 'a/b', reference: 'v1' });
  assert.deepEqual(parseReference('docker://localhost/img'), { transport: 'docker', host: 'localhost', repository: 'img', reference: 'latest' });
  assert.deepEqual(parseReference('docker://busybox'), { transport: 'docker', host: 'registry-1.docker.io', repository: 'library/busybox', reference: 'latest' });
  assert.deepEqual(parseReference('docker://quay.io/org/img:1.2'), { transport: 'docker', host: 'quay.io', repository: 'org/img', reference: '1.2' });
  const digest = `sha256:${'a'.repeat(64)}`;
  assert.equal(parseReference(`docker://host.example:443/x/y@${digest}`).transport === 'docker' && (parseReference(`docker://host.example:443/x/y@${digest}`) as { reference: string }).reference, digest);
  assert.equal(formatReference(parseReference('docker://127.0.0.1:5000/a/b:v1')), 'docker://127.0.0.1:5000/a/b:v1');
});

test('oci: and oci-archive: references', () => {
  assert.deepEqual(parseReference('oci:/tmp/layout:v2'), { transport: 'oci', path: '/tmp/layout', tag: 'v2' });
  assert.deepEqual(parseReference('oci:rel/dir'), { transport: 'oci', path: path.resolve('rel/dir') });
  assert.deepEqual(parseReference('oci-archive:/tmp/i.tar:latest'), { transport: 'oci-archive', path: '/tmp/i.tar', tag: 'latest' });
});

test('bad references are EINVAL, saying what is wrong', () => {
  for (const [ref, why] of [
    ['busybox', /expected docker:\/\//],
    ['http://x/y', /unknown transport 'http'/],
    ['docker:x/y', /docker: takes \/\/HOST/],
    ['docker://host.io/UPPER/case', /bad repository name/],
    ['docker://host.io/a/b:bad tag', /bad tag/],
    ['docker://host.io/a/b@sha256:short', /invalid digest/],
    ['docker://host.io/a/../b:v1', /bad repository name/],
    ['oci:', /needs a path/],
    ['oci:/x:bad/tag', /bad tag/],
  ] as const) {
    assert.throws(() => parseReference(ref), (e: NodeJS.ErrnoException) => e.code === 'EINVAL' && why.test(e.message), ref);
  }
});
