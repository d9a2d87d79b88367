/** Library file name → the symbol versions an ELF object needs from it (readelf -V). */
export function versionNeeds(file: string): Record<string, string[]>;
/** Version namespace (GLIBC, GLIBCXX, …) → the highest version needed. */
export function highestByNamespace(needs: Record<string, string[]>): Record<string, string>;
export function compareVersions(a: string, b: string): number;
