// The mount table of this process (/proc/self/mounts), parsed in one place.
//
// The kernel writes each line as `source mountpoint type options 0 0` and escapes, with three octal digits,
// every character that would break a field: space \040, tab \011, newline \012 and backslash \134
// (mangle() in fs/proc_namespace.c). Filesystems that print their own options escape more the same way:
// overlayfs's seq_show_option() also escapes ',' and '=' inside a value. So a line is split on spaces,
// the options on ',' and each option on its first '=' before anything is unescaped.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

export interface MountEntry {
  source: string;
  mountpoint: string;
  type: string;
  /** The options in order, each as [key, value]; the value is undefined for a flag such as 'rw'. */
  options: Array<[key: string, value: string | undefined]>;
}

/** Undoes the kernel's \ooo escapes. */
export function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/** Parses the text of /proc/self/mounts (or /proc/mounts). */
export function parseMounts(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f.length < 4) continue;
    const options = f[3]!.split(',').map((opt): [string, string | undefined] => {
      const eq = opt.indexOf('=');
      return eq < 0 ? [unescapeMountField(opt), undefined] : [unescapeMountField(opt.slice(0, eq)), unescapeMountField(opt.slice(eq + 1))];
    });
    out.push({ source: unescapeMountField(f[0]!), mountpoint: unescapeMountField(f[1]!), type: unescapeMountField(f[2]!), options });
  }
  return out;
}

/** This process's mounts; empty where /proc is not mounted. */
export function readMounts(): MountEntry[] {
  let text: string;
  try {
    text = readFileSync('/proc/self/mounts', 'utf8');
  } catch {
    return [];
  }
  return parseMounts(text);
}

/** Whether `path` is a mount point right now. */
export function isMounted(path: string): boolean {
  const target = resolve(path);
  return readMounts().some((m) => m.mountpoint === target);
}
