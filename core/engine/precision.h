#pragma once
/// Arithmetic precision of the training passes. bf16 runs them under LibTorch's CPU
/// autocast: linear layers and attention products in bfloat16 through oneDNN, and (in
/// LibTorch 1.13) the element-wise steps that follow them (softmax, layer norm, GELU) on
/// their bf16 outputs; weights, gradients and optimiser state stay fp32. fp32 runs
/// everything in float32. "auto" picks bf16 where the CPU multiplies bf16 natively (AVX512_BF16 or AMX),
/// else fp32. docs/job-format.md (training.precision) documents it; bench/README.md
/// ("Distillation step at any size") has the measurements.
/// No torch in this header: it is included by the job spec.

#include <istream>
#include <string>

namespace kdscope::core {

enum class Precision { Auto, Fp32, Bf16 };

/// "auto", "fp32" or "bf16"; throws JobError naming the value otherwise.
Precision parsePrecision(const std::string& name);
/// "auto", "fp32" or "bf16".
const char* precisionLabel(Precision precision);
/// Auto resolved for this CPU; Fp32 and Bf16 unchanged.
Precision resolvePrecision(Precision precision);
/// Whether this CPU reports AVX512_BF16 or AMX-BF16 (from /proc/cpuinfo's flags), unless the
/// environment variable KDSCOPE_CPU_BF16 says otherwise: "0" as if the CPU lacked both (what
/// "auto" does on such a machine: fp32), "1" as if it had one (bf16 then runs on LibTorch's
/// emulation, slowly). Read once per process, here only. Another value throws
/// JobError naming it.
bool cpuHasNativeBf16();
/// The rule cpuHasNativeBf16 applies, on a given KDSCOPE_CPU_BF16 value (nullptr or empty:
/// unset) and cpuinfo text.
bool nativeBf16From(const char* overrideValue, std::istream& cpuinfo);

/// While alive, passes run at `precision` (resolved; Auto is resolved here). Nests:
/// restores the previous autocast state on destruction.
class PrecisionScope {
public:
  explicit PrecisionScope(Precision precision);
  ~PrecisionScope();
  PrecisionScope(const PrecisionScope&) = delete;
  PrecisionScope& operator=(const PrecisionScope&) = delete;

private:
  bool m_changed = false;
  bool m_previousEnabled = false;
  int m_previousDtype = 0;
};

} // namespace kdscope::core
