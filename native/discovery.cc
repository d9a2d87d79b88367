// Allocator discovery. Why a walk over the loaded objects and not dladdr(malloc): the official
// `node` binary is a non-PIE executable that takes malloc's address, so the dynamic linker
// resolves `malloc` to a canonical PLT entry inside `node` itself and dladdr answers "node"
// whatever allocator is preloaded. The first object after the main program that *itself defines*
// malloc is the one every malloc call reaches (load order is symbol-resolution order).
#include "discovery.h"

#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <unistd.h>

#include <climits>
#include <cstring>
#include <mutex>

// glibc 2.34 moved the dl* functions from libdl into libc under a new symbol version. Linked
// against a newer glibc, the addon would then need GLIBC_2.34, while Node's official Linux
// binaries need only 2.28 (and so may run where 2.34 is absent). Bind to the original versions,
// which every glibc still exports; on an older glibc they are found in libdl, which node loads.
#if defined(__GLIBC__) && __GLIBC_PREREQ(2, 34)
#if defined(__x86_64__)
#define HEAPSTATE_DL_V1 "GLIBC_2.2.5"  // dlopen, dlclose, dlsym
#define HEAPSTATE_DL_V2 "GLIBC_2.3.3"  // dlinfo, dladdr1 (added later)
#elif defined(__aarch64__)
#define HEAPSTATE_DL_V1 "GLIBC_2.17"  // the first aarch64 glibc has them all
#define HEAPSTATE_DL_V2 "GLIBC_2.17"
#endif
#ifdef HEAPSTATE_DL_V1
__asm__(".symver dlopen,dlopen@" HEAPSTATE_DL_V1);
__asm__(".symver dlclose,dlclose@" HEAPSTATE_DL_V1);
__asm__(".symver dlsym,dlsym@" HEAPSTATE_DL_V1);
__asm__(".symver dlinfo,dlinfo@" HEAPSTATE_DL_V2);
__asm__(".symver dladdr1,dladdr1@" HEAPSTATE_DL_V2);
#endif
#endif

