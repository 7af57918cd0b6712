#pragma once
/// Multiple-testing correction (issue #14; docs/statistics.md, "Multiple testing"): the
/// Holm-Bonferroni step-down adjustment of the p-values of a family of tests, i.e. every
/// paired test one summary or report shows. It controls the family-wise error rate (the
/// chance of calling any true null "different") at alpha for any dependence between the
/// tests (Holm 1979), and never rejects less than plain Bonferroni. Plain vectors; no torch,
/// Qt or HDF5. Pure, thread-safe.

#include <cstddef>
#include <limits>
#include <string>
#include <vector>

namespace kdscope::core::analysis {

/// A test's Holm-adjusted p over its family, kept beside the test's raw p.
struct AdjustedP {
  double p = std::numeric_limits<double>::quiet_NaN(); ///< NaN: not adjusted (or not in a family)
  std::size_t family = 0;                              ///< tests in the family (finite raw p's)
};

/// Holm-adjusted p-values, in the order given. With the m finite p-values sorted ascending,
/// p_(1) <= ... <= p_(m): adj_(i) = min(1, max over j <= i of (m - j + 1) p_(j)). Ties keep
/// their input order (the result does not depend on it). A NaN p is not in the family (m
/// counts the finite ones) and stays NaN. An empty family gives an empty result.
[[nodiscard]] std::vector<double> holmAdjust(const std::vector<double>& pValues);

/// One family: the raw p of each member and where its adjustment goes.
class HolmFamily {
public:
  void add(double rawP, AdjustedP* out) {
    m_raw.push_back(rawP);
    m_out.push_back(out);
  }
  /// Holm over the members added; sets each AdjustedP (p and family size).
  void adjust() const;

private:
  std::vector<double> m_raw;
  std::vector<AdjustedP*> m_out;
};

/// The raw and adjusted p as shown everywhere: "p = 0.013, Holm p = 0.039 of 6 tests"
/// (`name` names the test: "paired t p = ..."); just the raw p when not adjusted.
[[nodiscard]] std::string pValuesText(double rawP, const AdjustedP& adjusted, const std::string& name = "p");

/// The p a verdict uses: the adjusted one when there is one, else the raw one.
[[nodiscard]] double verdictP(double rawP, const AdjustedP& adjusted);

} // namespace kdscope::core::analysis
