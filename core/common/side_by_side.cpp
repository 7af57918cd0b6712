#include "core/common/side_by_side.h"

#include <exception>
#include <thread>

namespace kdscope::core {

namespace {

bool isCancelled(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const Cancelled&) {
    return true;
  } catch (...) {
    return false;
  }
}

} // namespace

void runSideBySide(const std::function<void()>& first, const std::function<void()>& second,
                   const CancelToken& stop) {
  std::exception_ptr errors[2];
  std::thread side([&] {
    try {
      first();
    } catch (...) {
      errors[0] = std::current_exception();
      stop.cancel();
    }
  });
  try {
    second();
  } catch (...) {
    errors[1] = std::current_exception();
    stop.cancel();
  }
  side.join();
  for (const auto& e : errors) {
    if (e && !isCancelled(e)) {
      std::rethrow_exception(e);
    }
  }
  for (const auto& e : errors) {
    if (e) {
      std::rethrow_exception(e);
    }
  }
}

} // namespace kdscope::core
