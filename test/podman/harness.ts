// A podman/buildah sandbox for tests: ovlfs built into the test's temp dir and named as containers/storage's
// mount_program, a storage.conf and containers.conf of the test's own (graphroot, runroot, cgroupfs, runc,
// file events, no network, lowered rlimits), and a tiny image imported from busybox-static. Nothing
// outside the temp dir is configured or written. Every mount_program call is logged with its arguments.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { stopSpares } from '../support/spares.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Why podman tests cannot run here, or undefined. */
export function podmanSkipReason(): string | undefined {
  if (process.platform !== 'linux') return 'podman needs Linux';
  if (process.getuid?.() !== 0) return 'the podman tests need root (they also create a rootless test user)';
  if (!existsSync('/dev/fuse')) return 'no /dev/fuse';
  for (const p of ['podman', 'buildah', 'runc', 'busybox']) {
    if (spawnSync('sh', ['-c', `command -v ${p}`]).status !== 0) return `${p} is not installed (apt-get install podman buildah runc busybox-static)`;
  }
  if (!/static/.test(spawnSync('file', ['-L', which('busybox')], { encoding: 'utf8' }).stdout ?? 'static')) return 'busybox is not busybox-static';
  return undefined;
}

export function which(p: string): string {
  return spawnSync('sh', ['-c', `command -v ${p}`], { encoding: 'utf8' }).stdout.trim();
}

export { buildOvlfs } from '../support/build-ovlfs.js';

export interface Sandbox {
  dir: string;
  /** Runs podman with this sandbox's configuration. */
  podman(args: string[], opts?: RunOpts): Run;
  buildah(args: string[], opts?: RunOpts): Run;
  /** Every mount_program invocation so far, one argv per line. */
  calls(): string[];
  env: NodeJS.ProcessEnv;
  storageConf: string;
}

interface RunOpts {
  timeout?: number;
  input?: string;
  cwd?: string;
}

export interface SandboxOptions {
  /** The mount_program; a wrapper that logs its arguments is put in front of it. */
  mountProgram: string;
  /** storage.conf's mountopt. */
  mountopt?: string;
  /** Run as this user (rootless); its home holds the sandbox. */
  user?: { uid: number; gid: number; name: string };
  /** Extra environment (XDG_RUNTIME_DIR for rootless). */
  env?: NodeJS.ProcessEnv;
}

export function makeSandbox(dir: string, o: SandboxOptions): Sandbox {
  mkdirSync(dir, { recursive: true });
  const log = join(dir, 'mount-program.log');
  const wrapper = join(dir, 'mount-program');
  // The wrapper keeps containers/storage's exact argv in the log, then becomes the real program.
  writeFileSync(wrapper, `#!/bin/sh\nprintf '%s\\n' "$*" >> ${log}\nexec ${o.mountProgram} "$@"\n`);
  chmodSync(wrapper, 0o755);
  const storageConf = join(dir, 'storage.conf');
  writeFileSync(
    storageConf,
    `[storage]
driver = "overlay"
graphroot = "${dir}/graph"
runroot = "${dir}/run"

[storage.options.overlay]
mount_program = "${wrapper}"
mountopt = "${o.mountopt ?? 'nodev'}"
`,
  );
  const containersConf = join(dir, 'containers.conf');
  writeFileSync(
    containersConf,
    `[containers]
netns = "none"
# podman raises RLIMIT_NOFILE and RLIMIT_NPROC for its containers, which needs CAP_SYS_RESOURCE
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
log_driver = "k8s-file"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "${dir}/events.log"
runtime = "runc"
tmp_dir = "${dir}/libpod-tmp"
static_dir = "${dir}/graph/libpod"
volume_path = "${dir}/graph/volumes"
`,
  );
  writeFileSync(join(dir, 'registries.conf'), 'unqualified-search-registries = []\n');
  writeFileSync(join(dir, 'policy.json'), '{"default":[{"type":"insecureAcceptAnything"}]}\n');
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: dir,
    // ovlfs's spare daemons wait here, not in /run (unmountAll stops them).
    OVLFS_SPARE_DIR: join(dir, 'spares'),
    CONTAINERS_CONF: containersConf,
    CONTAINERS_STORAGE_CONF: storageConf,
    CONTAINERS_REGISTRIES_CONF: join(dir, 'registries.conf'),
    BUILDAH_ISOLATION: 'chroot',
    ...o.env,
  };
  if (o.user) spawnSync('chown', ['-R', `${o.user.uid}:${o.user.gid}`, dir]);
  // No --root/--runroot: podman then drops storage.conf's driver options, mount_program among them.
  const run = (cmd: string, args: string[], ro: RunOpts = {}): Run => {
    const r = spawnSync(cmd, args, {
      encoding: 'utf8',
      timeout: ro.timeout ?? 120_000,
      input: ro.input,
      cwd: ro.cwd ?? dir,
      env,
      uid: o.user?.uid,
      gid: o.user?.gid,
    });
    return { status: r.status, stdout: r.stdout ?? '', stderr: (r.stderr ?? '') + (r.error ? `\n${r.error.message}` : '') };
  };
  return {
    dir,
    env,
    storageConf,
    podman: (args, ro) => run('podman', args, ro),
    buildah: (args, ro) => run('buildah', args, ro),
    calls: () => (existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter((l) => l !== '') : []),
  };
}

