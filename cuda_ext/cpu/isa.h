// Which instruction set the CPU kernels use.
//
// The extension is compiled for baseline x86-64 (SSE2) so that one build runs everywhere; the hot
// loops are compiled a second time for AVX2 and picked at run time. Both variants perform the same
// IEEE operations in the same order (no FMA contraction, no reassociation), so their results are
// bitwise identical; tests check that by forcing the generic variant (set_cpu_isa).
#pragma once

#include <string>

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define PIXVOX_X86 1
#define PIXVOX_TARGET_AVX2 __attribute__((target("avx2")))
#else
#define PIXVOX_TARGET_AVX2
#endif

// For a loop body written once and instantiated in both variants.
#if defined(__GNUC__)
#define PIXVOX_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define PIXVOX_ALWAYS_INLINE inline
#endif

namespace pixvox {

enum class Isa { kGeneric, kAvx2 };

// The variant in use: AVX2 where the CPU has it, unless set_cpu_isa chose otherwise.
Isa cpu_isa();

// "auto", "generic" or "avx2" (an error where the CPU lacks AVX2). Returns the previous name.
std::string set_cpu_isa(const std::string& name);

std::string cpu_isa_name();

}  // namespace pixvox
