// Node's own fs tests for the running major version, taken from Debian's nodejs source package at
// test time: a private deb-src list (one file in the caller's directory, never the system's),
// `apt-get update` into private state, `apt-get source --download-only`, then only the parts the
// tests need unpacked from the upstream tarball (test/parallel/test-fs-*, test/common,
// test/fixtures). Nothing is copied into this repository.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface NodeTests {
  /** The unpacked upstream tree: root/test/parallel/test-fs-*.js. */
  root: string;
  version: string;
}

/** Debian suites to search, newest last; the system's own suites come first. */
function suites(): string[] {
  const found = new Set<string>();
  for (const file of ['/etc/apt/sources.list', ...listDir('/etc/apt/sources.list.d').map((f) => path.join('/etc/apt/sources.list.d', f))]) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    if (!text.includes('deb.debian.org/debian') && !text.includes('debian.org/debian ')) continue;
    for (const m of text.matchAll(/^Suites:\s*(.+)$/gm)) for (const s of m[1].split(/\s+/)) if (/^[a-z]+$/.test(s)) found.add(s);
    for (const m of text.matchAll(/^deb\s+\S+\s+([a-z]+)\s/gm)) found.add(m[1]);
  }
  // A stable release often carries an older Node than the one running; its successors carry newer.
  for (const s of ['bookworm', 'trixie', 'forky', 'sid']) found.add(s);
  return [...found];
}

function listDir(dir: string): string[] {
  try {
    return fs.readdirSync(dir).filter((f) => f.endsWith('.list') || f.endsWith('.sources'));
  } catch {
    return [];
  }
}

function run(cmd: string, args: string[], cwd: string): { ok: boolean; out: string } {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: 300_000 });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}` };
}

/**
 * Fetches and unpacks Node's tests into `dir`, or says why it cannot (not root, no apt-get, no
 * network, no source package for this major version).
 */
export function fetchNodeTests(dir: string): NodeTests | { skip: string } {
  if (process.getuid?.() !== 0) return { skip: 'apt-get source needs root to update a private package list' };
  if (spawnSync('apt-get', ['--version']).status !== 0) return { skip: 'apt-get is not available' };
  const major = process.versions.node.split('.')[0];
  const parts = path.join(dir, 'apt', 'sources.list.d');
  fs.mkdirSync(path.join(dir, 'apt', 'lists', 'partial'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'apt', 'cache', 'archives', 'partial'), { recursive: true });
  fs.mkdirSync(parts, { recursive: true });
  fs.writeFileSync(path.join(dir, 'apt', 'empty.list'), '');
  fs.writeFileSync(path.join(parts, 'node-suite.sources'), [
    'Types: deb-src',
    'URIs: http://deb.debian.org/debian',
    `Suites: ${suites().join(' ')}`,
    'Components: main',
    'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg',
    '',
  ].join('\n'));
  const apt = [
    '-o', `Dir::Etc::SourceList=${path.join(dir, 'apt', 'empty.list')}`,
    '-o', `Dir::Etc::SourceParts=${parts}`,
    '-o', `Dir::State::Lists=${path.join(dir, 'apt', 'lists')}`,
    '-o', `Dir::Cache=${path.join(dir, 'apt', 'cache')}`,
  ];
  const update = run('apt-get', [...apt, 'update'], dir);
  if (!update.ok || /^(E|Err):/m.test(update.out) && !/^Get:/m.test(update.out)) {
    return { skip: `apt-get update failed (no network?): ${update.out.trim().split('\n').slice(-2).join(' | ')}` };
  }
  const show = run('apt-cache', [...apt, 'showsrc', 'nodejs'], dir);
  const versions = [...show.out.matchAll(/^Version:\s*(\S+)$/gm)].map((m) => m[1]).filter((v) => v.split('.')[0] === major);
  if (versions.length === 0) return { skip: `no Debian nodejs source package for Node ${major} in: ${suites().join(', ')}` };
  const version = versions.sort(compareDebian).at(-1)!;
  const dl = path.join(dir, 'src');
  fs.mkdirSync(dl, { recursive: true });
  // --download-only: only the upstream tarball is needed, and a mirror that lacks the .dsc of a
  // security update still has the tarball; the result is judged by the tarball, not the exit code.
  const get = run('apt-get', [...apt, 'source', '--download-only', `nodejs=${version}`], dl);
  const upstream = fs.readdirSync(dl).find((f) => /^nodejs_[^-]+\.orig\.tar\.(xz|gz)$/.test(f));
  if (upstream === undefined) return { skip: `apt-get source nodejs=${version} failed: ${get.out.trim().split('\n').slice(-2).join(' | ')}` };
  const tar = run('tar', ['-xf', upstream, '--wildcards', '*/test/parallel/test-fs-*', '*/test/common/*', '*/test/fixtures/*'], dl);
  if (!tar.ok) return { skip: `could not unpack ${upstream}: ${tar.out.trim()}` };
  const top = fs.readdirSync(dl).find((f) => fs.statSync(path.join(dl, f)).isDirectory() && fs.existsSync(path.join(dl, f, 'test', 'parallel')));
  if (top === undefined) return { skip: `${upstream} holds no test/parallel` };
  return { root: path.join(dl, top), version };
}

function compareDebian(a: string, b: string): number {
  return spawnSync('dpkg', ['--compare-versions', a, 'lt', b]).status === 0 ? -1 : a === b ? 0 : 1;
}
