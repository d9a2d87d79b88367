/**
 * The exact remedies a finding names for this machine: how to run Node on jemalloc, in the words
 * of this image's distribution (read from /etc/os-release once) and for this architecture.
 */
import { existsSync, readFileSync } from "node:fs";

export interface Remedies {
  /** How to preload jemalloc here: the package to install and the LD_PRELOAD line. */
  jemalloc: string;
}

/** Debian's multiarch directory for Node's architectures. */
const MULTIARCH: Record<string, string> = {
  x64: "x86_64-linux-gnu",
  arm64: "aarch64-linux-gnu",
  arm: "arm-linux-gnueabihf",
  ppc64: "powerpc64le-linux-gnu",
  s390x: "s390x-linux-gnu",
};

/** os-release's ID and ID_LIKE, lower case (ID first when the file lists it first, as it does). */
export function osFamily(osRelease: string): string[] {
  const ids: string[] = [];
  for (const line of osRelease.split("\n")) {
    const m = /^(ID|ID_LIKE)=("?)([^"\n]*)\2\s*$/.exec(line.trim());
    if (m) ids.push(...(m[3] as string).toLowerCase().split(/\s+/).filter(Boolean));
  }
  return ids;
}

/**
 * The line that preloads jemalloc on a distribution (os-release's text) and architecture; `exists`
 * says whether a path is there (the library may be installed already).
 */
export function jemallocRemedy(osRelease: string, arch: string, exists: (path: string) => boolean): string {
  const family = osFamily(osRelease);
  const has = (...names: string[]) => names.some((n) => family.includes(n));
  let install: string | undefined;
  let path: string | undefined;
  if (has("debian", "ubuntu")) {
    const triplet = MULTIARCH[arch];
    install = "apt-get install -y --no-install-recommends libjemalloc2";
    path = triplet ? `/usr/lib/${triplet}/libjemalloc.so.2` : undefined;
  } else if (has("rhel", "fedora", "centos", "amzn", "rocky", "almalinux")) {
    // Fedora and Amazon Linux ship jemalloc; RHEL and its rebuilds have it in EPEL.
    const epel = ["rhel", "centos", "rocky", "almalinux"].includes(family[0] ?? "");
    install = `dnf install -y jemalloc${epel ? " (from EPEL)" : ""}`;
    path = "/usr/lib64/libjemalloc.so.2";
  } else if (has("suse", "opensuse", "sles")) {
    install = "zypper install -y libjemalloc2";
    path = "/usr/lib64/libjemalloc.so.2";
  } else if (has("arch")) {
    install = "pacman -S --noconfirm jemalloc";
    path = "/usr/lib/libjemalloc.so.2";
  } else if (has("alpine")) {
    install = "apk add jemalloc";
    path = "/usr/lib/libjemalloc.so.2";
  }
  if (path === undefined || install === undefined) {
    return "install jemalloc 5 from the distribution and start node with LD_PRELOAD set to its libjemalloc.so.2";
  }
  if (exists(path)) {
    return `start node with LD_PRELOAD=${path} (jemalloc is installed here; in a Dockerfile: ENV LD_PRELOAD=${path})`;
  }
  return `${install}, then start node with LD_PRELOAD=${path} (in a Dockerfile: RUN ${install.replace(/ \(from EPEL\)$/, "")} and ENV LD_PRELOAD=${path})`;
}

let cached: Remedies | undefined;

/** This machine's remedies, worked out once. */
export function remedies(): Remedies {
  if (cached === undefined) {
    let osRelease = "";
    for (const file of ["/etc/os-release", "/usr/lib/os-release"]) {
      try {
        osRelease = readFileSync(file, "utf8").slice(0, 64 * 1024);
        break;
      } catch {
        // the next one
      }
    }
    cached = { jemalloc: jemallocRemedy(osRelease, process.arch, existsSync) };
  }
  return cached;
}
