// Raw counter reads and release actions, one function per allocator. No parsing, no policy: every
// value goes out under the allocator's own name, and a value the allocator did not give is left
// out (its error code is kept instead), never set to 0.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "discovery.h"

namespace heapstate {

struct Value {
  enum class Type { Number, Text, Flag } type = Type::Number;
  double number = 0;
  std::string text;
  bool flag = false;
};

struct Reading {
  std::vector<std::pair<std::string, Value>> values;
  std::vector<std::pair<std::string, int>> errors;  // name -> errno-style code from the allocator
};

struct ReadOptions {
  bool glibc = true;        // mallinfo2 (or mallinfo): walks every free chunk under each arena lock
  bool mallocInfo = false;  // glibc malloc_info XML: the same walk again, with per-arena detail
};

Reading ReadInstance(const Instance& inst, const ReadOptions& options);

struct TrimResult {
  std::vector<std::pair<std::string, Value>> actions;  // action name -> result
};

TrimResult TrimInstance(const Instance& inst, bool glibc);

}  // namespace heapstate
