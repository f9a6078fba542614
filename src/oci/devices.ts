// Device numbers as glibc packs them into dev_t (and Node reports st_rdev), from and to tar's
// major and minor. dev_t reaches 2^64: arithmetic, not 32-bit bit operators.

export function makedev(major: number, minor: number): number {
  return (major % 4096) * 256 + (minor % 256) + Math.floor(minor / 256) * 0x100000 + Math.floor(major / 4096) * 0x100000000000;
}

export function major(rdev: number): number {
  return (Math.floor(rdev / 256) % 4096) + Math.floor(rdev / 0x100000000000) * 4096;
}

export function minor(rdev: number): number {
  return (rdev % 256) + (Math.floor(rdev / 0x100000) % 0x1000000) * 256;
}
