// Allocator discovery: which loaded object serves malloc, and which allocator instances live in
// the process. These are process facts: they are computed once and recomputed only when the set
// of loaded objects changes (glibc's dlpi_adds/dlpi_subs counters), then shared read-only by every
// thread and worker.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace heapstate {

enum class AllocatorKind { Glibc, Jemalloc, Tcmalloc, Mimalloc };

const char* KindName(AllocatorKind kind);

using MallctlFn = int (*)(const char*, void*, size_t*, void*, size_t);
using MallctlNameToMibFn = int (*)(const char*, size_t*, size_t*);
using MallctlByMibFn = int (*)(const size_t*, size_t, void*, size_t*, void*, size_t);

// One jemalloc control name, resolved to a MIB once (a process fact), read by MIB afterwards.
enum class CtlType { SizeT, SSizeT, Unsigned, Bool, String, Uint64 };
struct JemallocCtl {
  const char* name;
  CtlType type;
  size_t mib[8];
  size_t miblen;  // 0 when the name did not resolve (unknown in this build)
  int resolveError;
};

struct JemallocApi {
  MallctlFn mallctl = nullptr;
  MallctlByMibFn bymib = nullptr;
  size_t epochMib[2] = {0, 0};
  size_t epochMiblen = 0;         // 0 when "epoch" did not resolve
  std::vector<JemallocCtl> ctls;  // read on every collection, after the epoch write
};

struct GlibcApi {
  void* mallinfo2 = nullptr;  // struct mallinfo2 (*)(void), glibc >= 2.33, found with dlsym
  void* mallinfo = nullptr;   // struct mallinfo (*)(void), int fields that wrap above 2 GiB
  int (*mallocInfo)(int, FILE*) = nullptr;
  int (*mallocTrim)(size_t) = nullptr;
  const char* (*version)(void) = nullptr;
};

struct TcmallocApi {
  int (*getNumericProperty)(const char*, size_t*) = nullptr;
  void (*releaseFreeMemory)(void) = nullptr;
  const char* (*version)(int*, int*, const char**) = nullptr;
  // gperftools' C++ MallocExtension::instance() and MallocExtension::GetHeapSample(std::string*)
  // (the base class's, which formats what the virtual ReadStackTraces gives): no C entry point
  // exists. libtcmalloc and libtcmalloc_minimal both define them; the minimal one's sample is
  // always empty (period 0: it is built without sampling).
  void* (*instance)(void) = nullptr;
  void (*heapSample)(void* self, std::string* out) = nullptr;
};

struct MimallocApi {
  void (*processInfo)(size_t*, size_t*, size_t*, size_t*, size_t*, size_t*, size_t*,
                      size_t*) = nullptr;
  int (*version)(void) = nullptr;
  void (*collect)(bool) = nullptr;
};

struct Instance {
  AllocatorKind kind;
  std::string library;  // path of the object that defines the allocator's entry point
  std::string symbol;   // the entry point found (e.g. "mallctl", "je_mallctl", "_rjem_mallctl")
  bool servesMalloc = false;
  JemallocApi jemalloc;
  GlibcApi glibc;
  TcmallocApi tcmalloc;
  MimallocApi mimalloc;
};

struct Discovery {
  // Held by the current-discovery slot and by each DiscoveryRef. An atomic counted by hand rather
  // than std::shared_ptr: libstdc++'s shared_ptr imports __libc_single_threaded (GLIBC_2.32) and
  // make_shared a GLIBCXX_3.4.26 symbol, both newer than what Node's official binaries require.
  mutable std::atomic<long> refs{0};
  unsigned long long adds = 0, subs = 0;
  std::string mallocOwner;  // empty when no object could be shown to define malloc
  bool mainProgramDefinesMalloc = false;
  // heapstate's sampler (native/sampler), when it stands first in front of malloc: it passes every
  // call to the next object that defines malloc, which serves it (mallocOwner).
  std::string sampler;
  int (*samplerDump)(const char*) = nullptr;
  size_t (*samplerStats)(uint64_t*, size_t) = nullptr;
  std::vector<Instance> instances;
};

// A counted reference to an immutable Discovery; the Discovery lives while any reference does.
class DiscoveryRef {
 public:
  explicit DiscoveryRef(const Discovery* d) : d_(d) {}  // takes over one count already added
  ~DiscoveryRef();
  DiscoveryRef(const DiscoveryRef&) = delete;
  DiscoveryRef& operator=(const DiscoveryRef&) = delete;
  const Discovery& operator*() const { return *d_; }
  const Discovery* operator->() const { return d_; }

 private:
  const Discovery* d_;
};

// The current discovery; rebuilt when objects were loaded or unloaded since the last call.
// Thread-safe. The returned object is immutable and stays valid for as long as it is held.
DiscoveryRef CurrentDiscovery();

// The running glibc's version (gnu_get_libc_version), or nullptr when libc is not glibc. Looked
// up directly, without a discovery or a reading: it touches no allocator.
const char* LibcVersion();

}  // namespace heapstate
