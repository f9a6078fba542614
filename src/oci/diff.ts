// An upper layer's changes as `podman diff` lists them: A added, C changed, D deleted, one line
// per path, in byte order. A name the lowers have too is changed, not added; the directories that
// lead to a change are changed (or added) themselves; an opaque directory over a lower one deletes
// the lower children it does not hold; a renamed directory is added under its new name and
// deleted under its old one.
import { compareBytes } from './names.js';
import { UpperChanges } from './upper-changes.js';

export interface Change { kind: 'A' | 'C' | 'D'; path: string }

/** The upper layer's changes in `podman diff` form, sorted by path. */
export function diffUpper(upperDir: string, options: { lowerdirs?: string[]; xattrPrefix: string }): Change[] {
  const changes = new UpperChanges(upperDir, options);
  const kinds = new Map<string, Change['kind']>();
  try {
    for (const change of changes.walk()) {
      switch (change.kind) {
        case 'whiteout':
          kinds.set(change.rel, 'D');
          break;
        case 'entry':
          kinds.set(change.rel, change.lowerType !== undefined ? 'C' : 'A');
          break;
        case 'opaque':
          for (const name of changes.lowerNames(change.rel)) {
            if (!change.present.has(name)) kinds.set(`${change.rel}/${name}`, 'D');
          }
          break;
      }
    }
    // Every directory on the way to a change is listed: as added when the lowers lack it.
    for (const rel of [...kinds.keys()]) {
      for (let slash = rel.lastIndexOf('/'); slash > 0; slash = rel.lastIndexOf('/', slash - 1)) {
        const dir = rel.slice(0, slash);
        if (kinds.has(dir)) break;
        kinds.set(dir, !changes.hasLowers || changes.lowerType(dir) === undefined ? 'A' : 'C');
      }
    }
  } finally {
    changes.close();
  }
  return [...kinds]
    .map(([rel, kind]) => ({ kind, path: `/${rel}` }))
    .sort((a, b) => compareBytes(a.path, b.path));
}
