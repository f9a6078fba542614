// fs.watch over the merged view: changes through the overlay and changes made to a layer directly
// are reported under merged names; a name that a higher layer hides reports nothing; watchers close
// with the overlay; recursive watching reports paths relative to the root, as Node 20 does on Linux.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import * as nodeFs from 'node:fs';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { makeOverlayFs, type FsFixture } from '../support/fixture.js';

let fx: FsFixture;
beforeEach(() => {
  fx = makeOverlayFs({ dir: { 'low.txt': 'lower', 'hidden.txt': 'lower' } }, { dir: { 'hidden.txt': 'upper' } });
});
afterEach(() => fx.close());

type Watcher = nodeFs.FSWatcher;

function events(w: Watcher): Array<[string, string]> {
  const seen: Array<[string, string]> = [];
  w.on('change', (event: string, name: string | Buffer) => seen.push([event, String(name)]));
  return seen;
}

const settle = (ms = 300): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function until(check: () => boolean, ms = 3000): Promise<void> {
  for (const start = Date.now(); !check(); ) {
    if (Date.now() - start > ms) throw new Error('timed out waiting for an event');
    await settle(20);
  }
}

describe('fs.watch on the merged view', () => {
  it('reports changes made through the overlay: rename for new names, change for data', async () => {
    const w = fx.fs.watch('/dir');
    const seen = events(w);
    try {
      fx.fs.writeFileSync('/dir/new.txt', 'n');
      await until(() => seen.some(([e, n]) => e === 'rename' && n === 'new.txt'));
      fx.fs.appendFileSync('/dir/low.txt', '!');
      await until(() => seen.some(([e, n]) => e === 'change' && n === 'low.txt'));
      fx.fs.unlinkSync('/dir/new.txt');
      await until(() => seen.filter(([e, n]) => e === 'rename' && n === 'new.txt').length >= 2);
    } finally {
      w.close();
    }
  });

  it('reports a change made to a lower layer directly, under the merged name', async () => {
    const w = fx.fs.watch('/dir');
    const seen = events(w);
    try {
      nodeFs.writeFileSync(path.join(fx.lower, 'dir', 'fresh.txt'), 'from below');
      await until(() => seen.some(([, n]) => n === 'fresh.txt'));
      assert.equal(fx.fs.readFileSync('/dir/fresh.txt', 'utf8'), 'from below');
    } finally {
      w.close();
    }
  });

  it('reports nothing for a lower name hidden by the upper layer or by a whiteout', async () => {
    fx.fs.unlinkSync('/dir/low.txt');
    const w = fx.fs.watch('/dir');
    const seen = events(w);
    try {
      nodeFs.appendFileSync(path.join(fx.lower, 'dir', 'hidden.txt'), ' changed');
      nodeFs.appendFileSync(path.join(fx.lower, 'dir', 'low.txt'), ' changed');
      await settle(400);
      assert.equal(seen.length, 0, JSON.stringify(seen));
      // The watcher itself works: a visible change still arrives.
      nodeFs.writeFileSync(path.join(fx.lower, 'dir', 'visible.txt'), 'v');
      await until(() => seen.some(([, n]) => n === 'visible.txt'));
      assert.ok(seen.every(([, n]) => n === 'visible.txt'), JSON.stringify(seen));
    } finally {
      w.close();
    }
  });

  it('watches one file and names it by its basename', async () => {
    const w = fx.fs.watch('/dir/low.txt');
    const seen = events(w);
    try {
      fx.fs.writeFileSync('/dir/low.txt', 'rewritten');
      await until(() => seen.some(([e, n]) => e === 'change' && n === 'low.txt'));
    } finally {
      w.close();
    }
  });

  it('throws ENOENT with syscall watch for a missing path', () => {
    assert.throws(() => fx.fs.watch('/nope'), { code: 'ENOENT', syscall: 'watch' });
  });

  it('closes every watcher when the overlay closes', async () => {
    const w = fx.fs.watch('/dir');
    const closed = once(w, 'close');
    const polled = fx.fs.watchFile('/dir/low.txt', { interval: 10 }, () => {});
    const stopped = once(polled, 'stop');
    fx.close();
    await closed;
    await stopped;
    // afterEach closes again; a second close of the fixture must not fail.
    fx = makeOverlayFs({});
  });

  it('recursive: reports paths relative to the root', async () => {
    const w = fx.fs.watch('/dir', { recursive: true });
    const seen = events(w);
    try {
      fx.fs.mkdirSync('/dir/sub');
      await until(() => seen.some(([, n]) => n === 'sub'));
      // Node's recursive watcher picks a new directory up on its next event.
      await settle(50);
      fx.fs.writeFileSync('/dir/sub/deep.txt', 'd');
      await until(() => seen.some(([, n]) => n === path.join('sub', 'deep.txt')));
    } finally {
      w.close();
    }
  });

  it('promises.watch yields events and ends on abort', async () => {
    const ac = new AbortController();
    const iter = fx.fs.promises.watch('/dir', { signal: ac.signal }) as AsyncIterable<{ eventType: string; filename: string | null }>;
    setTimeout(() => fx.fs.writeFileSync('/dir/p.txt', 'p'), 50);
    await assert.rejects(async () => {
      for await (const e of iter) {
        assert.equal(e.filename, 'p.txt');
        ac.abort();
      }
    }, { name: 'AbortError' });
  });
});
