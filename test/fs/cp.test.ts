// fs.cp, fs.cpSync and fs.promises.cp over the overlay: the refusals and errors of Node's own cp,
// each checked against node:fs on a host directory with the same tree.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fixture, type Tree } from '../support/fixture.js';

const TREE: Tree = { src: { a: { b: { f: 'x' } }, file: 'data', tool: { 'index.js': 'js', 'README.md': 'md' } }, dest: {} };

/** The same tree on the host, for Node's own answer; its paths keep the overlay's names below `root`. */
function hostTwin(t: { after(fn: () => void): void }): { fs: typeof fs; p(rel: string): string } {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ovlfs-cp-'));
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  const write = (dir: string, tree: Tree): void => {
    for (const [name, v] of Object.entries(tree)) {
      if (typeof v === 'string') fs.writeFileSync(path.join(dir, name), v);
      else {
        fs.mkdirSync(path.join(dir, name));
        write(path.join(dir, name), v as Tree);
      }
    }
  };
  write(root, TREE);
  return { fs, p: (rel) => path.join(root, rel) };
}

function codeOf(fn: () => void): string {
  try {
    fn();
    return 'OK';
  } catch (e) {
    return String((e as NodeJS.ErrnoException).code);
  }
}

test('cpSync refuses what Node refuses, with the same codes', (t) => {
  const ovl = fixture(t, [TREE]).fs;
  const host = hostTwin(t);
  const views = [{ fs: ovl, p: (rel: string) => rel }, host];
  const cases: Array<[string, (v: (typeof views)[number]) => void]> = [
    ['a directory into itself', (v) => v.fs.cpSync(v.p('/src'), v.p('/src/a/inside'), { recursive: true })],
    ['a directory without recursive', (v) => v.fs.cpSync(v.p('/src/a'), v.p('/dest/a'))],
    ['a directory over a file', (v) => v.fs.cpSync(v.p('/src/a'), v.p('/src/file'), { recursive: true })],
    ['a file over a directory', (v) => v.fs.cpSync(v.p('/src/file'), v.p('/src/a'))],
    ['a file onto itself', (v) => v.fs.cpSync(v.p('/src/file'), v.p('/src/file'))],
    ['into a symlinked parent that is src', (v) => {
      v.fs.symlinkSync(v.p('/src'), v.p('/dest/link'));
      v.fs.cpSync(v.p('/src'), v.p('/dest/link/c'), { recursive: true });
    }],
    ['a symlink in src over one in dest that points back into src', (v) => {
      v.fs.symlinkSync(v.p('/src/a/b'), v.p('/src/a/c'));
      v.fs.mkdirSync(v.p('/dest2/a'), { recursive: true });
      v.fs.symlinkSync(v.p('/src'), v.p('/dest2/a/c'));
      v.fs.cpSync(v.p('/src'), v.p('/dest2'), { recursive: true });
    }],
    ['a filter that returns a promise', (v) => v.fs.cpSync(v.p('/src'), v.p('/dest3'), { recursive: true, filter: (async () => true) as unknown as () => boolean })],
    ['an existing file with errorOnExist and no force', (v) => {
      v.fs.writeFileSync(v.p('/dest/file'), 'old');
      v.fs.cpSync(v.p('/src/file'), v.p('/dest/file'), { force: false, errorOnExist: true });
    }],
  ];
  for (const [what, run] of cases) {
    const [mine, node] = views.map((v) => codeOf(() => run(v)));
    assert.equal(mine, node, `${what}: ovlfs ${mine}, node:fs ${node}`);
    assert.notEqual(node, 'OK', `${what}: node:fs accepted it; the case tests nothing`);
  }
});

test('fs.cp and fs.promises.cp take an async filter and copy what it keeps', async (t) => {
  const f = fixture(t, [TREE]).fs;
  const keep = async (p: string): Promise<boolean> => {
    await new Promise((r) => setTimeout(r, 1));
    return f.statSync(p).isDirectory() || p.endsWith('.js');
  };
  await f.promises.cp('/src/tool', '/dest/p', { recursive: true, filter: keep });
  assert.deepEqual(f.readdirSync('/dest/p'), ['index.js']);
  await new Promise<void>((resolve, reject) => f.cp('/src/tool', '/dest/c', { recursive: true, filter: keep }, (err) => (err ? reject(err) : resolve())));
  assert.deepEqual(f.readdirSync('/dest/c'), ['index.js']);
  await assert.rejects(f.promises.cp('/src', '/src/a/x', { recursive: true }), { code: 'ERR_FS_CP_EINVAL' });
});
