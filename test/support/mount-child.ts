// Mounts the loopback with handleSignals and waits to be killed: the mount test sends SIGTERM/SIGINT
// and checks that the mount is gone afterwards.
import { mountFuse } from '../../src/fuse/bridge/mount.js';

const [mountpoint, backing] = process.argv.slice(2);
if (!mountpoint || !backing) throw new Error('usage: mount-child <mountpoint> <backing>');
const m = await mountFuse({
  mountpoint,
  filesystem: { module: new URL('./loopback.ts', import.meta.url), export: 'createLoopback', arg: backing },
  options: { handleSignals: true },
});
process.stdout.write('mounted\n');
await m.done;
