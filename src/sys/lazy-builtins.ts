// Node's built-in modules that the ovlfs daemon rarely needs, loaded on first use: each costs every
// mount's start-up several milliseconds (node:child_process loads net and stream with it), and a daemon
// needs child processes only to unmount on a signal, and worker threads only once data traffic is heavy.
import { createRequire } from 'node:module';

type ChildProcess = typeof import('node:child_process');
type WorkerThreads = typeof import('node:worker_threads');

const load = createRequire(import.meta.url);
let childProcessModule: ChildProcess | undefined;
let workerThreadsModule: WorkerThreads | undefined;

export function childProcess(): ChildProcess {
  return (childProcessModule ??= load('node:child_process') as ChildProcess);
}

export function workerThreads(): WorkerThreads {
  return (workerThreadsModule ??= load('node:worker_threads') as WorkerThreads);
}
