// Layer paths inside idmapped mounts. For a rootful --uidmap container, containers/storage (podman 4.3)
// hands the mount program lower layers inside an idmapped bind mount of its storage directory (files
// owned by 0 there show as 100000) *and* uidmapping=0:100000:65536, which maps them again: every lower
// file would show as the overflow id and runc cannot create /etc/hosts (fuse-overlayfs 1.10 fails the
// same way). The upper layer is never idmapped. So with a uid/gid mapping, a lower layer in an idmapped
// mount is read through the same directory in a mount of the same filesystem that is not idmapped, and
// the mapping then applies to every layer alike. That also frees the mount from the idmapped bind
// mounts, which storage detaches as soon as the mount program returns.
import { realpathSync, readFileSync, statSync } from 'node:fs';

interface MountEntry {
  dev: string;
  /** The mounted directory's path inside its filesystem. */
  root: string;
  mountpoint: string;
  idmapped: boolean;
}

function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

function mounts(): MountEntry[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const f = l.split(' ');
      return { dev: f[2]!, root: unescape(f[3]!), mountpoint: unescape(f[4]!), idmapped: f[5]!.split(',').includes('idmapped') };
    });
}

function under(prefix: string, path: string): boolean {
  return prefix === '/' || path === prefix || path.startsWith(prefix + '/');
}

function rest(prefix: string, path: string): string {
  return prefix === '/' ? path : path.slice(prefix.length);
}

/** The same directory outside any idmapped mount, or `path` itself if it is in none (or no other mount shows it). */
export function unidmappedPath(path: string): string {
  let real: string;
  try {
    real = realpathSync(path);
  } catch {
    return path; // the core reports a missing layer with its own message
  }
  const all = mounts();
  // The mount the path is in: the last listed of the longest matching mount points (later ones cover earlier).
  let at: MountEntry | undefined;
  for (const m of all) if (under(m.mountpoint, real) && (at === undefined || m.mountpoint.length >= at.mountpoint.length)) at = m;
  if (at === undefined || !at.idmapped) return path;
  const inFs = (at.root === '/' ? '' : at.root) + rest(at.mountpoint, real) || '/';
  const want = statSync(real);
  const candidates = all.filter((m) => m.dev === at.dev && !m.idmapped && under(m.root, inFs)).sort((a, b) => b.root.length - a.root.length);
  for (const c of candidates) {
    const p = (c.mountpoint === '/' ? '' : c.mountpoint) + rest(c.root, inFs) || '/';
    try {
      const st = statSync(p);
      if (st.ino === want.ino && st.isDirectory()) return p;
    } catch {
      // covered by another mount, or gone
    }
  }
  return path;
}
