// Run-time choice of the CPU kernels' instruction set (see isa.h).
#include "cpu/isa.h"

#include <c10/util/Exception.h>

#include <atomic>

namespace pixvox {
namespace {

bool cpu_has_avx2() {
#if defined(PIXVOX_X86)
  return __builtin_cpu_supports("avx2");
#else
  return false;
#endif
}

std::atomic<int> chosen{static_cast<int>(cpu_has_avx2() ? Isa::kAvx2 : Isa::kGeneric)};

}  // namespace

Isa cpu_isa() { return static_cast<Isa>(chosen.load(std::memory_order_relaxed)); }

std::string cpu_isa_name() { return cpu_isa() == Isa::kAvx2 ? "avx2" : "generic"; }

std::string set_cpu_isa(const std::string& name) {
  const std::string previous = cpu_isa_name();
  if (name == "auto") {
    chosen = static_cast<int>(cpu_has_avx2() ? Isa::kAvx2 : Isa::kGeneric);
  } else if (name == "generic") {
    chosen = static_cast<int>(Isa::kGeneric);
  } else if (name == "avx2") {
    TORCH_CHECK_VALUE(cpu_has_avx2(), "this CPU has no AVX2; use 'generic' or 'auto'");
    chosen = static_cast<int>(Isa::kAvx2);
  } else {
    TORCH_CHECK_VALUE(false, "unknown CPU kernel variant '", name, "': use 'auto', 'generic' or 'avx2'");
  }
  return previous;
}

}  // namespace pixvox