namespace heapstate {

const char* KindName(AllocatorKind kind) {
  switch (kind) {
    case AllocatorKind::Glibc:
      return "glibc";
    case AllocatorKind::Jemalloc:
      return "jemalloc";
    case AllocatorKind::Tcmalloc:
      return "tcmalloc";
    case AllocatorKind::Mimalloc:
      return "mimalloc";
  }
  return "unknown";
}

namespace {

struct LoadedObject {
  std::string name;  // empty for the main program
};

struct Counters {
  unsigned long long adds = 0, subs = 0;
};

int ReadCounters(struct dl_phdr_info* info, size_t size, void* data) {
  auto* c = static_cast<Counters*>(data);
  if (size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof(info->dlpi_subs)) {
    c->adds = info->dlpi_adds;
    c->subs = info->dlpi_subs;
  }
  return 1;  // the counters are the same in every entry: stop after the first
}

int ListObjects(struct dl_phdr_info* info, size_t, void* data) {
  auto* list = static_cast<std::vector<LoadedObject>*>(data);
  list->push_back({info->dlpi_name ? info->dlpi_name : ""});
  return 0;
}

// The link map of the object that contains `addr`, or nullptr.
const struct link_map* DefiningObject(void* addr) {
  Dl_info di;
  struct link_map* lm = nullptr;
  if (addr == nullptr || dladdr1(addr, &di, reinterpret_cast<void**>(&lm), RTLD_DL_LINKMAP) == 0) {
    return nullptr;
  }
  return lm;
}

// dlsym(handle) also searches the object's dependencies: accept the symbol only when `lm` itself
// defines it.
void* OwnSymbol(void* handle, const struct link_map* lm, const char* name) {
  void* f = dlsym(handle, name);
  return (f != nullptr && DefiningObject(f) == lm) ? f : nullptr;
}

std::string ExecutablePath() {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "";
  buf[n] = '\0';
  return buf;
}

// Static allocator inside the executable itself: the main program's `malloc` symbol is defined
// (not the SHN_UNDEF canonical-PLT entry that a non-PIE `node` has).
bool MainProgramDefinesMalloc() {
  void* f = dlsym(RTLD_DEFAULT, "malloc");
  Dl_info di;
  ElfW(Sym)* sym = nullptr;
  if (f == nullptr || dladdr1(f, &di, reinterpret_cast<void**>(&sym), RTLD_DL_SYMENT) == 0) {
    return false;
  }
  const struct link_map* lm = DefiningObject(f);
  return lm != nullptr && lm->l_name != nullptr && lm->l_name[0] == '\0' && sym != nullptr &&
         sym->st_shndx != SHN_UNDEF;
}

const JemallocCtl kJemallocCtls[] = {
    {"version", CtlType::String, {}, 0, 0},
    {"config.stats", CtlType::Bool, {}, 0, 0},
    {"arenas.narenas", CtlType::Unsigned, {}, 0, 0},
    {"arenas.page", CtlType::SizeT, {}, 0, 0},
    {"stats.allocated", CtlType::SizeT, {}, 0, 0},
    {"stats.active", CtlType::SizeT, {}, 0, 0},
    {"stats.resident", CtlType::SizeT, {}, 0, 0},
    {"stats.mapped", CtlType::SizeT, {}, 0, 0},
    {"stats.metadata", CtlType::SizeT, {}, 0, 0},
    {"stats.retained", CtlType::SizeT, {}, 0, 0},
    // 4096 = MALLCTL_ARENAS_ALL: every arena merged.
    {"stats.arenas.4096.pactive", CtlType::SizeT, {}, 0, 0},
    {"stats.arenas.4096.pdirty", CtlType::SizeT, {}, 0, 0},
    {"stats.arenas.4096.pmuzzy", CtlType::SizeT, {}, 0, 0},
    {"stats.arenas.4096.internal", CtlType::SizeT, {}, 0, 0},
    {"stats.arenas.4096.tcache_bytes", CtlType::SizeT, {}, 0, 0},
    {"stats.arenas.4096.dirty_purged", CtlType::Uint64, {}, 0, 0},
    {"stats.arenas.4096.muzzy_purged", CtlType::Uint64, {}, 0, 0},
    {"opt.dirty_decay_ms", CtlType::SSizeT, {}, 0, 0},
    {"opt.muzzy_decay_ms", CtlType::SSizeT, {}, 0, 0},
    {"opt.background_thread", CtlType::Bool, {}, 0, 0},
    {"background_thread", CtlType::Bool, {}, 0, 0},
    {"opt.narenas", CtlType::Unsigned, {}, 0, 0},
    {"opt.retain", CtlType::Bool, {}, 0, 0},
    {"opt.thp", CtlType::String, {}, 0, 0},
    {"opt.metadata_thp", CtlType::String, {}, 0, 0},
    {"opt.percpu_arena", CtlType::String, {}, 0, 0},
    {"opt.oversize_threshold", CtlType::SizeT, {}, 0, 0},
    {"opt.tcache", CtlType::Bool, {}, 0, 0},
    {"opt.dss", CtlType::String, {}, 0, 0},
    // Heap profiling (a build with --enable-prof): on, sampling now, and its mean sample interval.
    {"opt.prof", CtlType::Bool, {}, 0, 0},
    {"prof.active", CtlType::Bool, {}, 0, 0},
    {"opt.lg_prof_sample", CtlType::SizeT, {}, 0, 0},
};

const char* const kJemallocPrefixes[] = {"", "je_", "_rjem_"};

bool ResolveJemalloc(void* h, const struct link_map* lm, const char* prefix, Instance* inst) {
  std::string p(prefix);
  auto* mallctl = reinterpret_cast<MallctlFn>(OwnSymbol(h, lm, (p + "mallctl").c_str()));
  auto* n2m =
      reinterpret_cast<MallctlNameToMibFn>(OwnSymbol(h, lm, (p + "mallctlnametomib").c_str()));
  auto* bymib = reinterpret_cast<MallctlByMibFn>(OwnSymbol(h, lm, (p + "mallctlbymib").c_str()));
  if (mallctl == nullptr || n2m == nullptr || bymib == nullptr) return false;
  inst->kind = AllocatorKind::Jemalloc;
  inst->symbol = p + "mallctl";
  inst->jemalloc.mallctl = mallctl;
  inst->jemalloc.bymib = bymib;
  size_t epochLen = 2;
  if (n2m("epoch", inst->jemalloc.epochMib, &epochLen) == 0) inst->jemalloc.epochMiblen = epochLen;
  // Names are resolved to MIBs once: a by-name lookup walks the ctl tree on every call.
  for (const JemallocCtl& proto : kJemallocCtls) {
    JemallocCtl ctl = proto;
    ctl.miblen = sizeof ctl.mib / sizeof ctl.mib[0];
    ctl.resolveError = n2m(ctl.name, ctl.mib, &ctl.miblen);
    if (ctl.resolveError != 0) ctl.miblen = 0;
    inst->jemalloc.ctls.push_back(ctl);
  }
  return true;
}

template <typename T>
T As(void* f) {
  return reinterpret_cast<T>(f);
}

// Finds every allocator entry point that `lm` itself defines and appends one instance per kind.
void ScanObject(void* h, const struct link_map* lm, const std::string& path,
                std::vector<Instance>* out) {
  for (const char* prefix : kJemallocPrefixes) {
    Instance inst;
    inst.library = path;
    if (ResolveJemalloc(h, lm, prefix, &inst)) {
      out->push_back(std::move(inst));
      break;  // one jemalloc per object, whatever aliases it exports
    }
  }
  if (void* f = OwnSymbol(h, lm, "MallocExtension_GetNumericProperty")) {
    Instance inst;
    inst.kind = AllocatorKind::Tcmalloc;
    inst.library = path;
    inst.symbol = "MallocExtension_GetNumericProperty";
    inst.tcmalloc.getNumericProperty = As<int (*)(const char*, size_t*)>(f);
    inst.tcmalloc.releaseFreeMemory =
        As<void (*)(void)>(OwnSymbol(h, lm, "MallocExtension_ReleaseFreeMemory"));
    inst.tcmalloc.version =
        As<const char* (*)(int*, int*, const char**)>(OwnSymbol(h, lm, "tc_version"));
    inst.tcmalloc.instance =
        As<void* (*)(void)>(OwnSymbol(h, lm, "_ZN15MallocExtension8instanceEv"));
    inst.tcmalloc.heapSample = As<void (*)(void*, std::string*)>(
        OwnSymbol(h, lm,
                  "_ZN15MallocExtension13GetHeapSampleEPNSt7__cxx1112basic_stringIcSt11char_"
                  "traitsIcESaIcEEE"));
    out->push_back(std::move(inst));
  }
  if (void* f = OwnSymbol(h, lm, "mi_process_info")) {
    Instance inst;
    inst.kind = AllocatorKind::Mimalloc;
    inst.library = path;
    inst.symbol = "mi_process_info";
    inst.mimalloc.processInfo = As<decltype(inst.mimalloc.processInfo)>(f);
    inst.mimalloc.version = As<int (*)(void)>(OwnSymbol(h, lm, "mi_version"));
    inst.mimalloc.collect = As<void (*)(bool)>(OwnSymbol(h, lm, "mi_collect"));
    out->push_back(std::move(inst));
  }
  if (void* f = OwnSymbol(h, lm, "gnu_get_libc_version")) {
    Instance inst;
    inst.kind = AllocatorKind::Glibc;
    inst.library = path;
    inst.symbol = "gnu_get_libc_version";
    inst.glibc.version = As<const char* (*)(void)>(f);
    // mallinfo2 is versioned GLIBC_2.33 while Node's binaries target 2.28: never link it, look it
    // up.
    inst.glibc.mallinfo2 = OwnSymbol(h, lm, "mallinfo2");
    inst.glibc.mallinfo = OwnSymbol(h, lm, "mallinfo");
    inst.glibc.mallocInfo = As<int (*)(int, FILE*)>(OwnSymbol(h, lm, "malloc_info"));
    inst.glibc.mallocTrim = As<int (*)(size_t)>(OwnSymbol(h, lm, "malloc_trim"));
    out->push_back(std::move(inst));
  }
}

Discovery* Build(const Counters& counters) {
  auto* d = new Discovery();
  d->adds = counters.adds;
  d->subs = counters.subs;

  // Copy the list first and call dlopen only after dl_iterate_phdr has returned: dl_iterate_phdr
  // holds the loader's write lock during the callback, and a dlopen from inside it can deadlock
  // against another thread's dlopen (which takes the two loader locks in the other order).
  std::vector<LoadedObject> objects;
  dl_iterate_phdr(ListObjects, &objects);

  d->mainProgramDefinesMalloc = MainProgramDefinesMalloc();
  const struct link_map* owner = nullptr;
  const std::string exe = ExecutablePath();

  for (size_t i = 0; i < objects.size(); i++) {
    const bool isMain = (i == 0);
    const std::string& name = objects[i].name;
    if (!isMain && name.empty()) continue;
    void* h = dlopen(isMain ? nullptr : name.c_str(), RTLD_NOW | RTLD_NOLOAD);
    if (h == nullptr) continue;  // e.g. the vdso, which has no file to open
    struct link_map* lm = nullptr;
    if (dlinfo(h, RTLD_DI_LINKMAP, &lm) != 0 || lm == nullptr) {
      dlclose(h);
      continue;
    }
    const std::string path = isMain ? exe : name;
    if (isMain ? d->mainProgramDefinesMalloc : (owner == nullptr && OwnSymbol(h, lm, "malloc"))) {
      void* dump = isMain ? nullptr : OwnSymbol(h, lm, "heapstate_sampler_dump");
      if (dump != nullptr && d->samplerDump == nullptr) {
        // The sampler passes every call to the next object that defines malloc: that one serves.
        d->sampler = path;
        d->samplerDump = As<int (*)(const char*)>(dump);
        d->samplerStats =
            As<size_t (*)(uint64_t*, size_t)>(OwnSymbol(h, lm, "heapstate_sampler_stats"));
        continue;  // its handle stays open for the life of the process, as an allocator's does
      }
      if (owner == nullptr) {
        owner = lm;
        d->mallocOwner = path;
      }
    }
    const size_t before = d->instances.size();
    ScanObject(h, lm, path, &d->instances);
    for (size_t k = before; k < d->instances.size(); k++) {
      d->instances[k].servesMalloc = (lm == owner);
    }
    // An object that hosts an allocator keeps this reference for the life of the process, so the
    // function pointers above can never dangle even if someone dlcloses it. Others are released.
    if (d->instances.size() == before || isMain) dlclose(h);
  }
  return d;
}

void Release(const Discovery* d) {
  if (d != nullptr && d->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete d;
}

std::mutex gMutex;
const Discovery* gCurrent = nullptr;  // holds one count

}  // namespace

DiscoveryRef::~DiscoveryRef() { Release(d_); }

DiscoveryRef CurrentDiscovery() {
  Counters now;
  dl_iterate_phdr(ReadCounters, &now);
  std::lock_guard<std::mutex> lock(gMutex);
  if (gCurrent == nullptr || gCurrent->adds != now.adds || gCurrent->subs != now.subs) {
    Discovery* next = Build(now);
    next->refs.store(1, std::memory_order_relaxed);
    Release(gCurrent);  // freed here unless a reader still holds it
    gCurrent = next;
  }
  gCurrent->refs.fetch_add(1, std::memory_order_relaxed);
  return DiscoveryRef(gCurrent);
}

const char* LibcVersion() {
  auto* version =
      reinterpret_cast<const char* (*)(void)>(dlsym(RTLD_DEFAULT, "gnu_get_libc_version"));
  return version == nullptr ? nullptr : version();
}

}  // namespace heapstate
