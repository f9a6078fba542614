// A registry behind basic auth (docker-registry with an htpasswd file): ovlfs pull and commit with
// --creds get through, without or with wrong credentials they are refused with EACCES.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';

import { commit } from '../../src/oci/commit.js';
import { pull } from '../../src/oci/pull.js';
import { parseCredentials } from '../../src/oci/registry-auth.js';
import { scratch, tarOf } from './layer-fixtures.js';
import { craftImage, htpasswdLine, missingTools, ovlfs, sh, startRegistry } from './registry-fixture.js';

const missing = missingTools('docker-registry', 'skopeo', 'python3');
const line = missing === undefined ? htpasswdLine('alice', 's3cret:with colon') : undefined;
const skip = missing ?? (line === undefined ? 'no bcrypt here (python3 crypt with libxcrypt) to write an htpasswd file' : undefined);

test('a registry with basic auth', { skip }, async (t) => {
  const dir = scratch(t, 'auth');
  const registry = await startRegistry(t, dir, line);
  const image = craftImage(path.join(dir, 'layout'), [await tarOf([{ name: 'hello', data: 'hello\n' }])]);
  sh('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', '--dest-creds', 'alice:s3cret:with colon', `oci:${image.layout}:v1`, `docker://${registry.host}/private/image:v1`]);
  const src = `docker://${registry.host}/private/image:v1`;

  await t.test('with --creds, pull and commit get through', async () => {
    const r = ovlfs(['pull', '--tls-verify=false', '--creds', 'alice:s3cret:with colon', src, path.join(dir, 'pulled')]);
    assert.equal(r.status, 0, r.stderr);
    const upper = path.join(dir, 'upper');
    sh('mkdir', ['-p', upper]);
    sh('sh', ['-c', `echo new > ${upper}/new`]);
    const creds = parseCredentials('alice:s3cret:with colon');
    const result = await commit(path.join(dir, 'pulled'), upper, `docker://${registry.host}/private/committed:v2`, { tlsVerify: false, creds });
    assert.equal(result.blobs[result.layer.digest], 'uploaded');
    sh('skopeo', ['inspect', '--raw', '--tls-verify=false', '--creds', 'alice:s3cret:with colon', `docker://${registry.host}/private/committed:v2`]);
  });

  await t.test('without credentials, or with wrong ones, EACCES', async () => {
    await assert.rejects(pull(src, path.join(dir, 'anonymous'), { tlsVerify: false }), { code: 'EACCES' });
    await assert.rejects(pull(src, path.join(dir, 'wrong'), { tlsVerify: false, creds: { username: 'alice', password: 'wrong' } }), (e: NodeJS.ErrnoException) => {
      assert.equal(e.code, 'EACCES');
      assert.match(e.message, /401/);
      return true;
    });
  });
});
