// Registries behind auth: basic (docker-registry with an htpasswd file) and bearer tokens (a token
// service in the test, whose signing certificate the registry trusts). With credentials ovlfs pull
// and commit get through; without, or with wrong ones, they are refused with EACCES.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createSign, randomUUID, X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
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
  const registry = await startRegistry(t, dir, { htpasswd: line! });
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

/** A command run without blocking this process's event loop (the token service answers from it). */
function shAsync(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { maxBuffer: 1 << 24 }, (error, stdout, stderr) => (error ? reject(new Error(`${cmd} failed: ${stderr}`)) : resolve(stdout)));
  });
}

/** base64url of JSON or bytes, as JWTs encode their parts. */
function b64url(data: Buffer | object): string {
  return (Buffer.isBuffer(data) ? data : Buffer.from(JSON.stringify(data))).toString('base64url');
}

test('a registry with bearer tokens', { skip: missingTools('docker-registry', 'skopeo', 'openssl') }, async (t) => {
  const dir = scratch(t, 'token');
  // The token service: a key and a self-signed certificate the registry trusts, and a small HTTP
  // server that grants what the scopes ask for to alice, and pull to anyone.
  const key = path.join(dir, 'token.key');
  const cert = path.join(dir, 'token.crt');
  sh('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=ovlfs-test-token']);
  const der = new X509Certificate(fs.readFileSync(cert)).raw;
  const privateKey = fs.readFileSync(key);
  const requests: { scopes: string[]; user: string | undefined }[] = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url!, 'http://x');
    const basic = req.headers.authorization?.startsWith('Basic ') ? Buffer.from(req.headers.authorization.slice(6), 'base64').toString() : undefined;
    if (basic !== undefined && basic !== 'alice:s3cret') {
      res.writeHead(401).end();
      return;
    }
    const user = basic?.split(':')[0];
    const scopes = url.searchParams.getAll('scope');
    requests.push({ scopes, user });
    const access = scopes.map((scope) => {
      const [type, name, actions] = scope.split(':') as [string, string, string];
      return { type, name, actions: actions.split(',').filter((a) => user !== undefined || a === 'pull') };
    });
    const now = Math.floor(Date.now() / 1000);
    const header = b64url({ typ: 'JWT', alg: 'RS256', x5c: [der.toString('base64')] });
    const claims = b64url({ iss: 'ovlfs-test-issuer', sub: user ?? '', aud: url.searchParams.get('service'), exp: now + 300, nbf: now - 10, iat: now, jti: randomUUID(), access });
    const signature = createSign('RSA-SHA256').update(`${header}.${claims}`).sign(privateKey).toString('base64url');
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: `${header}.${claims}.${signature}` }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => server.close());
  const realm = `http://127.0.0.1:${(server.address() as { port: number }).port}/token`;
  const registry = await startRegistry(t, dir, { token: { realm, service: 'ovlfs-test-registry', issuer: 'ovlfs-test-issuer', certificate: cert } });
  const image = craftImage(path.join(dir, 'layout'), [await tarOf([{ name: 'hello', data: 'hello\n' }])]);
  await shAsync('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', '--dest-creds', 'alice:s3cret', `oci:${image.layout}:v1`, `docker://${registry.host}/team/image:v1`]);

  await t.test('an anonymous pull gets a pull token; a commit with --creds a push token', async () => {
    requests.length = 0;
    const pulled = await pull(`docker://${registry.host}/team/image:v1`, path.join(dir, 'pulled'), { tlsVerify: false });
    assert.equal(pulled.lowerdirs.length, 1);
    assert.deepEqual(requests, [{ scopes: ['repository:team/image:pull'], user: undefined }], 'one token, reused for every blob');
    const upper = path.join(dir, 'upper');
    fs.mkdirSync(upper);
    fs.writeFileSync(path.join(upper, 'new'), 'new\n');
    requests.length = 0;
    const result = await commit(path.join(dir, 'pulled'), upper, `docker://${registry.host}/team/other:v2`, { tlsVerify: false, creds: { username: 'alice', password: 's3cret' } });
    assert.equal(Object.values(result.blobs).filter((b) => b === 'mounted').length, 1, JSON.stringify(result.blobs));
    assert.ok(requests.every((r) => r.user === 'alice'));
    assert.ok(requests.some((r) => r.scopes.includes('repository:team/other:pull,push') && r.scopes.includes('repository:team/image:pull')), JSON.stringify(requests));
    await shAsync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${registry.host}/team/other:v2`]);
  });

  await t.test('a push without credentials is refused with EACCES', async () => {
    const upper = path.join(dir, 'upper');
    await assert.rejects(commit(path.join(dir, 'pulled'), upper, `docker://${registry.host}/team/anonymous:v1`, { tlsVerify: false }), { code: 'EACCES' });
  });
});
