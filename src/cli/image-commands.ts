// ovlfs pull, diff, commit and run: images as layers. Loaded only when one of these commands runs,
// so the mount path's start-up does not pay for the registry client. Argument parsing only; the work
// is in src/oci/.
import { resolve } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';

import { splitEscaped } from '../overlay/options.js';
import type { Change } from '../oci/diff.js';

const EXIT_USAGE = 1;
const EXIT_FAIL = 1;
/** run's own failures (before or instead of CMD), as podman run answers them. */
const EXIT_RUN_FAIL = 125;

class Usage extends Error {}

const REGISTRY_FLAGS = `  --tls-verify=false    talk plain http to the registry (a registry on 127.0.0.1); default https
  --creds USER:PASS     credentials for the registry (basic auth, or traded for a bearer token)`;

export const PULL_HELP = `Usage: ovlfs pull [--tls-verify=false] [--creds USER:PASS] [FLAGS] SRC DIR

Writes the image SRC into DIR as an OCI image layout, checking every blob against its digest, and
unpacks each layer into DIR/layers/<diff id>/ in the overlay's on-disk format. Prints the lowerdir=
value (top-most layer first), for 'ovlfs mount -o lowerdir=$(ovlfs pull …),upperdir=…,workdir=… MNT'
or mount -t overlay. Layers already unpacked in DIR are reused.

SRC: docker://HOST[:PORT]/REPO[:TAG|@DIGEST], oci:DIR[:TAG] or oci-archive:FILE[:TAG]

flags:
${REGISTRY_FLAGS}
  --max-layer-size SIZE refuse a layer that inflates past SIZE (bytes, or with K, M, G; default 8G)
  --userxattr           write user.overlay.* xattrs (default: trusted.overlay.* as root, as the mount chooses)
  --parallel N          layers fetched at once (default 3)`;

export const DIFF_HELP = `Usage: ovlfs diff [-o lowerdir=DIR[:DIR…] | --image DIR] [--userxattr] UPPER

Lists the changes an upper layer holds, sorted, one per line in podman diff's form: 'A PATH' added,
'C PATH' changed, 'D PATH' deleted. Without the lower layers every name in UPPER counts as added.`;

export const COMMIT_HELP = `Usage: ovlfs commit [--tls-verify=false] [--creds USER:PASS] --from DIR UPPER DEST

Turns the upper layer UPPER into a layer on top of the image pulled into DIR, and writes the new
image to DEST (docker://HOST/REPO:TAG, oci:DIR[:TAG] or oci-archive:FILE[:TAG]). Blobs the
registry has are skipped, blobs of the repository DIR was pulled from are mounted, the rest are
uploaded in chunks. DIR is only read. Prints the new manifest's digest.

flags:
${REGISTRY_FLAGS}
  --userxattr           UPPER keeps user.overlay.* xattrs (default: as the mount chooses)`;

export const RUN_HELP = `Usage: ovlfs run [--image DIR | -o lowerdir=DIR[:DIR…]] [--commit DEST] [--keep UPPER] -- CMD [ARG…]

Runs CMD with the image's merged view as its root, on a throwaway upper layer, in private mount and
pid namespaces (and a user namespace when not root): the kernel overlay mounted inside them, with
/proc and /dev. Afterwards prints the changes on stderr (as ovlfs diff does), commits them to DEST
when asked, and keeps the upper layer at UPPER when asked. The image is never changed. The exit
status is CMD's; 125 when ovlfs run itself fails.

flags:
  --commit DEST         commit the changes as a new image at DEST (needs --image)
  --keep UPPER          keep the upper layer at UPPER (a path that does not exist yet)
${REGISTRY_FLAGS}`;

function parse(args: string[], options: NonNullable<ParseArgsConfig['options']>, cmd: string): ReturnType<typeof parseArgs> {
  try {
    return parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true });
  } catch (e) {
    throw new Usage(`${e instanceof Error ? e.message.replace(/\. To specify a positional argument.*$/s, '') : String(e)} (see ovlfs ${cmd} --help)`);
  }
}

const REGISTRY_OPTIONS = { 'tls-verify': { type: 'string' }, creds: { type: 'string' } } as const;

