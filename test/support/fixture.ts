// The one test fixture: an overlay over layers built from trees, of either layer kind.
//
// - 'memory': every layer a MemoryLayer, passed to openOverlay as objects. No host path, no privilege.
// - 'dir': every layer a real directory, opened by path through openOverlay, as users open it. The
//   on-disk format is the kernel's: trusted.overlay.* xattrs as root, user.overlay.* (userxattr)
//   otherwise, so the same tests run as any user.
//
// Behaviour tests register once per kind with `testEachKind` (or `forEachLayerKind`) and look at
// layers only through the layer contract (`f.entry`, `f.inspect`, `f.edit`, `f.behindBack`). Tests
// of the on-disk format ask for `{ kind: 'dir' }` and get host paths (`f.up`, `f.lowers`,
// `f.prefix`). Clean-up goes through `t.after`: `fixture(t, ...)` registers it.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test, type TestContext, type TestOptions } from 'node:test';
import { DirLayer } from '../../src/layer/dir-layer.js';
import { MemoryLayer } from '../../src/layer/memory-layer.js';
import type { Layer, LayerEntry, WritableLayer } from '../../src/layer/types.js';
import { openOverlay, type OverlayFs, type OverlayWithFs } from '../../src/index.js';
import type { OverlayOptions } from '../../src/overlay/options.js';

export const isRoot = process.getuid?.() === 0;

export type LayerKind = 'memory' | 'dir';
export const LAYER_KINDS: readonly LayerKind[] = ['memory', 'dir'];

/**
 * A tree to build a layer from: strings are files (mode 0644), objects directories (0755),
 * `{ symlink: target }` symlinks, `{ whiteout: true }` whiteouts in the layer's own format.
 */
export type Tree = { [name: string]: string | Tree | { symlink: string } | { whiteout: true } };

/** Builds `tree` at `dir` ('' for the root) of a layer, through the layer contract. */
export function buildTree(layer: WritableLayer, tree: Tree, dir = ''): void {
  for (const [name, value] of Object.entries(tree)) {
    const rel = dir === '' ? name : `${dir}/${name}`;
    if (typeof value === 'string') {
      const file = layer.create(rel, fs.constants.O_WRONLY, 0o644);
      const data = Buffer.from(value);
      if (data.length > 0) file.write(data, 0, data.length, 0);
      file.close();
    } else if ('symlink' in value && typeof value.symlink === 'string') {
      layer.symlink(value.symlink, rel);
    } else if ('whiteout' in value && value.whiteout === true) {
      layer.whiteout(rel);
    } else {
      layer.mkdir(rel, 0o755);
      buildTree(layer, value as Tree, rel);
    }
  }
}

/** The xattr prefix a DirLayer overlay with these options uses: user.overlay. unless root without userxattr. */
export function xattrPrefix(options: Partial<OverlayOptions> = {}): string {
  const u = options.userxattr;
  const userxattr = u === undefined ? !isRoot : u === true || u === 'on';
  return userxattr ? 'user.overlay.' : 'trusted.overlay.';
}

/** Writes `tree` into the host directory `dir` (made if missing), in the on-disk format of `prefix`. */
export function writeTree(dir: string, tree: Tree, prefix = xattrPrefix()): void {
  fs.mkdirSync(dir, { recursive: true });
  const layer = new DirLayer(dir, { xattrPrefix: prefix });
  try {
    buildTree(layer, tree);
  } finally {
    layer.close();
  }
}

interface FixtureBase {
  readonly kind: LayerKind;
  overlay: OverlayWithFs;
  /** The overlay's node:fs face. */
  fs: OverlayFs;
  /** What this fixture passes as lowerdir: paths ('dir') or layer objects ('memory'), top-most first. */
  readonly lowerdir: Array<string | Layer>;
  /** Closes the overlay and opens it again over the same layers; `extra` adds to the fixture's options. */
  reopen(extra?: Partial<OverlayOptions>): void;
  /** What a layer holds at rel, through the layer contract: a lower by index, or 'upper'. */
  entry(which: number | 'upper', rel: string): LayerEntry | undefined;
  /** Reads a layer through the layer contract, e.g. `f.inspect('upper', (l) => l.readdir('d'))`. */
  inspect<T>(which: number | 'upper', read: (layer: Layer) => T): T;
  /** Changes a layer through the layer contract, then reopens the overlay so that it reads the change. */
  edit(which: number | 'upper', change: (layer: WritableLayer) => void): void;
  /** Changes a layer under the live overlay, as another writer would (undefined behaviour, as in the kernel). */
  behindBack(which: number | 'upper', change: (layer: WritableLayer) => void): void;
  /** Closes the overlay and removes the layers; `fixture()` does it in t.after. */
  cleanup(): void;
}

