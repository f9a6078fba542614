// uid/gid shifting between the layers and the mount, as fuse-overlayfs does it (its uidmapping=,
// gidmapping=, squash_to_uid=, squash_to_gid= and squash_to_root options; find_mapping in its main.c).
//
// containers/storage writes a mapping as ContainerID:HostID:Size triplets joined by ':' (with a leading ':',
// "uidmapping=:0:100000:65536"), several for --userns=keep-id. The layers hold container ids; the mount
// shows host ids, so that a process in the container's user namespace sees its own ids again:
//   shown   (attributes the mount reports)        container id in [c, c+n) -> h + (id - c)
//   stored  (owner of what the mount creates,     host id in [h, h+n)       -> c + (id - h)
//            and of a chown through it)
// An id that no range covers becomes the overflow id (65534), as in the kernel. Squashing replaces every
// shown id; what is stored is still the caller's id mapped back, and a chown that the host refuses is
// not an error when squashing.

export interface IdRange {
  /** The first id in the layers (containers/storage's ContainerID). */
  layer: number;
  /** The first id on the mount (containers/storage's HostID). */
  mount: number;
  count: number;
}

export interface IdMap {
  uid: IdRange[];
  gid: IdRange[];
  /** squash_to_uid= (squash_to_root: 0): the uid every file shows. */
  squashUid?: number | undefined;
  /** squash_to_gid= (squash_to_root: 0): the gid every file shows. */
  squashGid?: number | undefined;
}

/** The kernel's overflowuid/overflowgid: what an unmapped id shows as. */
export const OVERFLOW_ID = 65534;

/** Parses "[:]C:H:N[:C:H:N…]" (empty fields skipped, as fuse-overlayfs's strtok does). */
export function parseIdMapping(text: string, what = 'mapping'): IdRange[] {
  const fields = text.split(':').filter((f) => f !== '');
  if (fields.length === 0 || fields.length % 3 !== 0 || !fields.every((f) => /^\d+$/.test(f))) {
    throw new Error(`invalid ${what} '${text}': expected CONTAINER_ID:HOST_ID:SIZE triplets joined by ':'`);
  }
  const out: IdRange[] = [];
  for (let i = 0; i < fields.length; i += 3) {
    const [layer, mount, count] = [Number(fields[i]), Number(fields[i + 1]), Number(fields[i + 2])];
    if (layer + count > 2 ** 32 || mount + count > 2 ** 32) throw new Error(`invalid ${what} '${text}': a range passes 2^32`);
    out.push({ layer, mount, count });
  }
  return out;
}

function map(ranges: IdRange[], id: number, toMount: boolean): number {
  if (ranges.length === 0) return id;
  for (const r of ranges) {
    const from = toMount ? r.layer : r.mount;
    if (id >= from && id < from + r.count) return (toMount ? r.mount : r.layer) + (id - from);
  }
  return OVERFLOW_ID;
}

/** The ids a file stored with `uid`/`gid` in a layer shows on the mount. */
export function shownIds(m: IdMap, uid: number, gid: number): [number, number] {
  return [m.squashUid ?? map(m.uid, uid, true), m.squashGid ?? map(m.gid, gid, true)];
}

/** The uid to store for a caller's (or chown's) mount uid. */
export function storedUid(m: IdMap, uid: number): number {
  return map(m.uid, uid, false);
}

/** The gid to store for a caller's (or chown's) mount gid. */
export function storedGid(m: IdMap, gid: number): number {
  return map(m.gid, gid, false);
}

/** Whether chown failures are swallowed (fuse-overlayfs does so whenever it squashes). */
export function squashes(m: IdMap): boolean {
  return m.squashUid !== undefined || m.squashGid !== undefined;
}
