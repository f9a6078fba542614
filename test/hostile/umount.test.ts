// umount, many times in a row: after each, the ovlfs daemon must exit and nothing may be left holding
// /dev/fuse. The cycles vary what happens before the umount: nothing, writes just before it, and a
// process holding a file open (umount says EBUSY, umount -l detaches, the daemon goes once the holder
// closes). Every fifth mount is the daemonizing `ovlfs mount`; the others `ovlfs mount --foreground`.
//   OVLFS_HOSTILE_UMOUNTS=50   how many mount/umount cycles (default 50)
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { cannotMount, isMounted, kill, knob, ovlfsMount, run, scratch, waitGone } from '../support/hostile-env.js';

const CYCLES = knob('OVLFS_HOSTILE_UMOUNTS', 50);

/** Processes holding /dev/fuse whose command line names `dir`. */
function holdersUnder(dir: string): string[] {
  const out: string[] = [];
  for (const pid of fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (!cmd.includes(dir)) continue;
      for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
        if (fs.readlinkSync(`/proc/${pid}/fd/${fd}`) === '/dev/fuse') {
          out.push(`${pid} ${cmd}`);
          break;
        }
      }
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

test(`umount ${CYCLES} times in a row: the daemon always exits`, { skip: cannotMount() }, async (t) => {
  const base = scratch(t, 'umount');
  for (const d of ['l', 'u', 'w']) fs.mkdirSync(join(base, d));
  fs.writeFileSync(join(base, 'l', 'f'), 'lower\n');
  const opts = `lowerdir=${base}/l,upperdir=${base}/u,workdir=${base}/w`;
  const mnt = join(base, 'm');
  const problems: string[] = [];

  for (let i = 0; i < CYCLES; i++) {
    // Every fifth mount through the daemonizing CLI as users run it; the others with --foreground, the
    // same serving code in one process instead of two, to keep 50 cycles affordable.
    const daemon = await ovlfsMount(t, opts, mnt, join(base, `log${i}`), { foreground: i % 5 !== 0 });
    const kind = i % 3;
    let holder: ReturnType<typeof spawn> | undefined;
    if (kind === 1) {
      fs.writeFileSync(join(mnt, `f${i}`), `cycle ${i}\n`.repeat(1000));
      fs.appendFileSync(join(mnt, 'f'), `${i}\n`);
    } else if (kind === 2) {
      // A process with a file open and its cwd in the mount.
      holder = spawn('sh', ['-c', 'exec 3<f; echo ready; read x'], { cwd: mnt, stdio: ['pipe', 'pipe', 'ignore'] });
      await new Promise((r) => holder!.stdout!.once('data', r));
      const busy = run('umount', [mnt]);
      if (busy.status === 0) problems.push(`cycle ${i}: umount succeeded while busy`);
      if (run('umount', ['-l', mnt]).status !== 0) problems.push(`cycle ${i}: umount -l failed`);
      holder.stdin!.end();
      await new Promise((r) => holder!.once('exit', r));
    }
    if (isMounted(mnt)) {
      const u = run('umount', [mnt], 20_000);
      if (u.status !== 0) problems.push(`cycle ${i}: umount failed: ${u.stderr.trim()}`);
    }
    if (!(await waitGone(daemon.pid, 15_000))) {
      problems.push(`cycle ${i} (${['plain', 'after writes', 'busy, then lazy'][kind]}): daemon ${daemon.pid} still running 15 s after the umount${daemon.logTail()}`);
      kill(daemon.pid);
    }
    if (isMounted(mnt)) problems.push(`cycle ${i}: still mounted`);
    if (problems.length > 3) break;
  }
  assert.deepEqual(problems, []);
  assert.deepEqual(holdersUnder(base), [], 'processes still holding /dev/fuse');
  // What the cycles wrote is all there.
  const lines = fs.readFileSync(join(base, 'u', 'f'), 'utf8').split('\n').filter((l) => l !== '');
  assert.deepEqual(lines, ['lower', ...Array.from({ length: CYCLES }, (_, i) => i).filter((i) => i % 3 === 1).map(String)]);
});
