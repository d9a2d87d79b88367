// Node-API entry points. Argument checks and conversion to JS values only; the reads live in
// readers.cc and discovery in discovery.cc. Every function is synchronous and safe to call from
// any thread or worker: process facts are shared read-only (discovery.h), and nothing that
// touches JS is static (per-environment state lives in the Addon instance).
//
// Worker termination: a worker may be terminated while it is inside read(). Its Node-API calls then
// fail, node-addon-api turns that into a C++ exception, and the exception cannot be thrown into
// the dying environment. The build defines NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS so that case is
// dropped quietly instead of std::terminate() taking the whole process down (binding.gyp,
// CMakeLists.txt). Nothing here holds a lock or a resource across a Node-API call, so unwinding
// at any of them is safe.
#include <errno.h>
#include <napi.h>
#include <time.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <mutex>
#include <string>
#include <vector>

#include "discovery.h"
#include "files.h"
#include "readers.h"

namespace heapstate {

namespace {

Napi::Value ToJs(Napi::Env env, const Value& v) {
  switch (v.type) {
    case Value::Type::Number:
      return Napi::Number::New(env, v.number);
    case Value::Type::Text:
      return Napi::String::New(env, v.text);
    case Value::Type::Flag:
      return Napi::Boolean::New(env, v.flag);
  }
  return env.Undefined();
}

// Reads optional boolean `key` of an options object; a non-boolean is a TypeError naming it.
bool BoolOption(const Napi::Object& options, const char* key, bool fallback) {
  Napi::Value v = options.Get(key);
  if (v.IsUndefined()) return fallback;
  if (!v.IsBoolean()) {
    throw Napi::TypeError::New(options.Env(), std::string("heapstate native: option '") + key +
                                                  "' must be a boolean, received " +
                                                  v.ToString().Utf8Value().substr(0, 40));
  }
  return v.As<Napi::Boolean>().Value();
}

Napi::Object OptionsArg(const Napi::CallbackInfo& info, size_t index = 0) {
  if (info.Length() <= index || info[index].IsUndefined()) return Napi::Object::New(info.Env());
  if (!info[index].IsObject() || info[index].IsArray() || info[index].IsFunction()) {
    throw Napi::TypeError::New(info.Env(), "heapstate native: options must be a plain object");
  }
  return info[index].As<Napi::Object>();
}

Napi::Object Describe(Napi::Env env, const Discovery& d) {
  Napi::Object out = Napi::Object::New(env);
  if (!d.mallocOwner.empty()) out.Set("mallocOwner", Napi::String::New(env, d.mallocOwner));
  out.Set("mainProgramDefinesMalloc", Napi::Boolean::New(env, d.mainProgramDefinesMalloc));
  if (!d.sampler.empty()) out.Set("sampler", Napi::String::New(env, d.sampler));
  return out;
}

Napi::Object DescribeInstance(Napi::Env env, const Instance& inst) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("allocator", Napi::String::New(env, KindName(inst.kind)));
  o.Set("library", Napi::String::New(env, inst.library));
  o.Set("symbol", Napi::String::New(env, inst.symbol));
  o.Set("servesMalloc", Napi::Boolean::New(env, inst.servesMalloc));
  return o;
}

// The names of every counter and error readNumbers() has sent, by id: ids are process-wide and
// never reused, so a JS side that has fetched names up to an id keeps them valid. Guarded for
// workers reading at the same time.
// Looked up through a fixed open-addressing table (id + 1 per slot, 0 for empty) rather than a
// std::unordered_map, whose rehash pulls in a libstdc++ symbol (GLIBCXX_3.4.29) newer than the
// oldest Node the addon loads in (scripts/build-prebuild.mjs checks). The four allocators have
// well under a hundred names; past the table's size, names are found by a scan.
std::mutex gNamesMutex;
std::vector<std::string> gNames;
constexpr size_t kNameSlots = 1024;  // a power of two
uint32_t gNameSlots[kNameSlots] = {};

uint32_t NameId(const std::string& name) {
  std::lock_guard<std::mutex> lock(gNamesMutex);
  uint64_t h = 14695981039346656037ull;  // FNV-1a
  for (unsigned char c : name) h = (h ^ c) * 1099511628211ull;
  for (size_t probe = 0; probe < kNameSlots; probe++) {
    uint32_t& slot = gNameSlots[(h + probe) & (kNameSlots - 1)];
    if (slot == 0) {
      slot = static_cast<uint32_t>(gNames.size()) + 1;
      gNames.push_back(name);
      return slot - 1;
    }
    if (gNames[slot - 1] == name) return slot - 1;
  }
  for (size_t i = 0; i < gNames.size(); i++) {
    if (gNames[i] == name) return static_cast<uint32_t>(i);
  }
  gNames.push_back(name);
  return static_cast<uint32_t>(gNames.size() - 1);
}

// Writes doubles into a caller's Float64Array, never past its end; counts what did not fit.
class Writer {
 public:
  Writer(double* data, size_t length) : data_(data), length_(length) {}
  void Put(double v) {
    if (n_ < length_) data_[n_] = v;
    n_++;
  }
  size_t Count() const { return n_; }
  bool Fits() const { return n_ <= length_; }

