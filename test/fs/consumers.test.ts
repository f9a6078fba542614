// Real consumers of overlay.fs: isomorphic-git and fast-glob take a custom fs and must just work.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import fg from 'fast-glob';
import git from 'isomorphic-git';
import { makeFixture } from '../support/fixture.js';

test('isomorphic-git: init, add, commit and status on the merged view', async () => {
  const f = makeFixture([{ project: { 'README.md': '# hi\n', src: { 'a.ts': 'export const a = 1;\n', 'b.ts': 'export const b = 2;\n' } } }]);
  try {
    const dir = '/project';
    const author = { name: 'ovlfs', email: 'ovlfs@example.invalid' };
    await git.init({ fs: f.fs, dir, defaultBranch: 'main' });
    await git.add({ fs: f.fs, dir, filepath: '.' });
    const oid = await git.commit({ fs: f.fs, dir, message: 'first', author });
    assert.match(oid, /^[0-9a-f]{40}$/);
    assert.equal(await git.status({ fs: f.fs, dir, filepath: 'src/a.ts' }), 'unmodified');
    f.fs.writeFileSync('/project/src/a.ts', 'export const a = 42;\n');
    assert.equal(await git.status({ fs: f.fs, dir, filepath: 'src/a.ts' }), '*modified');
    f.fs.unlinkSync('/project/src/b.ts');
    assert.equal(await git.status({ fs: f.fs, dir, filepath: 'src/b.ts' }), '*deleted');
    const log = await git.log({ fs: f.fs, dir });
    assert.equal(log[0].commit.message, 'first\n');
    // The lower layer is untouched; .git and the changes live in the upper layer.
    assert.equal(fs.existsSync(`${f.lowers[0]}/project/.git`), false);
    assert.ok(fs.existsSync(f.up('project/.git/HEAD')));
    assert.equal(fs.readFileSync(`${f.lowers[0]}/project/src/a.ts`, 'utf8'), 'export const a = 1;\n');
  } finally {
    f.cleanup();
  }
});

test('fast-glob: patterns over merged layers, whiteouts hidden', async () => {
  const f = makeFixture([
    { src: { 'a.ts': '', 'b.js': '', deep: { 'c.ts': '' } } },
    { src: { 'd.ts': '', 'e.md': '' }, docs: { 'x.md': '' } },
  ]);
  try {
    f.fs.unlinkSync('/src/d.ts');
    f.fs.writeFileSync('/src/deep/new.ts', '');
    const found = await fg('**/*.ts', { cwd: '/', fs: f.fs as unknown as fg.FileSystemAdapter });
    assert.deepEqual(found.sort(), ['src/a.ts', 'src/deep/c.ts', 'src/deep/new.ts']);
    const md = fg.sync('**/*.md', { cwd: '/', fs: f.fs as unknown as fg.FileSystemAdapter, stats: true });
    assert.deepEqual(md.map((e) => e.path).sort(), ['docs/x.md', 'src/e.md']);
  } finally {
    f.cleanup();
  }
});
