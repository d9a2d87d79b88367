#include "readers.h"

#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

namespace heapstate {

namespace {

// Our own copies of glibc's structs: the headers of an older build machine may lack mallinfo2,
// and the functions are looked up with dlsym anyway.
struct Mallinfo2 {
  size_t arena, ordblks, smblks, hblks, hblkhd, usmblks, fsmblks, uordblks, fordblks, keepcost;
};
struct Mallinfo {
  int arena, ordblks, smblks, hblks, hblkhd, usmblks, fsmblks, uordblks, fordblks, keepcost;
};

void Number(Reading* r, const std::string& name, double v) {
  Value value;
  value.type = Value::Type::Number;
  value.number = v;
  r->values.emplace_back(name, value);
}

void Text(Reading* r, const std::string& name, const char* s) {
  Value value;
  value.type = Value::Type::Text;
  value.text = s;
  r->values.emplace_back(name, value);
}

void Flag(Reading* r, const std::string& name, bool b) {
  Value value;
  value.type = Value::Type::Flag;
  value.flag = b;
  r->values.emplace_back(name, value);
}

// Reads a numeric ctl of C type T; the length must match the type exactly (else EINVAL).
template <typename T>
int ReadNumber(const JemallocApi& je, const JemallocCtl& ctl, Reading* r) {
  T v = 0;
  size_t len = sizeof v;
  int rc = je.bymib(ctl.mib, ctl.miblen, &v, &len, nullptr, 0);
  if (rc == 0) Number(r, ctl.name, static_cast<double>(v));
  return rc;
}

void ReadJemalloc(const JemallocApi& je, Reading* r) {
  // Every stats.* value comes from the snapshot taken at the last epoch write; a read-only epoch
  // access does not refresh it. One write per collection, then every read sees the same moment.
  if (je.epochMiblen != 0) {
    uint64_t epoch = 1;
    size_t len = sizeof epoch;
    int rc = je.bymib(je.epochMib, je.epochMiblen, &epoch, &len, &epoch, sizeof epoch);
    if (rc == 0) {
      Number(r, "epoch", static_cast<double>(epoch));
    } else {
      r->errors.emplace_back("epoch", rc);
    }
  } else {
    r->errors.emplace_back("epoch", ENOENT);
  }
  for (const JemallocCtl& ctl : je.ctls) {
    if (ctl.miblen == 0) {
      r->errors.emplace_back(ctl.name, ctl.resolveError);
      continue;
    }
    int rc = EINVAL;  // every CtlType is handled below; this is what an unknown one would get
    switch (ctl.type) {
      case CtlType::SizeT:
        rc = ReadNumber<size_t>(je, ctl, r);
        break;
      case CtlType::SSizeT:
        rc = ReadNumber<ssize_t>(je, ctl, r);
        break;
      case CtlType::Uint64:
        rc = ReadNumber<uint64_t>(je, ctl, r);
        break;
      case CtlType::Unsigned:
        rc = ReadNumber<unsigned>(je, ctl, r);
        break;
      case CtlType::Bool: {
        bool v = false;
        size_t len = sizeof v;
        rc = je.bymib(ctl.mib, ctl.miblen, &v, &len, nullptr, 0);
        if (rc == 0) Flag(r, ctl.name, v);
        break;
      }
      case CtlType::String: {
        const char* v = nullptr;
        size_t len = sizeof v;
        rc = je.bymib(ctl.mib, ctl.miblen, &v, &len, nullptr, 0);
        if (rc == 0 && v != nullptr) Text(r, ctl.name, v);
        if (rc == 0 && v == nullptr) rc = ENOENT;
        break;
      }
    }
    if (rc != 0) r->errors.emplace_back(ctl.name, rc);
  }
}

// clang-format off
#define HEAPSTATE_MALLINFO_FIELDS(X) \
  X(arena) X(ordblks) X(smblks) X(hblks) X(hblkhd) X(usmblks) X(fsmblks) X(uordblks) X(fordblks) \
  X(keepcost)
// clang-format on

void ReadGlibc(const GlibcApi& g, const ReadOptions& options, Reading* r) {
  if (g.version != nullptr) Text(r, "gnu_get_libc_version", g.version());
  // The page size malloc_trim works in: what decides which free chunks can give pages back.
  long page = sysconf(_SC_PAGESIZE);
  if (page > 0) Number(r, "page_size", static_cast<double>(page));
  if (options.glibc) {
    if (g.mallinfo2 != nullptr) {
      Mallinfo2 m = reinterpret_cast<Mallinfo2 (*)(void)>(g.mallinfo2)();
      Text(r, "function", "mallinfo2");
#define HEAPSTATE_SET(f) Number(r, #f, static_cast<double>(m.f));
      HEAPSTATE_MALLINFO_FIELDS(HEAPSTATE_SET)
#undef HEAPSTATE_SET
    } else if (g.mallinfo != nullptr) {
      // glibc < 2.33: int fields. Handed over as the unsigned 32-bit pattern; the caller knows
      // they wrap above 4 GiB (and go negative above 2 GiB as ints).
      Mallinfo m = reinterpret_cast<Mallinfo (*)(void)>(g.mallinfo)();
      Text(r, "function", "mallinfo");
#define HEAPSTATE_SET(f) Number(r, #f, static_cast<double>(static_cast<uint32_t>(m.f)));
      HEAPSTATE_MALLINFO_FIELDS(HEAPSTATE_SET)
#undef HEAPSTATE_SET
    } else {
      r->errors.emplace_back("mallinfo2", ENOSYS);
    }
  }
  if (options.mallocInfo) {
    if (g.mallocInfo == nullptr) {
      r->errors.emplace_back("malloc_info", ENOSYS);
      return;
    }
    // open_memstream's buffer belongs to us once the stream is closed; both are released however
    // this block is left.
    char* buf = nullptr;
    size_t size = 0;
    std::unique_ptr<FILE, int (*)(FILE*)> f(open_memstream(&buf, &size), &fclose);
    std::unique_ptr<char, void (*)(void*)> owned(nullptr, &free);
    if (!f) {
      r->errors.emplace_back("malloc_info", errno);
      return;
    }
    int rc = g.mallocInfo(0, f.get());
    int err = errno;
    f.reset();  // fclose sets buf and size
    owned.reset(buf);
    if (rc == 0 && buf != nullptr) {
      Text(r, "malloc_info", buf);
    } else {
      r->errors.emplace_back("malloc_info", rc == 0 ? ENOMEM : err);
    }
  }
}

const char* const kTcmallocProperties[] = {
    "generic.current_allocated_bytes",
    "generic.heap_size",
    "generic.total_physical_bytes",
    "tcmalloc.pageheap_free_bytes",
    "tcmalloc.pageheap_unmapped_bytes",
    "tcmalloc.pageheap_committed_bytes",
    "tcmalloc.central_cache_free_bytes",
    "tcmalloc.transfer_cache_free_bytes",
    "tcmalloc.thread_cache_free_bytes",
    "tcmalloc.current_total_thread_cache_bytes",
    "tcmalloc.max_total_thread_cache_bytes",
    "tcmalloc.aggressive_memory_decommit",
    "tcmalloc.heap_limit_mb",
    "tcmalloc.slack_bytes",
};

void ReadTcmalloc(const TcmallocApi& tc, Reading* r) {
  if (tc.version != nullptr) {
    int major = 0, minor = 0;
    const char* patch = nullptr;
    const char* v = tc.version(&major, &minor, &patch);
    if (v != nullptr) Text(r, "tc_version", v);
  }
  for (const char* name : kTcmallocProperties) {
    size_t v = 0;
    if (tc.getNumericProperty(name, &v) != 0) {
      Number(r, name, static_cast<double>(v));
    } else {
      r->errors.emplace_back(name, ENOENT);  // "unknown property" in this build
    }
  }
}

void ReadMimalloc(const MimallocApi& mi, Reading* r) {
  if (mi.version != nullptr) Number(r, "mi_version", mi.version());
  size_t v[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  mi.processInfo(&v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
  const char* const names[8] = {"elapsed_msecs", "user_msecs",     "system_msecs", "current_rss",
                                "peak_rss",      "current_commit", "peak_commit",  "page_faults"};
  for (int i = 0; i < 8; i++) Number(r, names[i], static_cast<double>(v[i]));
}

Value ResultCode(int rc) {
  Value v;
  v.type = Value::Type::Number;
  v.number = rc;
  return v;
}

Value Done() {
  Value v;
  v.type = Value::Type::Flag;
  v.flag = true;
  return v;
}

}  // namespace

Reading ReadInstance(const Instance& inst, const ReadOptions& options) {
  Reading r;
  switch (inst.kind) {
    case AllocatorKind::Jemalloc:
      ReadJemalloc(inst.jemalloc, &r);
      break;
    case AllocatorKind::Glibc:
      ReadGlibc(inst.glibc, options, &r);
      break;
    case AllocatorKind::Tcmalloc:
      ReadTcmalloc(inst.tcmalloc, &r);
      break;
    case AllocatorKind::Mimalloc:
      ReadMimalloc(inst.mimalloc, &r);
      break;
  }
  return r;
}

TrimResult TrimInstance(const Instance& inst, bool glibc) {
  TrimResult t;
  switch (inst.kind) {
    case AllocatorKind::Jemalloc: {
      // The caller's tcache first (other threads' caches are theirs to flush), then purge every
      // arena's dirty and muzzy pages: MADV_DONTNEED, so they leave RSS at once.
      int rc = inst.jemalloc.mallctl("thread.tcache.flush", nullptr, nullptr, nullptr, 0);
      t.actions.emplace_back("thread.tcache.flush", ResultCode(rc));
      rc = inst.jemalloc.mallctl("arena.4096.purge", nullptr, nullptr, nullptr, 0);
      t.actions.emplace_back("arena.4096.purge", ResultCode(rc));
      break;
    }
    case AllocatorKind::Glibc:
      if (glibc && inst.glibc.mallocTrim != nullptr) {
        t.actions.emplace_back("malloc_trim", ResultCode(inst.glibc.mallocTrim(0)));
      }
      break;
    case AllocatorKind::Tcmalloc:
      if (inst.tcmalloc.releaseFreeMemory != nullptr) {
        inst.tcmalloc.releaseFreeMemory();
        t.actions.emplace_back("MallocExtension_ReleaseFreeMemory", Done());
      }
      break;
    case AllocatorKind::Mimalloc:
      if (inst.mimalloc.collect != nullptr) {
        inst.mimalloc.collect(true);
        t.actions.emplace_back("mi_collect", Done());
      }
      break;
  }
  return t;
}

}  // namespace heapstate
