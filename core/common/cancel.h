#pragma once
/// The cancel token: a shared atomic flag that a GUI or a signal handler sets directly
/// (never through a queued slot). Core polls it between batches and recording chunks.

#include <atomic>
#include <memory>

namespace kdscope::core {

class CancelToken {
public:
  CancelToken() : m_flag(std::make_shared<std::atomic<bool>>(false)) {}
  /// Safe from any thread.
  void cancel() const { m_flag->store(true, std::memory_order_relaxed); }
  [[nodiscard]] bool cancelled() const {
    return m_flag->load(std::memory_order_relaxed) || (m_parent && m_parent->cancelled());
  }
  /// A token of its own that also reads as cancelled when this one is cancelled; cancelling it
  /// leaves this one alone (the analysis stops its other lane of passes when one fails).
  [[nodiscard]] CancelToken child() const {
    CancelToken c;
    c.m_parent = std::make_shared<const CancelToken>(*this);
    return c;
  }

private:
  std::shared_ptr<std::atomic<bool>> m_flag;
  std::shared_ptr<const CancelToken> m_parent; ///< the token this is a child of, if any
};

/// Thrown inside core when a polled CancelToken is set; caught at the public entry point
/// (runJob, analyzeRun), which reports "cancelled" in its status. Never leaves core.
struct Cancelled {};

/// Throws Cancelled when `token` is set.
inline void throwIfCancelled(const CancelToken& token) {
  if (token.cancelled()) {
    throw Cancelled{};
  }
}

} // namespace kdscope::core
