// Proves src/sys/signals.ts against the real kernel: a child process blocks in read(2) on a pipe nobody
// writes, and a signal with a handler must end that read with EINTR (libuv installs handlers with
// SA_RESTART, which restarts the read and leaves the child asleep), as must the periodic SIGALRM.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';

const SIGNALS = new URL('../../src/sys/signals.ts', import.meta.url).href;
const DEVICE_IO = new URL('../../src/sys/device-io.ts', import.meta.url).href;

/**
 * Runs `setup` in a child that then blocks reading its stdin (a pipe kept open and empty), and says
 * what the read ended with. `signal`, when given, is sent once the child is blocked.
 */
function blockedRead(setup: string, signal?: NodeJS.Signals): Promise<string> {
  const program = `
    import { interruptWith, setAlarmInterval } from ${JSON.stringify(SIGNALS)};
    import { readInto } from ${JSON.stringify(DEVICE_IO)};
    import { constants } from 'node:os';
    const { SIGUSR2, SIGALRM } = constants.signals;
    process.on('SIGUSR2', () => {});
    process.on('SIGALRM', () => {});
    ${setup}
    process.stdout.write('blocking\\n');
    try {
      readInto(0, new Uint8Array(16));
      process.stdout.write('read\\n');
    } catch (e) {
      process.stdout.write(e.code + '\\n');
    }
    setAlarmInterval(0);
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', program], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve('still blocked after 5 s');
    }, 5_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out === 'blocking\n' && signal !== undefined) setTimeout(() => child.kill(signal), 200);
    });
    child.on('exit', () => {
      clearTimeout(timer);
      resolve(out.replace('blocking\n', '').trim());
    });
  });
}

describe('signals that interrupt blocking calls', () => {
  it('a handled signal ends a blocking read with EINTR once SA_RESTART is cleared', async () => {
    assert.equal(await blockedRead('interruptWith([SIGUSR2]);', 'SIGUSR2'), 'EINTR');
  });

  it('without it, the read is restarted and stays blocked', async () => {
    assert.equal(await blockedRead('', 'SIGUSR2'), 'still blocked after 5 s');
  });

  it('the alarm interrupts a blocking read by itself', async () => {
    assert.equal(await blockedRead('interruptWith([SIGALRM]); setAlarmInterval(100);'), 'EINTR');
  });

  // Why serveFuseInSlices clears the flag again before each slice: a signal without a handler is left
  // alone, and the handler libuv installs later comes with SA_RESTART.
  it('a handler installed after the call restarts the read again', async () => {
    const setup = "process.removeAllListeners('SIGUSR2'); interruptWith([SIGUSR2]); process.on('SIGUSR2', () => {});";
    assert.equal(await blockedRead(setup, 'SIGUSR2'), 'still blocked after 5 s');
    assert.equal(await blockedRead(`${setup} interruptWith([SIGUSR2]);`, 'SIGUSR2'), 'EINTR');
  });
});
