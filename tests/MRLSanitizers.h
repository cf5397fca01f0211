// SPDX-License-Identifier: MIT
// What the tests and fuzz targets need to know of the sanitizers they may run under (scripts/sanitize.sh).
#ifndef MRL_SANITIZERS_H_
#define MRL_SANITIZERS_H_

extern "C" {
// LeakSanitizer's interface; weak, so that an ordinary build links without it.
void __lsan_disable() __attribute__((weak));
void __lsan_enable() __attribute__((weak));
}

namespace MRLTest {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool UNDER_ADDRESS_SANITIZER = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool UNDER_ADDRESS_SANITIZER = true;
#else
constexpr bool UNDER_ADDRESS_SANITIZER = false;
#endif
#else
constexpr bool UNDER_ADDRESS_SANITIZER = false;
#endif

/**
 * While one exists, this thread's allocations are not leak-checked.  For a Context whose construction is expected
 * to fail: OpenMM 8.6's ContextImpl constructor keeps its ForceImpls and kernels in raw pointers and has no
 * handler, so when a force's initialize() throws (as MRLForce does for a bad model or bad lists) everything made
 * so far is lost, in OpenMM's code (openmmapi/src/ContextImpl.cpp).  Used only around such constructions.
 */
class IgnoreLeaksOfAFailingContext {
public:
    IgnoreLeaksOfAFailingContext() {
        if (__lsan_disable != nullptr)
            __lsan_disable();
    }
    ~IgnoreLeaksOfAFailingContext() {
        if (__lsan_enable != nullptr)
            __lsan_enable();
    }
    IgnoreLeaksOfAFailingContext(const IgnoreLeaksOfAFailingContext&) = delete;
    IgnoreLeaksOfAFailingContext& operator=(const IgnoreLeaksOfAFailingContext&) = delete;
};

} // namespace MRLTest

#endif