async function registryOptions(values: Record<string, unknown>): Promise<{ tlsVerify: boolean; creds?: { username: string; password: string } }> {
  const tls = values['tls-verify'];
  if (tls !== undefined && tls !== 'true' && tls !== 'false') throw new Usage(`--tls-verify takes true or false, not '${String(tls)}'`);
  const { parseCredentials } = await import('../oci/registry-auth.js');
  return { tlsVerify: tls !== 'false', ...(typeof values.creds === 'string' ? { creds: parseCredentials(values.creds) } : {}) };
}

function parseSize(text: string): number {
  const m = /^(\d+)([KMGT]?)i?B?$/i.exec(text);
  if (m === null) throw new Usage(`--max-layer-size takes a size such as 512M or 2G, not '${text}'`);
  return Number(m[1]) * 1024 ** ' KMGT'.indexOf((m[2] || ' ').toUpperCase());
}

/** The lowerdir= value of `-o` options (other options are refused: only the layers matter here). */
function lowerdirsOf(options: string[]): string[] | undefined {
  let lowerdirs: string[] | undefined;
  for (const list of options) {
    for (const opt of splitEscaped(list, ',', true)) {
      if (opt.startsWith('lowerdir=')) lowerdirs = splitEscaped(opt.slice('lowerdir='.length), ':').map((p) => resolve(p));
      else if (opt === 'userxattr' || opt === '') continue;
      else throw new Usage(`-o takes lowerdir=… here, not '${opt}'`);
    }
  }
  return lowerdirs;
}

function printChanges(changes: Change[], out: NodeJS.WritableStream): void {
  out.write(changes.map((c) => `${c.kind} ${c.path}\n`).join(''));
}

function positionals(parsed: ReturnType<typeof parseArgs>, names: string[], cmd: string): string[] {
  if (parsed.positionals.length !== names.length) throw new Usage(`expected ${names.join(' ')} (see ovlfs ${cmd} --help)`);
  return parsed.positionals;
}

async function pullCommand(args: string[]): Promise<number> {
  const parsed = parse(args, { ...REGISTRY_OPTIONS, 'max-layer-size': { type: 'string' }, userxattr: { type: 'boolean' }, parallel: { type: 'string' } }, 'pull');
  if (parsed.values.help) return help(PULL_HELP);
  const [src, dir] = positionals(parsed, ['SRC', 'DIR'], 'pull');
  const { pull } = await import('../oci/pull.js');
  const v = parsed.values;
  const parallel = v.parallel === undefined ? undefined : Number(v.parallel);
  if (parallel !== undefined && !(Number.isInteger(parallel) && parallel > 0)) throw new Usage(`--parallel takes a positive number, not '${String(v.parallel)}'`);
  const image = await pull(src!, dir!, {
    ...(await registryOptions(v)),
    ...(typeof v['max-layer-size'] === 'string' ? { maxLayerSize: parseSize(v['max-layer-size']) } : {}),
    ...(v.userxattr === true ? { userxattr: true } : {}),
    ...(parallel === undefined ? {} : { parallel }),
  });
  process.stdout.write(`${image.lowerdirs.map((d) => d.replace(/[\\,:]/g, (c) => `\\${c}`)).join(':')}\n`);
  return 0;
}

async function diffCommand(args: string[]): Promise<number> {
  const parsed = parse(args, { options: { type: 'string', short: 'o', multiple: true }, image: { type: 'string' }, userxattr: { type: 'boolean' } }, 'diff');
  if (parsed.values.help) return help(DIFF_HELP);
  const [upper] = positionals(parsed, ['UPPER'], 'diff');
  let lowerdirs = lowerdirsOf((parsed.values.options as string[] | undefined) ?? []);
  if (typeof parsed.values.image === 'string') lowerdirs = (await import('../oci/commit.js')).readBaseImage(parsed.values.image).lowerdirs;
  const { diffUpper } = await import('../oci/diff.js');
  const { imageXattrs } = await import('../oci/xattr-choice.js');
  const userxattr = parsed.values.userxattr === true || ((parsed.values.options as string[] | undefined) ?? []).some((o) => splitEscaped(o, ',', true).includes('userxattr'));
  const { xattrPrefix } = imageXattrs(userxattr ? { userxattr } : {});
  printChanges(diffUpper(resolve(upper!), { xattrPrefix, ...(lowerdirs === undefined ? {} : { lowerdirs }) }), process.stdout);
  return 0;
}