 private:
  double* data_;
  size_t length_;
  size_t n_ = 0;
};

// The kinds of entry readNumbers() writes: the low two bits of (name id * 4 + kind).
constexpr double kEntryNumber = 0, kEntryFlag = 1, kEntryText = 2;

}  // namespace

// Values under their names, as one JS object.
Napi::Object ValuesObject(Napi::Env env, const std::vector<std::pair<std::string, Value>>& values) {
  Napi::Object o = Napi::Object::New(env);
  for (const auto& kv : values) o.Set(kv.first, ToJs(env, kv.second));
  return o;
}

// discover()'s shape for one discovery: every instance described.
Napi::Object EachDescribed(Napi::Env env, const Discovery& d) {
  Napi::Object out = Describe(env, d);
  Napi::Array list = Napi::Array::New(env);
  uint32_t n = 0;
  for (const Instance& inst : d.instances) list.Set(n++, DescribeInstance(env, inst));
  out.Set("instances", list);
  return out;
}

// discover()'s shape with one object per instance that `keep` accepts, each described and then
// filled in by `fill` (which reads or trims it). The one loop of discover, read and trim.
template <typename Keep, typename Fill>
Napi::Object EachInstance(Napi::Env env, Keep keep, Fill fill) {
  DiscoveryRef d = CurrentDiscovery();
  Napi::Object out = Describe(env, *d);
  Napi::Array list = Napi::Array::New(env);
  uint32_t n = 0;
  for (const Instance& inst : d->instances) {
    if (!keep(inst)) continue;
    Napi::Object o = DescribeInstance(env, inst);
    fill(inst, o);
    list.Set(n++, o);
  }
  out.Set("instances", list);
  return out;
}

class Addon : public Napi::Addon<Addon> {
 public:
  Addon(Napi::Env /*env*/, Napi::Object exports) {
    DefineAddon(exports, {
                             InstanceMethod("discover", &Addon::Discover),
                             InstanceMethod("read", &Addon::Read),
                             InstanceMethod("readNumbers", &Addon::ReadNumbers),
                             InstanceMethod("counterNames", &Addon::CounterNames),
                             InstanceMethod("trim", &Addon::Trim),
                             InstanceMethod("libc", &Addon::Libc),
                             InstanceMethod("threadCpuMicros", &Addon::ThreadCpuMicros),
                             InstanceMethod("keepFiles", &Addon::KeepFiles),
                             InstanceMethod("readFiles", &Addon::ReadFiles),
                             InstanceMethod("profDump", &Addon::ProfDump),
                             InstanceMethod("heapSample", &Addon::HeapSample),
                             InstanceMethod("profActive", &Addon::ProfActive),
                             InstanceMethod("samplerDump", &Addon::SamplerDump),
                             InstanceMethod("samplerStats", &Addon::SamplerStats),
                         });
  }