/** A root filesystem tar with busybox-static and its applets, and a few files to delete and replace. */
export function makeImageTar(dir: string): string {
  const root = join(dir, 'rootfs');
  for (const d of ['bin', 'etc', 'tmp', 'data', 'dir1', 'dir1/sub', 'proc', 'sys', 'dev', 'root']) mkdirSync(join(root, d), { recursive: true });
  chmodSync(join(root, 'tmp'), 0o1777);
  copyFileSync(which('busybox'), join(root, 'bin/busybox'));
  chmodSync(join(root, 'bin/busybox'), 0o755);
  for (const applet of ['sh', 'ls', 'cat', 'echo', 'rm', 'mkdir', 'id', 'stat', 'sleep', 'true', 'touch', 'chown', 'dd', 'cp', 'mv', 'find', 'test', 'wc', 'head', 'sync', 'rmdir', 'ln', 'sha256sum', 'seq']) {
    symlinkSync('busybox', join(root, 'bin', applet));
  }
  writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\nuser:x:1000:1000:user:/:/bin/sh\n');
  writeFileSync(join(root, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\nuser:x:1000:\n');
  writeFileSync(join(root, 'data/keep'), 'keep\n');
  writeFileSync(join(root, 'data/gone'), 'gone\n');
  writeFileSync(join(root, 'dir1/a'), 'a\n');
  writeFileSync(join(root, 'dir1/sub/b'), 'b\n');
  // A 1 MiB binary for the workload benchmark.
  writeFileSync(join(root, 'data/blob'), Buffer.alloc(1 << 20, 7));
  const tar = join(dir, 'rootfs.tar');
  const r = spawnSync('tar', ['--numeric-owner', '--owner=0', '--group=0', '-C', root, '-cf', tar, '.'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tar failed: ${r.stderr}`);
  rmSync(root, { recursive: true, force: true });
  return tar;
}

/**
 * A docker-archive of an image with `n` layers on top of `baseTar` (each adds /layers/fI), for
 * `podman load`: building it with n COPY steps would take minutes, loading it takes seconds.
 */
export function makeDeepImageArchive(dir: string, baseTar: string, n: number, tag: string): string {
  const work = join(dir, 'deep');
  mkdirSync(work, { recursive: true });
  const layers = ['base.tar'];
  copyFileSync(baseTar, join(work, 'base.tar'));
  for (let i = 0; i < n; i++) {
    const content = join(work, `c${i}`);
    mkdirSync(join(content, 'layers'), { recursive: true });
    writeFileSync(join(content, 'layers', `f${i}`), `${i}\n`);
    const r = spawnSync('tar', ['--numeric-owner', '--owner=0', '--group=0', '-C', content, '-cf', join(work, `${i}.tar`), 'layers'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`tar failed: ${r.stderr}`);
    rmSync(content, { recursive: true, force: true });
    layers.push(`${i}.tar`);
  }
  const diffIds = layers.map((l) => `sha256:${createHash('sha256').update(readFileSync(join(work, l))).digest('hex')}`);
  writeFileSync(join(work, 'config.json'), JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['sh'] }, rootfs: { type: 'layers', diff_ids: diffIds } }));
  writeFileSync(join(work, 'manifest.json'), JSON.stringify([{ Config: 'config.json', RepoTags: [tag], Layers: layers }]));
  const archive = join(dir, 'deep.tar');
  const r = spawnSync('tar', ['-C', work, '-cf', archive, '.'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tar failed: ${r.stderr}`);
  rmSync(work, { recursive: true, force: true });
  return archive;
}

/** FUSE and overlay mounts left under `dir` (deepest first), from /proc/self/mountinfo. */
export function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .map((p) => p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((p) => p.startsWith(dir + '/'))
    .sort((a, b) => b.length - a.length);
}

/**
 * Unmounts whatever is left under `dir`, lazily, then stops the spare daemons whose spare directory is
 * under it (a daemon whose mount ended waits there for the next one: src/cli/spare.ts).
 */
export function unmountAll(dir: string): void {
  for (const m of mountsUnder(dir)) spawnSync('umount', ['-l', m]);
  stopSpares(dir);
}

export function listDir(p: string): string[] {
  return existsSync(p) ? readdirSync(p) : [];
}
