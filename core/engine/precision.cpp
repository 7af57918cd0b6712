#include "core/engine/precision.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <ATen/autocast_mode.h>

#include "core/common/error.h"

namespace kdscope::core {

Precision parsePrecision(const std::string& name) {
  if (name == "auto") {
    return Precision::Auto;
  }
  if (name == "fp32") {
    return Precision::Fp32;
  }
  if (name == "bf16") {
    return Precision::Bf16;
  }
  throw JobError("precision '" + name + "' is not one of auto, fp32, bf16");
}

const char* precisionLabel(Precision precision) {
  switch (precision) {
  case Precision::Auto: return "auto";
  case Precision::Fp32: return "fp32";
  case Precision::Bf16: return "bf16";
  }
  return "fp32";
}

bool nativeBf16From(const char* overrideValue, std::istream& cpuinfo) {
  if (overrideValue != nullptr && *overrideValue != '\0') {
    const std::string value(overrideValue);
    if (value == "0" || value == "1") {
      return value == "1";
    }
    throw JobError("KDSCOPE_CPU_BF16 is '" + value + "': expected 0 (no native bf16) or 1");
  }
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("flags", 0) != 0) {
      continue;
    }
    std::istringstream words(line);
    std::string word;
    while (words >> word) {
      if (word == "avx512_bf16" || word == "amx_bf16") {
        return true;
      }
    }
    return false;
  }
  return false;
}

bool cpuHasNativeBf16() {
  static const bool has = [] {
    std::ifstream in("/proc/cpuinfo");
    return nativeBf16From(std::getenv("KDSCOPE_CPU_BF16"), in);
  }();
  return has;
}

Precision resolvePrecision(Precision precision) {
  if (precision != Precision::Auto) {
    return precision;
  }
  return cpuHasNativeBf16() ? Precision::Bf16 : Precision::Fp32;
}

PrecisionScope::PrecisionScope(Precision precision) {
  const bool bf16 = resolvePrecision(precision) == Precision::Bf16;
  m_previousEnabled = at::autocast::is_cpu_enabled();
  m_previousDtype = static_cast<int>(at::autocast::get_autocast_cpu_dtype());
  if (bf16 == m_previousEnabled && (!bf16 || at::autocast::get_autocast_cpu_dtype() == at::kBFloat16)) {
    return;
  }
  m_changed = true;
  at::autocast::set_cpu_enabled(bf16);
  at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
  at::autocast::increment_nesting();
}

PrecisionScope::~PrecisionScope() {
  if (!m_changed) {
    return;
  }
  // The cache of casted weights is per outermost region: drop it when it ends.
  if (at::autocast::decrement_nesting() == 0) {
    at::autocast::clear_cache();
  }
  at::autocast::set_cpu_enabled(m_previousEnabled);
  at::autocast::set_autocast_cpu_dtype(static_cast<at::ScalarType>(m_previousDtype));
}

} // namespace kdscope::core
