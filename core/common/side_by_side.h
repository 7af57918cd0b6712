#pragma once
/// Two pieces of work at once, each stopping when the other fails (docs/architecture.md,
/// "Threads": the analysis runs its two lanes of passes this way).

#include <functional>

#include "core/common/cancel.h"

namespace kdscope::core {

/// Runs `first` on a thread of its own and `second` on the calling thread, and returns when
/// both have ended. When either throws, `stop` is cancelled, so that the other ends at its
/// next poll of it. Then the first exception in the order `first`, `second` that is not
/// Cancelled is rethrown: a piece stopped because the other failed does not hide the failure.
/// Cancelled is rethrown only when nothing else was thrown.
void runSideBySide(const std::function<void()>& first, const std::function<void()>& second,
                   const CancelToken& stop);

} // namespace kdscope::core