export interface MemoryFixture extends FixtureBase {
  readonly kind: 'memory';
}

export interface DirFixture extends FixtureBase {
  readonly kind: 'dir';
  readonly base: string;
  readonly lowers: string[];
  readonly upper: string;
  readonly work: string;
  /** The overlay xattr prefix on disk: 'trusted.overlay.' or 'user.overlay.'. */
  readonly prefix: string;
  /** Host path inside the upper layer. */
  up(rel: string): string;
  /** Names in the work area other than whiteout devices: what a failed or finished operation left behind. */
  workLeftovers(): string[];
}

export type Fixture = MemoryFixture | DirFixture;

export interface FixtureSetup<K extends LayerKind = LayerKind> {
  /** 'dir' unless given. */
  kind?: K;
  /** The upper layer's tree (empty unless given). */
  upper?: Tree;
}

export function makeFixture(lowerTrees: Tree[], options?: Partial<OverlayOptions>, setup?: FixtureSetup<'dir'>): DirFixture;
export function makeFixture(lowerTrees: Tree[], options: Partial<OverlayOptions>, setup: FixtureSetup<'memory'>): MemoryFixture;
export function makeFixture(lowerTrees: Tree[], options?: Partial<OverlayOptions>, setup?: FixtureSetup): Fixture;
export function makeFixture(lowerTrees: Tree[], options: Partial<OverlayOptions> = {}, setup: FixtureSetup = {}): Fixture {
  // An upper tree passed where the setup goes would otherwise build an empty upper layer, silently.
  const unknown = Object.keys(setup).filter((k) => k !== 'kind' && k !== 'upper');
  if (unknown.length > 0) throw new TypeError(`makeFixture: unknown setup keys ${unknown.join(', ')} (an upper tree goes in { upper })`);
  return setup.kind === 'memory' ? memoryFixture(lowerTrees, options, setup.upper ?? {}) : dirFixture(lowerTrees, options, setup.upper ?? {});
}

/** makeFixture, with its clean-up registered on `t`. */
export function fixture(t: TestContext, lowerTrees: Tree[], options?: Partial<OverlayOptions>, setup?: FixtureSetup<'dir'>): DirFixture;
export function fixture(t: TestContext, lowerTrees: Tree[], options: Partial<OverlayOptions>, setup: FixtureSetup<'memory'>): MemoryFixture;
export function fixture(t: TestContext, lowerTrees: Tree[], options?: Partial<OverlayOptions>, setup?: FixtureSetup): Fixture;
export function fixture(t: TestContext, lowerTrees: Tree[], options: Partial<OverlayOptions> = {}, setup: FixtureSetup = {}): Fixture {
  const f = makeFixture(lowerTrees, options, setup);
  t.after(() => f.cleanup());
  return f;
}

function memoryFixture(lowerTrees: Tree[], options: Partial<OverlayOptions>, upperTree: Tree): MemoryFixture {
  const lowers = lowerTrees.map((tree, i) => {
    const layer = new MemoryLayer({ name: `lower${i}` });
    buildTree(layer, tree);
    return layer;
  });
  const upper = new MemoryLayer({ name: 'upper' });
  buildTree(upper, upperTree);
  const open = (extra: Partial<OverlayOptions>): OverlayWithFs =>
    openOverlay({ ...options, ...extra, lowerdir: lowers, upperdir: upper, workdir: undefined });
  const layer = (which: number | 'upper'): MemoryLayer => (which === 'upper' ? upper : lowers[which]!);
  const f: MemoryFixture = {
    kind: 'memory',
    overlay: open({}),
    get fs() { return f.overlay.fs; },
    lowerdir: lowers,
    reopen(extra = {}) {
      f.overlay.close();
      f.overlay = open(extra);
    },
    entry: (which, rel) => layer(which).lookup(rel),
    inspect: (which, read) => read(layer(which)),
    edit(which, change) {
      change(layer(which));
      f.reopen();
    },
    behindBack: (which, change) => change(layer(which)),
    cleanup() {
      f.overlay.close();
      for (const l of [...lowers, upper]) l.close();
    },
  };
  return f;
}

