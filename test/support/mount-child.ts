// Mounts the loopback with handleSignals and waits to be killed: the mount test sends SIGTERM/SIGINT
// and checks that the mount is gone afterwards. With `here`, this thread serves (serveHere), and it
// says `tick` every 100 ms, which only a thread that gets back to its event loop while serving can.
import { mountFuse } from '../../src/fuse/bridge/mount.js';

const [mountpoint, backing, host] = process.argv.slice(2);
if (!mountpoint || !backing) throw new Error('usage: mount-child <mountpoint> <backing> [here]');
const m = await mountFuse({
  mountpoint,
  filesystem: { module: new URL('./loopback.ts', import.meta.url), export: 'createLoopback', arg: backing },
  // Served here, V8's optimizing compiler comes back on after 100 requests: every such test crosses that.
  options: { handleSignals: true, serveHere: host === 'here', optimizeAfter: host === 'here' ? 100 : undefined },
});
process.stdout.write('mounted\n');
if (host === 'here') setInterval(() => process.stdout.write('tick\n'), 100).unref();
await m.done;
