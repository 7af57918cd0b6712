#pragma once
/// Arithmetic precision of the training passes. bf16 runs them under LibTorch's CPU
/// autocast: linear layers and attention products in bfloat16 through oneDNN, and (in
/// LibTorch 1.13) the element-wise steps that follow them (softmax, layer norm, GELU) on
/// their bf16 outputs; weights, gradients and optimiser state stay fp32. fp32 runs
/// everything in float32. "auto" picks bf16 where the CPU multiplies bf16 natively (AVX512_BF16 or AMX),
/// else fp32. docs/job-format.md (training.precision) documents it; bench/README.md
/// ("Distillation step at any size") has the measurements.
/// No torch in this header: it is included by the job spec.

#include <string>

namespace kdscope::core {

enum class Precision { Auto, Fp32, Bf16 };

/// "auto", "fp32" or "bf16"; throws JobError naming the value otherwise.
Precision parsePrecision(const std::string& name);
/// "auto", "fp32" or "bf16".
const char* precisionLabel(Precision precision);
/// Auto resolved for this CPU; Fp32 and Bf16 unchanged.
Precision resolvePrecision(Precision precision);
/// Whether this CPU reports AVX512_BF16 or AMX-BF16 (from /proc/cpuinfo's flags).
bool cpuHasNativeBf16();

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