function dirFixture(lowerTrees: Tree[], options: Partial<OverlayOptions>, upperTree: Tree): DirFixture {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'ovlfs-test-'));
  const prefix = xattrPrefix(options);
  const lowers = lowerTrees.map((tree, i) => {
    const dir = path.join(base, `lower${i}`);
    writeTree(dir, tree, prefix);
    return dir;
  });
  const upper = path.join(base, 'upper');
  const work = path.join(base, 'work');
  writeTree(upper, upperTree, prefix);
  fs.mkdirSync(work);
  const open = (extra: Partial<OverlayOptions>): OverlayWithFs =>
    openOverlay({ ...options, ...extra, lowerdir: lowers, upperdir: upper, workdir: work });
  /** A fresh DirLayer on one of the fixture's directories, for a look or a change behind the overlay's back. */
  const withLayer = <T>(which: number | 'upper', use: (layer: DirLayer) => T): T => {
    const layer = new DirLayer(which === 'upper' ? upper : lowers[which]!, { xattrPrefix: prefix });
    try {
      return use(layer);
    } finally {
      layer.close();
    }
  };
  const f: DirFixture = {
    kind: 'dir',
    base, lowers, upper, work, prefix,
    overlay: open({}),
    get fs() { return f.overlay.fs; },
    lowerdir: lowers,
    reopen(extra = {}) {
      f.overlay.close();
      f.overlay = open(extra);
    },
    entry: (which, rel) => withLayer(which, (layer) => layer.lookup(rel)),
    inspect: (which, read) => withLayer(which, read),
    edit(which, change) {
      f.overlay.close();
      withLayer(which, change);
      f.overlay = open({});
    },
    behindBack: (which, change) => withLayer(which, change),
    up: (rel) => path.join(upper, rel),
    workLeftovers() {
      const dir = path.join(work, 'work');
      return fs.readdirSync(dir).filter((n) => !isWhiteout(path.join(dir, n)));
    },
    cleanup() {
      f.overlay.close();
      fs.rmSync(base, { recursive: true, force: true });
    },
  };
  return f;
}

/** The kernel's whiteout on disk: a 0/0 character device. */
export function isWhiteout(hostPath: string): boolean {
  const st = fs.lstatSync(hostPath, { throwIfNoEntry: false });
  return st !== undefined && st.isCharacterDevice() && st.rdev === 0;
}

/** Registers tests once per layer kind; `register` names them with `label` (e.g. ' [memory]'). */
export function forEachLayerKind(register: (kind: LayerKind, label: string) => void): void {
  for (const kind of LAYER_KINDS) register(kind, ` [${kind}]`);
}

type KindOptions = TestOptions | ((kind: LayerKind) => TestOptions);
type KindBody = (t: TestContext, kind: LayerKind) => void | Promise<void>;

/** `test(name, fn)` once per layer kind, as 'name [memory]' and 'name [dir]'. Options may depend on the kind. */
export function testEachKind(name: string, body: KindBody): void;
export function testEachKind(name: string, options: KindOptions, body: KindBody): void;
export function testEachKind(name: string, a: KindOptions | KindBody, b?: KindBody): void {
  const body = (b ?? a) as KindBody;
  const options = b === undefined ? {} : (a as KindOptions);
  forEachLayerKind((kind, label) => {
    test(`${name}${label}`, typeof options === 'function' ? options(kind) : options, (t) => body(t, kind));
  });
}

// --- the fs facade's tests (test/fs): one lower directory, one upper, through openOverlay ---

export interface FsFixture {
  fs: OverlayFs;
  /** The lower layer's directory. */
  lower: string;
  /** The upper layer's directory. */
  upper: string;
  close(): void;
}

export function makeOverlayFs(lowerTree: Tree, upperTree: Tree = {}): FsFixture {
  const f = makeFixture([lowerTree], {}, { kind: 'dir', upper: upperTree });
  return { fs: f.fs, lower: f.lowers[0]!, upper: f.upper, close: () => f.cleanup() };
}

/** Node's callback convention as a promise of the results after err. */
export function cb<T extends unknown[]>(fn: (done: (err: NodeJS.ErrnoException | null, ...results: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => fn((err, ...results) => (err ? reject(err) : resolve(results))));
}