async function commitCommand(args: string[]): Promise<number> {
  const parsed = parse(args, { ...REGISTRY_OPTIONS, from: { type: 'string' }, userxattr: { type: 'boolean' } }, 'commit');
  if (parsed.values.help) return help(COMMIT_HELP);
  const [upper, dest] = positionals(parsed, ['UPPER', 'DEST'], 'commit');
  if (typeof parsed.values.from !== 'string') throw new Usage('--from DIR is required: the pulled image to build on (see ovlfs commit --help)');
  const { commit } = await import('../oci/commit.js');
  const result = await commit(parsed.values.from, upper!, dest!, { ...(await registryOptions(parsed.values)), ...(parsed.values.userxattr === true ? { userxattr: true } : {}) });
  process.stdout.write(`${result.manifest.digest}\n`);
  return 0;
}

async function runCommand(args: string[]): Promise<number> {
  const dash = args.indexOf('--');
  const own = dash < 0 ? args : args.slice(0, dash);
  const command = dash < 0 ? [] : args.slice(dash + 1);
  const parsed = parse(own, { ...REGISTRY_OPTIONS, image: { type: 'string' }, options: { type: 'string', short: 'o', multiple: true }, commit: { type: 'string' }, keep: { type: 'string' } }, 'run');
  if (parsed.values.help) return help(RUN_HELP);
  if (parsed.positionals.length > 0) throw new Usage(`put the command after '--': ovlfs run [FLAGS] -- ${parsed.positionals.join(' ')}`);
  if (command.length === 0) throw new Usage('no command: ovlfs run [FLAGS] -- CMD [ARG…]');
  const v = parsed.values;
  const lowerdirs = lowerdirsOf((v.options as string[] | undefined) ?? []);
  if ((typeof v.image === 'string') === (lowerdirs !== undefined)) throw new Usage('give the image as --image DIR or its layers as -o lowerdir=…, one of the two');
  if (typeof v.commit === 'string' && typeof v.image !== 'string') throw new Usage('--commit needs --image DIR, the image the new layer goes on');
  const registry = await registryOptions(v);
  const { run } = await import('../oci/run.js');
  let result;
  try {
    result = await run(command, { ...(typeof v.image === 'string' ? { image: v.image } : { lowerdirs: lowerdirs! }), ...(typeof v.keep === 'string' ? { keep: v.keep } : {}) });
  } catch (e) {
    log('run', e);
    return EXIT_RUN_FAIL;
  }
  try {
    printChanges(result.changes, process.stderr);
    if (typeof v.commit === 'string') {
      const { commit } = await import('../oci/commit.js');
      const committed = await commit(v.image as string, result.upper, v.commit, registry);
      process.stderr.write(`committed ${committed.manifest.digest} to ${v.commit}\n`);
    }
  } catch (e) {
    log('run', e);
    return EXIT_RUN_FAIL;
  } finally {
    result.cleanup();
  }
  return result.status;
}

function help(text: string): number {
  process.stdout.write(text + '\n');
  return 0;
}

function log(cmd: string, e: unknown): void {
  process.stderr.write(`ovlfs ${cmd}: ${e instanceof Error ? e.message : String(e)}\n`);
}

const COMMANDS: Record<string, (args: string[]) => Promise<number>> = { pull: pullCommand, diff: diffCommand, commit: commitCommand, run: runCommand };

export function isImageCommand(cmd: string): boolean {
  return Object.hasOwn(COMMANDS, cmd);
}

/** Runs `ovlfs CMD ARGS…` for an image command; returns the exit status. */
export async function imageCommand(cmd: string, args: string[]): Promise<number> {
  try {
    return await COMMANDS[cmd]!(args);
  } catch (e) {
    log(cmd, e);
    return e instanceof Usage ? EXIT_USAGE : cmd === 'run' ? EXIT_RUN_FAIL : EXIT_FAIL;
  }
}
