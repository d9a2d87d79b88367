/**
 * Which platform this process runs on, in the terms prebuilt addons are made for: OS, CPU and,
 * on Linux, the C library. The C library is read from the running executable's ELF interpreter
 * (PT_INTERP): `ld-linux-*` is glibc's dynamic loader and `ld-musl-*` musl's. That is exact where
 * the usual test for `/etc/alpine-release` only knows Alpine, and it costs one 4 KiB read.
 */
import { closeSync, openSync, readSync } from "node:fs";

export type LibcFamily = "glibc" | "musl";

export interface PlatformInfo {
  os: NodeJS.Platform;
  arch: string;
  /** Linux only; absent when it could not be told (a static executable, an unreadable file). */
  libc?: LibcFamily;
  /** "linux-x64 (glibc)", "darwin-arm64": how warnings name the platform. */
  label: string;
}

const PT_INTERP = 3;
const HEAD = 4096;

/**
 * The ELF interpreter an executable asks for ("/lib64/ld-linux-x86-64.so.2"), or undefined when
 * the file is not a 64-bit little-endian ELF, has none (static), or cannot be read.
 */
export function elfInterpreter(file: string): string | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(file, "r");
    const head = Buffer.alloc(HEAD);
    const got = readSync(fd, head, 0, HEAD, 0);
    if (got < 64 || head.readUInt32BE(0) !== 0x7f454c46) return undefined; // "\x7fELF"
    if (head[4] !== 2 || head[5] !== 1) return undefined; // ELFCLASS64, little-endian
    const phoff = Number(head.readBigUInt64LE(32));
    const phentsize = head.readUInt16LE(54);
    const phnum = head.readUInt16LE(56);
    if (phentsize < 56 || phnum === 0) return undefined;
    const table = read(fd, phoff, phentsize * phnum);
    for (let i = 0; i < phnum; i++) {
      const at = i * phentsize;
      if (table.readUInt32LE(at) !== PT_INTERP) continue;
      const offset = Number(table.readBigUInt64LE(at + 8));
      const size = Number(table.readBigUInt64LE(at + 32));
      if (size === 0 || size > 4096) return undefined;
      const name = read(fd, offset, size);
      const end = name.indexOf(0);
      return name.toString("latin1", 0, end === -1 ? name.length : end);
    }
    return undefined;
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function read(fd: number, offset: number, length: number): Buffer {
  const buf = Buffer.alloc(length);
  const got = readSync(fd, buf, 0, length, offset);
  if (got !== length) throw new Error("short read");
  return buf;
}

/** The C library family a dynamic loader path belongs to, or undefined when it is neither's. */
export function libcOfInterpreter(interpreter: string | undefined): LibcFamily | undefined {
  if (interpreter === undefined) return undefined;
  const base = interpreter.slice(interpreter.lastIndexOf("/") + 1);
  if (base.startsWith("ld-musl-")) return "musl";
  if (base.startsWith("ld-linux")) return "glibc";
  return undefined;
}

/** The platform of an executable (by default the running Node). */
export function platformInfo(
  executable: string = process.execPath,
  os: NodeJS.Platform = process.platform,
  arch: string = process.arch,
): PlatformInfo {
  const libc = os === "linux" ? libcOfInterpreter(elfInterpreter(executable)) : undefined;
  const tuple = `${os}-${arch}`;
  return { os, arch, ...(libc ? { libc } : {}), label: libc ? `${tuple} (${libc})` : tuple };
}

let own: PlatformInfo | undefined;

/**
 * This process's platform: read once (the running executable does not change). A Linux reading
 * that could not tell the C library is not kept: the read may have failed for want of a
 * descriptor (EMFILE), and the next call reads again.
 */
export function ownPlatform(): PlatformInfo {
  if (own) return own;
  const p = platformInfo();
  if (p.os !== "linux" || p.libc !== undefined) own = p;
  return p;
}
