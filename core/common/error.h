#pragma once
/// Errors that core throws internally. They never leave core's public entry points
/// (runJob returns a status); other public functions document that they throw.

#include <stdexcept>
#include <string>

namespace kdscope::core {

/// Bad input from the user: a job field, a dataset, a run file. The message names the
/// file, field, dataset or layer at fault. The command line maps it to exit code 2.
class InputError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// A failure while doing the work (training diverged, a write failed). Exit code 1.
class JobError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

} // namespace kdscope::core
