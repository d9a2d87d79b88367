// Small kernel files (the own process's status, its cgroup's value files) read in one call through
// descriptors kept open: the syscalls are the floor of a fast reading, and one crossing into the
// addon for all of them replaces one per file. Raw bytes only: no parsing, no policy (the text is
// parsed in TypeScript, by the same code that parses what JavaScript reads).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace heapstate {

class KeptFiles {
 public:
  KeptFiles() = default;
  KeptFiles(const KeptFiles&) = delete;
  KeptFiles& operator=(const KeptFiles&) = delete;
  ~KeptFiles();

  // The files to read from now on, in order; the descriptors of the previous list are closed.
  void Keep(std::vector<std::string> paths);
  size_t Size() const { return paths_.size(); }

  // Reads every kept file at offset 0 into `out`, one after the other: lengths[i] is file i's byte
  // count, or minus its errno when it could not be read (a descriptor that fails with EBADF,
  // ENOENT, ESTALE or ENODEV, as after a cgroup is removed and made again, is reopened once).
  // Returns the bytes used, or minus the bytes to provide when `out` is too small (a file filled
  // what was left of it); then nothing in `lengths` is to be used.
  int64_t Read(uint8_t* out, size_t outLength, int32_t* lengths, size_t nLengths);

 private:
  void Close(size_t i);
  std::vector<std::string> paths_;
  std::vector<int> fds_;
};

}  // namespace heapstate
