// Shared by the image tests: a docker-registry (distribution) on 127.0.0.1 with its own config in the
// test's temp dir, reference images built with umoci and pushed with skopeo, and the CLI run as a
// child process. Everything lives in the test's temp dir and is stopped in t.after.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import type { TestContext } from 'node:test';
import { gunzipSync, gzipSync } from 'node:zlib';

import { scratch, snapshot } from './layer-fixtures.js';

export const CLI = path.resolve('src/cli/main.ts');

/** Why these tools cannot be used here, or undefined when all are installed. */
export function missingTools(...tools: string[]): string | undefined {
  const missing = tools.filter((t) => spawnSync('sh', ['-c', `command -v ${t}`], { stdio: 'ignore' }).status !== 0);
  return missing.length === 0 ? undefined : `needs ${missing.join(', ')} (apt-get install ${missing.join(' ')})`;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

/** A bcrypt htpasswd line made by libxcrypt through python3's crypt (cost 4: tests stay fast). */
export function htpasswdLine(user: string, password: string): string | undefined {
  const r = spawnSync('python3', ['-W', 'ignore', '-c', 'import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)))', password], { encoding: 'utf8' });
  const hash = r.stdout.trim();
  return r.status === 0 && hash.startsWith('$2') ? `${user}:${hash}` : undefined;
}

export interface Registry {
  /** 127.0.0.1:PORT */
  host: string;
  /** The filesystem driver's root: blobs live under docker/registry/v2/blobs. */
  storage: string;
  process: ChildProcess;
}

/**
 * Starts docker-registry in `dir` on a free port; with `htpasswd` (a line of an htpasswd file) behind
 * basic auth, with `token` behind bearer tokens from that realm, signed by the key of that certificate.
 */
export async function startRegistry(t: Pick<TestContext, 'after'>, dir: string, auth: { htpasswd?: string; token?: { realm: string; service: string; issuer: string; certificate: string } } = {}): Promise<Registry> {
  const { htpasswd, token } = auth;
  const port = await freePort();
  const storage = path.join(dir, 'registry-storage');
  const config = path.join(dir, 'registry.yml');
  let yaml = `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${storage}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:${port}\n`;
  if (htpasswd !== undefined) {
    fs.writeFileSync(path.join(dir, 'htpasswd'), htpasswd + '\n');
    yaml += `auth:\n  htpasswd:\n    realm: ovlfs-test\n    path: ${path.join(dir, 'htpasswd')}\n`;
  }
  if (token !== undefined) {
    yaml += `auth:\n  token:\n    realm: ${token.realm}\n    service: ${token.service}\n    issuer: ${token.issuer}\n    rootcertbundle: ${token.certificate}\n`;
  }
  fs.writeFileSync(config, yaml);
  const child = spawn('docker-registry', ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  t.after(() => {
    child.kill('SIGKILL');
  });
  const host = `127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited: ${stderr}`);
    try {
      const res = await fetch(`http://${host}/v2/`);
      if (res.status === 200 || res.status === 401) return { host, storage, process: child };
    } catch {
      // Not listening yet.
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`docker-registry did not start: ${stderr}`);
}

export function sh(cmd: string, args: string[], options: { cwd?: string; input?: string } = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 26, ...options });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}${r.error?.message ?? ''}`);
  return r.stdout;
}

/** Runs the ovlfs CLI in a child process: its status, stdout and stderr. */
export function ovlfs(args: string[], env?: NodeJS.ProcessEnv): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', CLI, ...args], { encoding: 'utf8', maxBuffer: 1 << 26, ...(env !== undefined ? { env: { ...process.env, ...env } } : {}) });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** A statically linked busybox (package busybox-static), to run inside images. */
export const BUSYBOX = '/bin/busybox';

/** Why busybox cannot be copied into an image here, or undefined. */
export function noStaticBusybox(): string | undefined {
  // ldd answers 'not a dynamic executable' (and fails) for a static binary.
  const r = spawnSync('ldd', [BUSYBOX], { encoding: 'utf8' });
  return fs.existsSync(BUSYBOX) && `${r.stdout}${r.stderr}`.includes('not a dynamic executable') ? undefined : `needs a static ${BUSYBOX} (apt-get install busybox-static)`;
}

/**
 * A two-layer reference image built by umoci at `layout:TAG`: the first layer a small tree (dirs,
 * modes, a symlink, a hard link, an xattr, an empty file, a long name, busybox as /bin/sh), the second deletes a file
 * and a directory, changes a file, a mode and adds files, so that it carries whiteouts.
 */
export function buildReferenceImage(dir: string, tag = 'v1'): string {
  const layout = path.join(dir, 'ref-layout');
  const bundle = path.join(dir, 'ref-bundle');
  sh('umoci', ['init', '--layout', layout]);
  sh('umoci', ['new', '--image', `${layout}:${tag}`]);
  sh('umoci', ['unpack', '--image', `${layout}:${tag}`, bundle]);
  const root = path.join(bundle, 'rootfs');
  const put = (rel: string, data: string, mode = 0o644): void => {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), data);
    fs.chmodSync(path.join(root, rel), mode);
  };
  put('etc/hostname', 'reference\n');
  put('etc/motd', 'welcome\n');
  put('bin/tool', '#!/bin/sh\necho tool\n', 0o755);
  put('usr/share/doc/readme', 'x'.repeat(70_000));
  put('usr/share/doc/old/notes', 'old notes\n');
  put('var/empty-file', '');
  // Incompressible data, so that blobs have a size worth streaming (and cutting, and timing).
  fs.mkdirSync(path.join(root, 'usr/lib'), { recursive: true });
  fs.writeFileSync(path.join(root, 'usr/lib/data.bin'), randomBytes(256 << 10));
  put(`opt/${'long-name-'.repeat(12)}end`, 'long\n');
  put('srv/secret', 'only root\n', 0o600);
  fs.symlinkSync('../etc/hostname', path.join(root, 'bin/hostname-link'));
  // A shell for ovlfs run (busybox-static), and the mount points run provides.
  fs.copyFileSync(BUSYBOX, path.join(root, 'bin/busybox'));
  fs.chmodSync(path.join(root, 'bin/busybox'), 0o755);
  fs.symlinkSync('busybox', path.join(root, 'bin/sh'));
  fs.mkdirSync(path.join(root, 'proc'));
  fs.mkdirSync(path.join(root, 'dev'));
  fs.linkSync(path.join(root, 'etc/motd'), path.join(root, 'etc/motd.hard'));
  fs.mkdirSync(path.join(root, 'tmp'), { mode: 0o1777 });
  fs.chmodSync(path.join(root, 'tmp'), 0o1777);
  sh('setfattr', ['-n', 'user.origin', '-v', 'reference', path.join(root, 'etc/hostname')]);
  sh('umoci', ['repack', '--image', `${layout}:${tag}`, bundle]);
  // Second layer (umoci diffs against the image it unpacked, so unpack the new one first):
  // deletions, a change, a mode change, additions.
  fs.rmSync(bundle, { recursive: true, force: true });
  sh('umoci', ['unpack', '--image', `${layout}:${tag}`, bundle]);
  fs.rmSync(path.join(root, 'etc/motd.hard'));
  fs.rmSync(path.join(root, 'usr/share/doc/old'), { recursive: true });
  put('etc/hostname', 'changed\n');
  fs.chmodSync(path.join(root, 'bin/tool'), 0o700);
  put('etc/added', 'added in layer 2\n');
  put('usr/share/doc/new/notes', 'new notes\n');
  sh('umoci', ['repack', '--image', `${layout}:${tag}`, bundle]);
  fs.rmSync(bundle, { recursive: true, force: true });
  return layout;
}

/**
 * Adds `newTag` to the layout: the image `tag` with its layers recompressed by zstd(1), and returns
 * the new manifest's descriptor.
 */
export function zstdVariant(layout: string, tag: string, newTag: string): { digest: string; size: number } {
  const blob = (digest: string) => path.join(layout, 'blobs', 'sha256', digest.slice('sha256:'.length));
  const put = (bytes: Buffer): { digest: string; size: number } => {
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    fs.writeFileSync(blob(digest), bytes);
    return { digest, size: bytes.length };
  };
  const index = JSON.parse(fs.readFileSync(path.join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string; annotations?: Record<string, string> }[] };
  const desc = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag)!;
  const manifest = JSON.parse(fs.readFileSync(blob(desc.digest), 'utf8')) as { layers: { mediaType: string; digest: string; size: number }[] };
  manifest.layers = manifest.layers.map((l) => {
    const tar = gunzipSync(fs.readFileSync(blob(l.digest)));
    const r = spawnSync('zstd', ['-q', '-c'], { input: tar, maxBuffer: 1 << 28 });
    if (r.status !== 0) throw new Error(`zstd failed: ${r.stderr.toString()}`);
    return { mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd', ...put(r.stdout) };
  });
  const added = put(Buffer.from(JSON.stringify(manifest)));
  index.manifests.push({ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...added, annotations: { 'org.opencontainers.image.ref.name': newTag } } as never);
  fs.writeFileSync(path.join(layout, 'index.json'), JSON.stringify(index));
  return added;
}

/** skopeo copy with plain http on both sides. */
export function skopeoCopy(src: string, dest: string, extra: string[] = []): void {
  sh('skopeo', ['copy', '--quiet', '--src-tls-verify=false', '--dest-tls-verify=false', ...extra, src, dest]);
}

/** umoci unpack of `layout:tag` into a bundle; returns the bundle's rootfs. */
export function umociUnpack(layout: string, tag: string, bundle: string): string {
  sh('umoci', ['unpack', '--image', `${layout}:${tag}`, bundle]);
  return path.join(bundle, 'rootfs');
}

export interface CraftedImage {
  layout: string;
  manifest: { digest: string; size: number };
  layers: { digest: string; size: number; diffId: string }[];
}

/**
 * An OCI layout at `layout` (tag v1) made by hand from uncompressed layer tars, for images no tool
 * would build. `tamper` may change the manifest and config before they are written.
 */
export function craftImage(
  layout: string,
  tars: Buffer[],
  tamper: { manifest?: (m: Record<string, unknown>) => void; config?: (c: Record<string, unknown>) => void; manifestType?: string } = {},
): CraftedImage {
  fs.mkdirSync(path.join(layout, 'blobs', 'sha256'), { recursive: true });
  fs.writeFileSync(path.join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const put = (bytes: Buffer): { digest: string; size: number } => {
    const hex = createHash('sha256').update(bytes).digest('hex');
    fs.writeFileSync(path.join(layout, 'blobs', 'sha256', hex), bytes);
    return { digest: `sha256:${hex}`, size: bytes.length };
  };
  const layers = tars.map((tar) => ({ ...put(gzipSync(tar)), diffId: `sha256:${createHash('sha256').update(tar).digest('hex')}` }));
  const config: Record<string, unknown> = { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) }, history: [] };
  tamper.config?.(config);
  const manifest: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...put(Buffer.from(JSON.stringify(config))) },
    layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: l.digest, size: l.size })),
  };
  tamper.manifest?.(manifest);
  const m = put(Buffer.from(JSON.stringify(manifest)));
  const index = { schemaVersion: 2, manifests: [{ mediaType: tamper.manifestType ?? 'application/vnd.oci.image.manifest.v1+json', ...m, annotations: { 'org.opencontainers.image.ref.name': 'v1' } }] };
  fs.writeFileSync(path.join(layout, 'index.json'), JSON.stringify(index));
  return { layout, manifest: m, layers };
}

/** A tree as lines, without directory times (a merged directory takes its upper-most layer's) or the root's. */
export function view(root: string): string[] {
  return snapshot(root, { dirTimes: false }).filter((l) => !l.startsWith('/ '));
}

/** A temp dir with a registry in it and the reference image pushed there as ref/image:v1. */
export async function registryWithReference(t: TestContext, name: string): Promise<{ dir: string; registry: Registry; layout: string; ref: string }> {
  const dir = scratch(t, name);
  const registry = await startRegistry(t, dir);
  const layout = buildReferenceImage(dir);
  const ref = `docker://${registry.host}/ref/image:v1`;
  skopeoCopy(`oci:${layout}:v1`, ref);
  return { dir, registry, layout, ref };
}
