#include "files.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <utility>

namespace heapstate {

namespace {

// Errors after which a kept descriptor is worth opening again: it was closed under us, or the file
// it names is gone (a cgroup removed; its path may name a new one).
bool Reopenable(int e) { return e == EBADF || e == ENOENT || e == ESTALE || e == ENODEV; }

int Open(const std::string& path) {
  int fd;
  do {
    fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

ssize_t ReadAt0(int fd, uint8_t* out, size_t room) {
  ssize_t n;
  do {
    n = pread(fd, out, room, 0);
  } while (n < 0 && errno == EINTR);
  return n;
}

}  // namespace

KeptFiles::~KeptFiles() {
  for (size_t i = 0; i < fds_.size(); i++) Close(i);
}

void KeptFiles::Close(size_t i) {
  if (fds_[i] >= 0) close(fds_[i]);
  fds_[i] = -1;
}

void KeptFiles::Keep(std::vector<std::string> paths) {
  for (size_t i = 0; i < fds_.size(); i++) Close(i);
  paths_ = std::move(paths);
  fds_.assign(paths_.size(), -1);
}

int64_t KeptFiles::Read(uint8_t* out, size_t outLength, int32_t* lengths, size_t nLengths) {
  size_t at = 0;
  for (size_t i = 0; i < paths_.size(); i++) {
    int32_t result = 0;
    for (int attempt = 0; attempt < 2; attempt++) {
      if (fds_[i] < 0) fds_[i] = Open(paths_[i]);
      if (fds_[i] < 0) {
        result = -errno;
        break;
      }
      const size_t room = outLength - at;
      if (room == 0) return -static_cast<int64_t>(outLength * 2 + 4096);
      const ssize_t n = ReadAt0(fds_[i], out + at, room);
      if (n >= 0) {
        // A file that fills what is left may be longer: the caller provides more and asks again.
        if (static_cast<size_t>(n) == room) return -static_cast<int64_t>(outLength * 2 + 4096);
        result = static_cast<int32_t>(n);
        at += static_cast<size_t>(n);
        break;
      }
      const int e = errno;
      Close(i);
      result = -e;
      if (!Reopenable(e)) break;
    }
    if (i < nLengths) lengths[i] = result;
  }
  return static_cast<int64_t>(at);
}

}  // namespace heapstate