 private:
  // This environment's kept files (a worker keeps its own, closed with it).
  KeptFiles files_;
  // Which list the kept files are: keepFiles() answers it, readFiles() reads only for it.
  double filesGeneration_ = 0;

  // keepFiles(paths: string[]) -> the list's generation (readFiles() takes it): the files
  // readFiles() reads from now on, in order (the descriptors of the previous list are closed). At
  // most 64 paths, each a string without NUL of at most 4096 bytes.
  Napi::Value KeepFiles(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsArray()) {
      throw Napi::TypeError::New(env, "heapstate native: keepFiles needs an array of paths");
    }
    Napi::Array list = info[0].As<Napi::Array>();
    if (list.Length() > 64)
      throw Napi::RangeError::New(env, "heapstate native: keepFiles takes at most 64 paths");
    std::vector<std::string> paths;
    for (uint32_t i = 0; i < list.Length(); i++) {
      Napi::Value v = list.Get(i);
      if (!v.IsString())
        throw Napi::TypeError::New(env, "heapstate native: keepFiles: a path is not a string");
      std::string path = v.As<Napi::String>().Utf8Value();
      if (path.empty() || path.size() > 4096 || path.find('\0') != std::string::npos) {
        throw Napi::TypeError::New(
            env, "heapstate native: keepFiles: a path is empty, too long or holds NUL");
      }
      paths.push_back(std::move(path));
    }
    files_.Keep(std::move(paths));
    filesGeneration_ += 1;
    return Napi::Number::New(env, filesGeneration_);
  }

  // readFiles(out: Uint8Array, lengths: Int32Array, generation) -> NaN when `generation` is not the
  // kept list's (another caller kept another list: nothing is read), else the bytes written to
  // `out`, the kept files' contents one after the other (lengths[i]: file i's bytes, or minus its
  // errno), or minus the size `out` must have when it is too short (then nothing else is to be
  // used).
  Napi::Value ReadFiles(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), ReadKept(info, 0, "readFiles"));
  }

  // The kept files read as readFiles() reads them, from the arguments at `first` on (out, lengths,
  // generation): its answer.
  double ReadKept(const Napi::CallbackInfo& info, size_t first, const char* who) {
    Napi::Env env = info.Env();
    if (info.Length() < first + 3 || !info[first].IsTypedArray() ||
        !info[first + 1].IsTypedArray() || !info[first + 2].IsNumber() ||
        info[first].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array ||
        info[first + 1].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
      throw Napi::TypeError::New(env, std::string("heapstate native: ") + who +
                                          " needs a Uint8Array, an Int32Array and a generation");
    }
    if (info[first + 2].As<Napi::Number>().DoubleValue() != filesGeneration_) {
      return std::numeric_limits<double>::quiet_NaN();
    }
    Napi::Uint8Array out = info[first].As<Napi::Uint8Array>();
    Napi::Int32Array lengths = info[first + 1].As<Napi::Int32Array>();
    if (lengths.ElementLength() < files_.Size()) {
      throw Napi::RangeError::New(env, std::string("heapstate native: ") + who +
                                           ": lengths is shorter than the kept files");
    }
    return static_cast<double>(
        files_.Read(out.Data(), out.ElementLength(), lengths.Data(), lengths.ElementLength()));
  }

  // discover() -> { mallocOwner?, mainProgramDefinesMalloc, instances: [...] }
  Napi::Value Discover(const Napi::CallbackInfo& info) {
    return EachInstance(
        info.Env(), [](const Instance&) { return true; }, [](const Instance&, Napi::Object&) {});
  }

  // read({ glibc?, mallocInfo?, onlyGlibc? }) -> discover()'s shape, each instance with `values`
  // (the allocator's counters under its own names) and `errors` (name -> code for what it
  // refused). onlyGlibc reads glibc's instance alone: a second look at glibc within one reading
  // must not advance another allocator's epoch again.
  Napi::Value Read(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object options = OptionsArg(info);
    ReadOptions ro;
    ro.glibc = BoolOption(options, "glibc", true);
    ro.mallocInfo = BoolOption(options, "mallocInfo", false);
    const bool onlyGlibc = BoolOption(options, "onlyGlibc", false);
    return EachInstance(
        env,
        [onlyGlibc](const Instance& inst) {
          return !onlyGlibc || inst.kind == AllocatorKind::Glibc;
        },
        [&](const Instance& inst, Napi::Object& o) {
          Reading r = ReadInstance(inst, ro);
          o.Set("values", ValuesObject(env, r.values));
          Napi::Object errors = Napi::Object::New(env);
          for (const auto& kv : r.errors) errors.Set(kv.first, Napi::Number::New(env, kv.second));
          o.Set("errors", errors);
        });
  }

  // readNumbers(out: Float64Array, { glibc?, onlyGlibc?, describe? }) -> the count of doubles
  // written, or minus the count needed when `out` is too short (nothing is written past its end).
  // The same reading as read() without malloc_info, as numbers, so a repeated reader builds no JS
  // object per counter here: [dlpi_adds, dlpi_subs, instances read, then per instance: its index
  // in the discovery's list, values n, errors m, n × (name id * 4 + kind, value), m × (name id,
  // code)]. kind 0 is a number, 1 a flag (value 0 or 1), 2 a text (value NaN). Texts are fixed for
  // a loaded object: with describe, the answer is instead discover()'s object for the same
  // discovery with `count` and `texts` (the texts in the order their entries were written), which
  // the caller keeps. Name ids are process-wide; counterNames() gives their names. With four more
  // arguments (out, lengths, generation as readFiles() takes them, and a Float64Array), the kept
  // files are read first in the same call, and readFiles()'s answer is put in its first element:
  // one crossing for what a fast reading asks of the kernel and the allocators.
  Napi::Value ReadNumbers(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsTypedArray() ||
        info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
      throw Napi::TypeError::New(env, "heapstate native: readNumbers needs a Float64Array");
    }
    Napi::Float64Array out = info[0].As<Napi::Float64Array>();
    Napi::Object options = OptionsArg(info, 1);
    // With (files, lengths, generation, result: Float64Array) after the options: the kept files
    // are read first, in the same call, and result[0] is what readFiles() would answer.
    if (info.Length() > 2) {
      if (info.Length() < 6 || !info[5].IsTypedArray() ||
          info[5].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array ||
          info[5].As<Napi::TypedArray>().ElementLength() < 1) {
        throw Napi::TypeError::New(env,
                                   "heapstate native: readNumbers' files need a Uint8Array, an "
                                   "Int32Array, a generation and a Float64Array");
      }
      const double files = ReadKept(info, 2, "readNumbers");
      info[5].As<Napi::Float64Array>()[0] = files;
    }
    ReadOptions ro;
    ro.glibc = BoolOption(options, "glibc", true);
    ro.mallocInfo = false;
    const bool onlyGlibc = BoolOption(options, "onlyGlibc", false);
    const bool describe = BoolOption(options, "describe", false);
    std::vector<std::string> texts;
    DiscoveryRef d = CurrentDiscovery();
    Writer w(out.Data(), out.ElementLength());
    w.Put(static_cast<double>(d->adds));
    w.Put(static_cast<double>(d->subs));
    size_t kept = 0;
    for (const Instance& inst : d->instances) {
      if (!onlyGlibc || inst.kind == AllocatorKind::Glibc) kept++;
    }
    w.Put(static_cast<double>(kept));
    for (size_t i = 0; i < d->instances.size(); i++) {
      const Instance& inst = d->instances[i];
      if (onlyGlibc && inst.kind != AllocatorKind::Glibc) continue;
      Reading r = ReadInstance(inst, ro);
      w.Put(static_cast<double>(i));
      w.Put(static_cast<double>(r.values.size()));
      w.Put(static_cast<double>(r.errors.size()));
      for (const auto& kv : r.values) {
        const double id = static_cast<double>(NameId(kv.first)) * 4;
        switch (kv.second.type) {
          case Value::Type::Number:
            w.Put(id + kEntryNumber);
            w.Put(kv.second.number);
            break;
          case Value::Type::Flag:
            w.Put(id + kEntryFlag);
            w.Put(kv.second.flag ? 1 : 0);
            break;
          case Value::Type::Text:
            w.Put(id + kEntryText);
            w.Put(std::numeric_limits<double>::quiet_NaN());
            if (describe) texts.push_back(kv.second.text);
            break;
        }
      }
      for (const auto& kv : r.errors) {
        w.Put(static_cast<double>(NameId(kv.first)));
        w.Put(static_cast<double>(kv.second));
      }
    }
    const double count = static_cast<double>(w.Count());
    Napi::Number answer = Napi::Number::New(env, w.Fits() ? count : -count);
    if (!describe) return answer;
    Napi::Object described = EachDescribed(env, *d);
    described.Set("count", answer);
    Napi::Array list = Napi::Array::New(env, texts.size());
    for (uint32_t i = 0; i < texts.size(); i++) list.Set(i, Napi::String::New(env, texts[i]));
    described.Set("texts", list);
    return described;
  }

  // counterNames(from) -> the names of ids from, from + 1, … (all that exist now).
  Napi::Value CounterNames(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsNumber()) {
      throw Napi::TypeError::New(env, "heapstate native: counterNames needs a start index");
    }
    const double from = info[0].As<Napi::Number>().DoubleValue();
    std::vector<std::string> names;
    {
      std::lock_guard<std::mutex> lock(gNamesMutex);
      // Copied one by one: a range assign pulls in the same too-new libstdc++ symbol (see NameId).
      if (from >= 0 && from < static_cast<double>(gNames.size())) {
        for (size_t i = static_cast<size_t>(from); i < gNames.size(); i++) {
          names.push_back(gNames[i]);
        }
      }
    }
    Napi::Array list = Napi::Array::New(env, names.size());
    for (uint32_t i = 0; i < names.size(); i++) list.Set(i, Napi::String::New(env, names[i]));
    return list;
  }

  // trim({ glibc? }) -> { instances: [{ allocator, library, symbol, servesMalloc, actions }] }
  Napi::Value Trim(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const bool glibc = BoolOption(OptionsArg(info), "glibc", true);
    return EachInstance(
        env, [](const Instance&) { return true; },
        [&](const Instance& inst, Napi::Object& o) {
          o.Set("actions", ValuesObject(env, TrimInstance(inst, glibc).actions));
        });
  }

  // profDump(path: string) -> 0, or the error code of jemalloc's `prof.dump` into `path` (ENOENT
  // when no jemalloc serves malloc or it has no profiling): the sampled heap profile written by
  // the allocator that serves malloc. The caller chooses a private path; nothing is parsed here.
  Napi::Value ProfDump(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsString()) {
      throw Napi::TypeError::New(env, "heapstate native: profDump needs a path");
    }
    std::string path = info[0].As<Napi::String>().Utf8Value();
    if (path.empty() || path.size() > 4096 || path.find('\0') != std::string::npos) {
      throw Napi::TypeError::New(env, "heapstate native: profDump: a path empty, long or with NUL");
    }
    DiscoveryRef d = CurrentDiscovery();
    for (const Instance& inst : d->instances) {
      if (inst.kind != AllocatorKind::Jemalloc || !inst.servesMalloc) continue;
      const char* p = path.c_str();
      const int rc = inst.jemalloc.mallctl("prof.dump", nullptr, nullptr, &p, sizeof p);
      return Napi::Number::New(env, rc);
    }
    return Napi::Number::New(env, ENOENT);
  }

  // samplerDump(path: string) -> 0, or the error code of heapstate's sampler (native/sampler)
  // writing its live samples into `path` (ENOENT when it is not in front of malloc). The caller
  // chooses a private path; nothing is parsed here.
  Napi::Value SamplerDump(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsString()) {
      throw Napi::TypeError::New(env, "heapstate native: samplerDump needs a path");
    }
    std::string path = info[0].As<Napi::String>().Utf8Value();
    if (path.empty() || path.size() > 4096 || path.find('\0') != std::string::npos) {
      throw Napi::TypeError::New(env,
                                 "heapstate native: samplerDump: a path empty, long or with NUL");
    }
    DiscoveryRef d = CurrentDiscovery();
    return Napi::Number::New(env,
                             d->samplerDump == nullptr ? ENOENT : d->samplerDump(path.c_str()));
  }

  // samplerStats() -> what heapstate's sampler reports ([mean bytes between samples, table slots,
  // samples taken, samples dropped, its tables' resident bytes]; as many as it knows), or
  // undefined when it is not in front of malloc.
  Napi::Value SamplerStats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    DiscoveryRef d = CurrentDiscovery();
    if (d->samplerStats == nullptr) return env.Undefined();
    uint64_t v[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    const size_t n = std::min<size_t>(d->samplerStats(v, 8), 8);
    Napi::Array out = Napi::Array::New(env, n);
    for (uint32_t i = 0; i < n; i++) out.Set(i, Napi::Number::New(env, static_cast<double>(v[i])));
    return out;
  }

  // profActive(on: boolean) -> the previous value of jemalloc's `prof.active` (0 or 1) once set to
  // `on`, or minus the error code (ENOENT: no jemalloc serves malloc; others: its mallctl's, e.g.
  // ENOENT when it was built without profiling). Nothing else is decided here.
  Napi::Value ProfActive(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsBoolean()) {
      throw Napi::TypeError::New(env, "heapstate native: profActive needs a boolean");
    }
    bool on = info[0].As<Napi::Boolean>().Value();
    DiscoveryRef d = CurrentDiscovery();
    for (const Instance& inst : d->instances) {
      if (inst.kind != AllocatorKind::Jemalloc || !inst.servesMalloc) continue;
      bool old = false;
      size_t len = sizeof old;
      const int rc = inst.jemalloc.mallctl("prof.active", &old, &len, &on, sizeof on);
      return Napi::Number::New(env, rc == 0 ? (old ? 1 : 0) : -rc);
    }
    return Napi::Number::New(env, -ENOENT);
  }

  // heapSample() -> the text of tcmalloc's sampled heap profile (gperftools' GetHeapSample: the
  // `heap profile: … @ heap_v2/<period>` lines and MAPPED_LIBRARIES), or undefined when no tcmalloc
  // that can give one serves malloc. Nothing is parsed here.
  Napi::Value HeapSample(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    DiscoveryRef d = CurrentDiscovery();
    for (const Instance& inst : d->instances) {
      if (inst.kind != AllocatorKind::Tcmalloc || !inst.servesMalloc) continue;
      if (inst.tcmalloc.instance == nullptr || inst.tcmalloc.heapSample == nullptr) break;
      void* self = inst.tcmalloc.instance();
      if (self == nullptr) break;
      std::string text;
      inst.tcmalloc.heapSample(self, &text);
      return Napi::String::New(env, text);
    }
    return env.Undefined();
  }

  // threadCpuMicros() -> the calling thread's CPU time in µs (CLOCK_THREAD_CPUTIME_ID), or NaN
  // when the clock is refused: what a read cost this thread, without the time it waited to run.
  Napi::Value ThreadCpuMicros(const Napi::CallbackInfo& info) {
    timespec ts{};
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) {
      return Napi::Number::New(info.Env(), std::numeric_limits<double>::quiet_NaN());
    }
    return Napi::Number::New(
        info.Env(), static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3);
  }

  // libc() -> { version? }: the running glibc's version, without a discovery or a reading (no
  // allocator is touched; jemalloc's epoch is not advanced).
  Napi::Value Libc(const Napi::CallbackInfo& info) {
    Napi::Object out = Napi::Object::New(info.Env());
    if (const char* v = LibcVersion()) out.Set("version", Napi::String::New(info.Env(), v));
    return out;
  }
};

}  // namespace heapstate

using HeapstateAddon = heapstate::Addon;
NODE_API_ADDON(HeapstateAddon)
