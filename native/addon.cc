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
#include <napi.h>

#include "discovery.h"
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

Napi::Object OptionsArg(const Napi::CallbackInfo& info) {
  if (info.Length() == 0 || info[0].IsUndefined()) return Napi::Object::New(info.Env());
  if (!info[0].IsObject() || info[0].IsArray() || info[0].IsFunction()) {
    throw Napi::TypeError::New(info.Env(), "heapstate native: options must be a plain object");
  }
  return info[0].As<Napi::Object>();
}

Napi::Object Describe(Napi::Env env, const Discovery& d) {
  Napi::Object out = Napi::Object::New(env);
  if (!d.mallocOwner.empty()) out.Set("mallocOwner", Napi::String::New(env, d.mallocOwner));
  out.Set("mainProgramDefinesMalloc", Napi::Boolean::New(env, d.mainProgramDefinesMalloc));
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

}  // namespace

// Values under their names, as one JS object.
Napi::Object ValuesObject(Napi::Env env, const std::vector<std::pair<std::string, Value>>& values) {
  Napi::Object o = Napi::Object::New(env);
  for (const auto& kv : values) o.Set(kv.first, ToJs(env, kv.second));
  return o;
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
                             InstanceMethod("trim", &Addon::Trim),
                             InstanceMethod("libc", &Addon::Libc),
                         });
  }

 private:
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
